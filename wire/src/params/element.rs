//! Pool Element (RFC 5354 §3.10) and Server Information (§3.11).

use zerocopy::network_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::codes::param_type;
use crate::error::{Error, ErrorKind};
use crate::params::policy::PolicyParam;
use crate::params::simple::{PeId, ServerId};
use crate::params::transport::{Transport, TransportKind, is_transport};
use crate::seq::WireItem;
use crate::tlv::{Mode, Reader, Revisit, Tlv, next_validated};
use crate::writer::{Encode, Writer};

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct PeFixed {
    id: U32,
    home: U32,
    life: U32,
}

/// Registration Life meaning "never expires" in RFC units (-1 as i32).
pub const REGISTRATION_LIFE_INFINITE: u32 = u32::MAX;

/// A Pool Element parameter: one PE as the handlespace knows it.
///
/// Inside it, parameters are positional: the user transport first, then the
/// policy, then optionally the ASAP transport (SCTP only). RFC 5352 §3.1 has
/// the home server fill in the ASAP transport; PEs omit it when registering.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolElement<'a> {
    /// PE Identifier.
    pub id: PeId,
    /// Home ENRP server (0 = not yet known).
    pub home_server: ServerId,
    /// Registration Life as on the wire. RFC 5354 says seconds (signed, -1 =
    /// infinite); RSPLIB sends and reads milliseconds. The codec does not
    /// interpret it.
    pub registration_life: u32,
    /// Where the PE serves its users.
    pub user_transport: Transport<'a>,
    /// The PE's policy and its values.
    pub policy: PolicyParam<'a>,
    /// The SCTP association the PE registered from, filled in by its home.
    pub asap_transport: Option<Transport<'a>>,
}

impl<'a> PoolElement<'a> {
    /// Decodes a Pool Element parameter: validating it (`mode` is the
    /// message's `Reports`), or re-reading one validated before (`Revisit`).
    ///
    /// Inlined, with the transport, policy and address parsers: a PE is the
    /// bulk of every message that carries one, and in line the `Tlv`s and
    /// partial results stay in registers instead of being passed through
    /// memory (a third fewer instructions per PE under callgrind).
    #[inline(always)]
    pub(crate) fn parse<M: Mode<'a>>(tlv: &Tlv<'a>, mode: &mut M) -> Result<Self, Error> {
        const FIELD: &str = "Pool Element";
        let (fixed, rest) = PeFixed::ref_from_prefix(tlv.value())
            .map_err(|_| Error::new(ErrorKind::Truncated, FIELD, tlv.raw()))?;
        let mut r = Reader::new(rest, FIELD, mode);
        let Some(user) = r.optional_if(is_transport)? else {
            return Err(Error::new(ErrorKind::Missing, "User Transport", tlv.raw()));
        };
        let user_transport = Transport::parse(&user, r.mode())?;
        let policy =
            PolicyParam::parse(&r.expect(param_type::POLICY, "Pool Member Selection Policy")?)?;
        let asap_transport = match r.optional(param_type::SCTP_TRANSPORT)? {
            Some(t) => Some(Transport::parse(&t, r.mode())?),
            None => None,
        };
        r.finish()?;
        Ok(Self {
            id: PeId(fixed.id.get()),
            home_server: ServerId(fixed.home.get()),
            registration_life: fixed.life.get(),
            user_transport,
            policy,
            asap_transport,
        })
    }
}

impl Encode for PoolElement<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::POOL_ELEMENT, "Pool Element");
        w.put_u32(self.id.0);
        w.put_u32(self.home_server.0);
        w.put_u32(self.registration_life);
        self.user_transport.emit(w);
        self.policy.emit(w);
        if let Some(t) = &self.asap_transport {
            if t.kind != TransportKind::Sctp {
                w.fail(crate::EncodeError::InvalidValue {
                    field: "ASAP Transport",
                });
            }
            t.emit(w);
        }
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for PoolElement<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        let tlv = next_validated(region, |ty| ty == param_type::POOL_ELEMENT)?;
        Self::parse(&tlv, &mut Revisit).ok()
    }
}

/// Server Information (RFC 5354 §3.11): an ENRP server's id and where it
/// speaks ENRP. RFC 5354 names an SCTP transport; a TCP one is accepted too
/// (our ENRP-over-TCP extension, for hosts without SCTP).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerInfo<'a> {
    /// The server's id.
    pub server_id: ServerId,
    /// Its ENRP transport.
    pub transport: Transport<'a>,
}

impl<'a> ServerInfo<'a> {
    /// Decodes a Server Information parameter (see [`PoolElement::parse`]
    /// for `mode`).
    #[inline(always)]
    pub(crate) fn parse<M: Mode<'a>>(tlv: &Tlv<'a>, mode: &mut M) -> Result<Self, Error> {
        const FIELD: &str = "Server Information";
        let Some((id, rest)) = tlv.value().split_first_chunk::<4>() else {
            return Err(Error::new(ErrorKind::Truncated, FIELD, tlv.raw()));
        };
        let mut r = Reader::new(rest, FIELD, mode);
        let is_enrp_transport =
            |t| t == param_type::SCTP_TRANSPORT || t == param_type::TCP_TRANSPORT;
        let Some(t) = r.optional_if(is_enrp_transport)? else {
            return Err(Error::new(ErrorKind::Missing, "SCTP Transport", tlv.raw()));
        };
        let transport = Transport::parse(&t, r.mode())?;
        r.finish()?;
        Ok(Self {
            server_id: ServerId(u32::from_be_bytes(*id)),
            transport,
        })
    }
}

impl Encode for ServerInfo<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::SERVER_INFORMATION, "Server Information");
        w.put_u32(self.server_id.0);
        if !matches!(
            self.transport.kind,
            TransportKind::Sctp | TransportKind::Tcp
        ) {
            w.fail(crate::EncodeError::InvalidValue {
                field: "Server Information transport",
            });
        }
        self.transport.emit(w);
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for ServerInfo<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        let tlv = next_validated(region, |ty| ty == param_type::SERVER_INFORMATION)?;
        Self::parse(&tlv, &mut Revisit).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::asap::AsapMessage;
    use crate::seq::Seq;
    use crate::tlv::{Reports, Tlvs};

    fn param(w: &mut Writer<'_>, ty: u16, value: impl FnOnce(&mut Writer<'_>)) {
        let m = w.begin_param(ty, "test parameter");
        value(w);
        w.end_param(m);
    }

    /// Unknown parameters that a receiver skips (action bits `10` and `11`).
    fn skipped(w: &mut Writer<'_>) {
        param(w, 0x8123, |w| w.put_bytes(&[1, 2, 3]));
        param(w, 0xc456, |w| w.put_u32(7));
    }

    fn pe(w: &mut Writer<'_>, id: u32, transport: u16, policy: &[u32], asap: bool) {
        param(w, param_type::POOL_ELEMENT, |w| {
            w.put_u32(id);
            w.put_u32(0x1122_3344);
            w.put_u32(300);
            skipped(w);
            param(w, transport, |w| {
                w.put_u16(7000);
                w.put_u16(1);
                param(w, param_type::IPV4_ADDRESS, |w| w.put_bytes(&[10, 0, 0, 1]));
                skipped(w);
                if transport == param_type::SCTP_TRANSPORT {
                    param(w, param_type::IPV6_ADDRESS, |w| w.put_bytes(&[0x20; 16]));
                }
                skipped(w);
            });
            param(w, param_type::POLICY, |w| {
                policy.iter().for_each(|&v| w.put_u32(v))
            });
            skipped(w);
            if asap {
                param(w, param_type::SCTP_TRANSPORT, |w| {
                    w.put_u32(50000 << 16);
                    param(w, param_type::IPV4_ADDRESS, |w| w.put_bytes(&[10, 0, 0, 2]));
                });
            }
            skipped(w);
        });
    }

    fn same_addresses(a: &Seq<'_, IpAddr>, b: &Seq<'_, IpAddr>) {
        assert_eq!(a.wire_bytes(), b.wire_bytes());
        assert_eq!(a.iter().collect::<Vec<_>>(), b.iter().collect::<Vec<_>>());
    }

    /// Iterating a validated PE list re-reads it without the checks
    /// (`Revisit`); the values must be exactly the validating parser's, down
    /// to the regions the address lists borrow.
    #[test]
    fn a_revisit_reads_what_the_validating_parse_read() {
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        let m = w.begin_message(0x06, 0, "test message");
        param(&mut w, param_type::POOL_HANDLE, |w| w.put_bytes(b"pool"));
        skipped(&mut w);
        pe(
            &mut w,
            1,
            param_type::SCTP_TRANSPORT,
            &[0x4000_0002, 5, 6],
            true,
        );
        skipped(&mut w);
        pe(
            &mut w,
            2,
            param_type::TCP_TRANSPORT,
            &[0xb000_2003, 1, 2, 3, 4],
            false,
        );
        pe(
            &mut w,
            3,
            param_type::UDP_TRANSPORT,
            &[0x7777_0000, 9],
            false,
        );
        skipped(&mut w);
        w.end_message(m);
        let n = w.finish().unwrap();
        let bytes = &buf[..n];

        let Ok(AsapMessage::HandleResolutionResponse(r)) = AsapMessage::parse(bytes) else {
            panic!("the test message decodes");
        };
        let validated: Vec<PoolElement<'_>> = Tlvs::new(r.elements.wire_bytes().unwrap(), "x")
            .map(Result::unwrap)
            .filter(|t| t.ty() == param_type::POOL_ELEMENT)
            .map(|t| PoolElement::parse(&t, &mut Reports::new()).unwrap())
            .collect();
        let revisited: Vec<PoolElement<'_>> = r.elements.iter().collect();
        assert_eq!(validated.len(), 3);
        assert_eq!(revisited, validated);
        for (a, b) in revisited.iter().zip(&validated) {
            same_addresses(&a.user_transport.addresses, &b.user_transport.addresses);
            match (&a.asap_transport, &b.asap_transport) {
                (Some(a), Some(b)) => same_addresses(&a.addresses, &b.addresses),
                (None, None) => {}
                _ => panic!("ASAP transports differ"),
            }
        }
        assert!(matches!(validated[2].policy, PolicyParam::Unknown { .. }));
    }
}
