//! Shared fixtures for the benchmarks: the common ASAP and ENRP messages,
//! built from fields. Five of them are byte for byte the spec digest's
//! examples (`wire/tests/spec_examples.rs`, checked by this crate's tests);
//! the Handle Resolution Responses carry `n` PEs shaped like the example's
//! first one (one SCTP address, Round Robin, home server set). The
//! [`handlespace`] module builds the PE populations and requests of the
//! shard benchmarks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod handlespace;

use std::net::{IpAddr, Ipv4Addr};

use rserpool_wire::asap::{
    EndpointKeepAlive, HandleResolution, HandleResolutionResponse, Registration,
};
use rserpool_wire::enrp::{HandleUpdate, Presence, UpdateAction};
use rserpool_wire::{
    AsapMessage, Encode, EnrpMessage, PeChecksum, PeId, Policy, PoolElement, PoolHandle, Seq,
    ServerId, ServerInfo, Transport, TransportUse, Writer, param_type,
};

/// The pool of every fixture.
pub const POOL: PoolHandle<'static> = match PoolHandle::new(b"EchoService") {
    Some(h) => h,
    None => panic!("valid handle"),
};

/// The registrar (ENRP server) of the fixtures.
pub const SERVER: ServerId = ServerId(0x1122_3344);

static PE_ADDR: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))];
static REGISTRAR_ADDR: [IpAddr; 1] = [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))];

/// The PE of the spec examples: id 0x1a2b3c4d, SCTP port 7000 at
/// 192.0.2.10, data only, Round Robin, life 300.
pub const fn spec_pe(home: ServerId) -> PoolElement<'static> {
    PoolElement {
        id: PeId(0x1a2b_3c4d),
        home_server: home,
        registration_life: 300,
        user_transport: Transport::sctp(7000, TransportUse::DATA_ONLY, &PE_ADDR),
        policy: rserpool_wire::PolicyParam::Known(Policy::RoundRobin {}),
        asap_transport: None,
    }
}

/// ASAP_REGISTRATION (spec example 12.1, 60 bytes).
pub const fn registration() -> AsapMessage<'static> {
    AsapMessage::Registration(Registration {
        pool_handle: POOL,
        element: spec_pe(ServerId(0)),
    })
}

/// ASAP_HANDLE_RESOLUTION (spec example 12.3, 20 bytes).
pub const fn handle_resolution() -> AsapMessage<'static> {
    AsapMessage::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: POOL,
        option: None,
    })
}

/// ASAP_ENDPOINT_KEEP_ALIVE with flag H (spec example 12.7, 24 bytes).
pub const fn keep_alive() -> AsapMessage<'static> {
    AsapMessage::EndpointKeepAlive(EndpointKeepAlive {
        home: true,
        server_id: SERVER,
        pool_handle: POOL,
        pe_id: None,
    })
}

static ASAP_ADDR: [IpAddr; 1] = PE_ADDR;

/// ENRP_HANDLE_UPDATE, add (spec example 12.6, 88 bytes).
pub const fn handle_update() -> EnrpMessage<'static> {
    let mut pe = spec_pe(SERVER);
    pe.asap_transport = Some(Transport::sctp(50000, TransportUse::DATA_ONLY, &ASAP_ADDR));
    EnrpMessage::HandleUpdate(HandleUpdate {
        takeover_suggested: false,
        sender: SERVER,
        receiver: ServerId(0),
        action: UpdateAction::AddPe,
        pool_handle: POOL,
        element: pe,
    })
}

/// ENRP_PRESENCE with checksum and server information (spec example 12.5,
/// 44 bytes).
pub const fn presence() -> EnrpMessage<'static> {
    EnrpMessage::Presence(Presence {
        reply_required: false,
        sender: SERVER,
        receiver: ServerId(0),
        checksum: Some(PeChecksum(0x5672)),
        server_info: Some(ServerInfo {
            server_id: SERVER,
            transport: Transport::sctp(9901, TransportUse::DATA_ONLY, &REGISTRAR_ADDR),
        }),
    })
}

/// `n` PEs with distinct ids and addresses; borrow them with
/// [`PeSet::elements`].
#[derive(Debug)]
pub struct PeSet {
    addrs: Vec<[IpAddr; 1]>,
}

impl PeSet {
    /// Addresses 10.0.x.y for `n` PEs.
    pub fn new(n: usize) -> Self {
        let addrs = (0..n)
            .map(|i| {
                let [_, _, hi, lo] = u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes();
                [IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo))]
            })
            .collect();
        Self { addrs }
    }

    /// The PEs, like the spec's: SCTP port 7000, data only, Round
    /// Robin, life 300, home [`SERVER`], ids 0x1a2b3c4d + i.
    pub fn elements(&self) -> Vec<PoolElement<'_>> {
        (0u32..)
            .zip(&self.addrs)
            .map(|(i, a)| PoolElement {
                id: PeId(0x1a2b_3c4d_u32.wrapping_add(i)),
                user_transport: Transport::sctp(7000, TransportUse::DATA_ONLY, a),
                ..spec_pe(SERVER)
            })
            .collect()
    }
}

/// ASAP_HANDLE_RESOLUTION_RESPONSE with the pool policy (Round Robin) and
/// the given PEs (what a registrar sends a PU).
pub const fn handle_resolution_response<'a>(elements: &'a [PoolElement<'a>]) -> AsapMessage<'a> {
    AsapMessage::HandleResolutionResponse(HandleResolutionResponse {
        accept: false,
        pool_handle: POOL,
        policy: Some(rserpool_wire::PolicyParam::Known(Policy::RoundRobin {})),
        elements: Seq::from_items(elements),
        error: None,
    })
}

/// A registrar's hot path for a Handle Resolution Response: the pool's
/// policy and PEs are stored pre-encoded, and copied with
/// [`Writer::put_param_bytes`]. Returns the bytes written, or 0 if `buf` is
/// too small.
pub fn write_stored_response(buf: &mut [u8], policy: &[u8], stored_pes: &[&[u8]]) -> usize {
    let mut w = Writer::new(buf);
    let m = w.begin_message(0x06, 0, "ASAP_HANDLE_RESOLUTION_RESPONSE");
    let h = w.begin_param(param_type::POOL_HANDLE, "Pool Handle");
    w.put_bytes(POOL.as_bytes());
    w.end_param(h);
    w.put_param_bytes(policy);
    for pe in stored_pes {
        w.put_param_bytes(pe);
    }
    w.end_message(m);
    w.finish().unwrap_or(0)
}

/// Encodes into a new vector (setup only, never measured).
pub fn encoded(m: &impl Encode) -> Vec<u8> {
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn fixtures_are_the_spec_examples() {
        assert_eq!(
            encoded(&registration()),
            hex(
                "01 00 00 3c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0a 00 28 1a 2b 3c 4d 00 00 00 00
                 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 00 00 00 01"
            )
        );
        assert_eq!(
            encoded(&handle_resolution()),
            hex("05 00 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00")
        );
        assert_eq!(
            encoded(&keep_alive()),
            hex("07 01 00 17 11 22 33 44 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00")
        );
        assert_eq!(
            encoded(&presence()),
            hex(
                "01 00 00 2c 11 22 33 44 00 00 00 00 00 0f 00 06 56 72 00 00 00 0b 00 18 11 22 33 44 00 04 00 10
                 26 ad 00 00 00 01 00 08 c0 00 02 01"
            )
        );
        assert_eq!(
            encoded(&handle_update()),
            hex(
                "04 00 00 58 11 22 33 44 00 00 00 00 00 00 00 00 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00
                 00 0a 00 38 1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a
                 00 08 00 08 00 00 00 01 00 04 00 10 c3 50 00 00 00 01 00 08 c0 00 02 0a"
            )
        );
    }

    #[test]
    fn stored_response_equals_the_encoded_one() {
        for n in [0, 3, 128] {
            let set = PeSet::new(n);
            let pes = set.elements();
            let msg = encoded(&handle_resolution_response(&pes));
            let stored: Vec<Vec<u8>> = pes.iter().map(encoded).collect();
            let refs: Vec<&[u8]> = stored.iter().map(Vec::as_slice).collect();
            let policy = encoded(&Policy::RoundRobin {});
            let mut buf = vec![0; 65536];
            let len = write_stored_response(&mut buf, &policy, &refs);
            assert_eq!(&buf[..len], &msg[..], "n = {n}");
            let back = AsapMessage::parse(&msg).unwrap();
            assert_eq!(back, handle_resolution_response(&pes));
        }
    }
}
