//! Codec benchmarks: decode and encode of the common ASAP and ENRP messages.
//!
//! Decoding is lazy (a PE list is a `Seq` over the received bytes, validated
//! once by `parse` and re-read on iteration), so each decode bench also reads
//! the fields a server or PU would use; for the Handle Resolution Response
//! both "parse only" and "parse + iterate" are measured. Encoding writes into
//! a buffer allocated once outside the measured loop.
//!
//! Run: `cargo bench -p rserpool-benches --bench wire -- --warm-up-time 1
//! --measurement-time 3`; results and the 100 ns goal: docs/benchmarks.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rserpool_benches::{
    PeSet, encoded, handle_resolution, handle_resolution_response, handle_update, keep_alive,
    presence, registration, write_stored_response,
};
use rserpool_wire::enrp::EnrpMessage;
use rserpool_wire::{AsapMessage, Encode, Policy, PoolElement, Transport};

/// What a user of a decoded PE reads: id, home, life, the policy values and
/// the first user address.
fn read_pe(e: &PoolElement<'_>) -> u64 {
    let addr = read_transport(&e.user_transport);
    let policy: u64 = e.policy.known().map_or(0, |p| {
        p.values().as_slice().iter().map(|&v| u64::from(v)).sum()
    });
    u64::from(e.id.0) ^ u64::from(e.home_server.0) ^ u64::from(e.registration_life) ^ addr ^ policy
}

fn read_transport(t: &Transport<'_>) -> u64 {
    let mut h = u64::from(t.port);
    for a in t.addresses.iter() {
        h = h.wrapping_mul(31).wrapping_add(match a {
            std::net::IpAddr::V4(v4) => u64::from(v4.to_bits()),
            std::net::IpAddr::V6(v6) => v6.to_bits() as u64,
        });
    }
    h
}

fn decode_asap(c: &mut Criterion, id: &str, bytes: &[u8], read: fn(&AsapMessage<'_>) -> u64) {
    c.bench_function(&format!("decode/{id}"), |b| {
        b.iter(|| {
            let m = AsapMessage::parse(black_box(bytes)).expect("fixture decodes");
            read(&m)
        });
    });
}

fn decode_enrp(c: &mut Criterion, id: &str, bytes: &[u8], read: fn(&EnrpMessage<'_>) -> u64) {
    c.bench_function(&format!("decode/{id}"), |b| {
        b.iter(|| {
            let m = EnrpMessage::parse(black_box(bytes)).expect("fixture decodes");
            read(&m)
        });
    });
}

fn encode(c: &mut Criterion, id: &str, m: &impl Encode) {
    let mut buf = vec![0u8; 65_536];
    c.bench_function(&format!("encode/{id}"), |b| {
        b.iter(|| black_box(m).encode(black_box(&mut buf)).expect("fits"));
    });
}

fn hrr_parse_only(m: &AsapMessage<'_>) -> u64 {
    match m {
        AsapMessage::HandleResolutionResponse(r) => r.elements.len() as u64,
        _ => 0,
    }
}

fn hrr_parse_iterate(m: &AsapMessage<'_>) -> u64 {
    match m {
        AsapMessage::HandleResolutionResponse(r) => r.elements.iter().map(|e| read_pe(&e)).sum(),
        _ => 0,
    }
}

fn benches(c: &mut Criterion) {
    let set3 = PeSet::new(3);
    let pes3 = set3.elements();
    let set128 = PeSet::new(128);
    let pes128 = set128.elements();
    let hrr3 = handle_resolution_response(&pes3);
    let hrr128 = handle_resolution_response(&pes128);

    // Decode.
    decode_asap(c, "registration", &encoded(&registration()), |m| match m {
        AsapMessage::Registration(r) => read_pe(&r.element) ^ r.pool_handle.as_bytes().len() as u64,
        _ => 0,
    });
    decode_asap(
        c,
        "handle_resolution",
        &encoded(&handle_resolution()),
        |m| match m {
            AsapMessage::HandleResolution(r) => {
                r.pool_handle.as_bytes().len() as u64 + u64::from(r.subscribe)
            }
            _ => 0,
        },
    );
    let hrr3_bytes = encoded(&hrr3);
    let hrr128_bytes = encoded(&hrr128);
    decode_asap(c, "hrr_3pe_parse_only", &hrr3_bytes, hrr_parse_only);
    decode_asap(c, "hrr_3pe_parse_iterate", &hrr3_bytes, hrr_parse_iterate);
    decode_asap(c, "hrr_128pe_parse_only", &hrr128_bytes, hrr_parse_only);
    decode_asap(
        c,
        "hrr_128pe_parse_iterate",
        &hrr128_bytes,
        hrr_parse_iterate,
    );
    decode_asap(c, "keep_alive", &encoded(&keep_alive()), |m| match m {
        AsapMessage::EndpointKeepAlive(k) => {
            u64::from(k.server_id.0) ^ k.pool_handle.as_bytes().len() as u64 ^ u64::from(k.home)
        }
        _ => 0,
    });
    decode_enrp(
        c,
        "handle_update",
        &encoded(&handle_update()),
        |m| match m {
            EnrpMessage::HandleUpdate(u) => {
                read_pe(&u.element)
                    ^ u.element.asap_transport.as_ref().map_or(0, read_transport)
                    ^ u64::from(u.sender.0)
                    ^ u64::from(u.action.code())
            }
            _ => 0,
        },
    );
    decode_enrp(c, "presence", &encoded(&presence()), |m| match m {
        EnrpMessage::Presence(p) => {
            u64::from(p.sender.0)
                ^ p.checksum.map_or(0, |c| u64::from(c.0))
                ^ p.server_info
                    .as_ref()
                    .map_or(0, |s| read_transport(&s.transport))
        }
        _ => 0,
    });

    // Encode, from messages built from fields.
    encode(c, "registration", &registration());
    encode(c, "handle_resolution", &handle_resolution());
    encode(c, "hrr_3pe", &hrr3);
    encode(c, "hrr_128pe", &hrr128);
    encode(c, "keep_alive", &keep_alive());
    encode(c, "handle_update", &handle_update());
    encode(c, "presence", &presence());

    // A registrar's path: policy and PEs stored pre-encoded, copied.
    let policy = encoded(&Policy::RoundRobin {});
    for (id, pes) in [("hrr_3pe_stored", &pes3), ("hrr_128pe_stored", &pes128)] {
        let stored: Vec<Vec<u8>> = pes.iter().map(encoded).collect();
        let refs: Vec<&[u8]> = stored.iter().map(Vec::as_slice).collect();
        let mut buf = vec![0u8; 65_536];
        c.bench_function(&format!("encode/{id}"), |b| {
            b.iter(|| write_stored_response(black_box(&mut buf), black_box(&policy), &refs));
        });
    }
}

criterion_group!(wire, benches);
criterion_main!(wire);
