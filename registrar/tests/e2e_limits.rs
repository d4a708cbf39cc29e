//! End to end over TCP on loopback, with the real binary: the checks and
//! limits a registrar applies to what PEs and PUs ask for. Registered
//! addresses must belong to the association and reach far enough
//! (`--min-address-scope`); `--max-pools`, `--max-pes-per-pool` and
//! `--max-connections` hold; Endpoint Unreachable reports are rate limited
//! per association (`--max-eu-rate`) and removal needs
//! `--max-bad-pe-reports` of them.

mod common;
use std::net::IpAddr;
use std::time::Duration;

use common::*;
use rserpool_wire::asap::*;
use rserpool_wire::*;

const RR: Policy = Policy::RoundRobin {};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Registers and returns the refusal's cause, if refused.
fn register(p: &mut Peer, pool: &str, id: u32, addrs: &[IpAddr]) -> Option<CauseCode> {
    p.send(&registration(pool, id, RR, addrs));
    let bytes = p.recv();
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
        panic!("expected a registration response, got {bytes:02x?}")
    };
    assert_eq!(r.pe_id, PeId(id));
    match (r.reject, r.error) {
        (false, None) => None,
        (true, Some(e)) => e.first_code(),
        other => panic!("reject flag and error disagree: {other:?}"),
    }
}

/// The user addresses the registrar hands out for the PEs of `pool`.
fn resolved_addresses(p: &mut Peer, pool: &str) -> Vec<IpAddr> {
    p.send(&resolution(pool, None));
    let bytes = p.recv();
    let AsapMessage::HandleResolutionResponse(h) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    h.elements
        .iter()
        .flat_map(|e| e.user_transport.addresses.iter().collect::<Vec<_>>())
        .collect()
}

#[test]
fn registered_addresses_must_belong_to_the_association_and_reach_far_enough() {
    let reg = Reg::start(&[]);
    let mut pe = reg.connect();
    // Our association's only address is 127.0.0.1: the others are dropped.
    // (A TCP transport carries one address; an SCTP one carries several.)
    let mixed = [ip("127.0.0.1"), ip("127.0.0.2"), ip("10.9.9.9")];
    pe.send(&AsapMessage::Registration(Registration {
        pool_handle: PoolHandle::new(b"scoped").unwrap(),
        element: PoolElement {
            id: PeId(1),
            home_server: ServerId(0),
            registration_life: 60_000,
            user_transport: Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, &mixed),
            policy: RR.into(),
            asap_transport: None,
        },
    }));
    let bytes = pe.recv();
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(!r.reject && r.error.is_none(), "{r:?}");
    let mut pu = reg.connect();
    assert_eq!(resolved_addresses(&mut pu, "scoped"), vec![ip("127.0.0.1")]);
    // None left: refused with "invalid values", nothing stored.
    assert_eq!(
        register(&mut pe, "foreign", 2, &[ip("10.9.9.9")]),
        Some(CauseCode::INVALID_VALUES)
    );
    assert_eq!(
        resolve(&mut pu, "foreign"),
        Err(CauseCode::UNKNOWN_POOL_HANDLE)
    );

    // With the default minimum scope (site-local), a loopback address is
    // refused even though it is the association's.
    let strict = Reg::start_raw(&[
        "--asap",
        "127.0.0.1:0",
        "--announce",
        "off",
        "--transport",
        "tcp",
    ]);
    let mut pe = strict.connect();
    assert_eq!(
        register(&mut pe, "scoped", 1, &[ip("127.0.0.1")]),
        Some(CauseCode::INVALID_VALUES)
    );
    let mut pu = strict.connect();
    assert_eq!(
        resolve(&mut pu, "scoped"),
        Err(CauseCode::UNKNOWN_POOL_HANDLE)
    );
}

#[test]
fn pool_and_pe_limits_refuse_with_lack_of_resources_and_keep_what_is_there() {
    let reg = Reg::start(&["--max-pools", "2", "--max-pes-per-pool", "2"]);
    let addrs = lo();
    let mut pe = reg.connect();
    assert_eq!(register(&mut pe, "a", 1, &addrs), None);
    assert_eq!(register(&mut pe, "b", 2, &addrs), None);
    // A third pool is one too many.
    assert_eq!(
        register(&mut pe, "c", 3, &addrs),
        Some(CauseCode::LACK_OF_RESOURCES)
    );
    // A second PE in "a" fits, a third does not.
    assert_eq!(register(&mut pe, "a", 4, &addrs), None);
    assert_eq!(
        register(&mut pe, "a", 5, &addrs),
        Some(CauseCode::LACK_OF_RESOURCES)
    );
    // Re-registering a PE that is there is not a new PE: still granted.
    assert_eq!(register(&mut pe, "a", 1, &addrs), None);
    let mut pu = reg.connect();
    let mut a = resolve(&mut pu, "a").unwrap();
    a.sort_unstable();
    assert_eq!(a, vec![1, 4]);
    assert_eq!(resolve(&mut pu, "b"), Ok(vec![2]));
    assert_eq!(resolve(&mut pu, "c"), Err(CauseCode::UNKNOWN_POOL_HANDLE));
    // Once a pool empties, there is room for another.
    pe.send(&AsapMessage::Deregistration(Deregistration {
        pool_handle: PoolHandle::new(b"b").unwrap(),
        pe_id: PeId(2),
    }));
    pe.recv();
    assert_eq!(register(&mut pe, "c", 3, &addrs), None);
}

#[test]
fn the_connection_limit_refuses_new_connections_and_serves_the_open_ones() {
    let reg = Reg::start(&["--max-connections", "3"]);
    let addrs = lo();
    let mut pe = reg.connect();
    assert_eq!(register(&mut pe, "full", 1, &addrs), None);
    let mut pu1 = reg.connect();
    let mut pu2 = reg.connect();
    assert_eq!(resolve(&mut pu1, "full"), Ok(vec![1]));
    assert_eq!(resolve(&mut pu2, "full"), Ok(vec![1]));
    // The fourth is closed at once.
    let mut extra = reg.connect();
    assert!(
        extra.closed_within(Duration::from_secs(2)),
        "a connection over the limit was kept"
    );
    // The open ones go on being served.
    assert_eq!(resolve(&mut pu1, "full"), Ok(vec![1]));
    // When one closes, there is room again.
    drop(pu2);
    assert!(eventually(Duration::from_secs(3), || {
        let mut again = reg.connect();
        !again.closed_within(Duration::from_millis(200))
            && resolve(&mut again, "full") == Ok(vec![1])
    }));
}

fn unreachable(pool: &str, id: u32) -> AsapMessage<'_> {
    AsapMessage::EndpointUnreachable(EndpointUnreachable {
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        pe_id: PeId(id),
    })
}

#[test]
fn unreachable_reports_are_rate_limited_per_association_and_counted() {
    let reg = Reg::start(&["--max-eu-rate", "1", "--max-bad-pe-reports", "3"]);
    let addrs = lo();
    let mut pe = reg.connect();
    assert_eq!(register(&mut pe, "eu", 1, &addrs), None);
    assert_eq!(register(&mut pe, "eu", 2, &addrs), None);

    // One pool user floods reports about PE 1: over 1 per second, all but
    // the first are dropped, so PE 1 stays.
    let mut flood = reg.connect();
    for _ in 0..20 {
        flood.send(&unreachable("eu", 1));
    }
    let mut pu = reg.connect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ids = resolve(&mut pu, "eu").unwrap();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2], "a flood from one association removed a PE");

    // Reports from separate associations each count: two more make three,
    // and PE 1 is gone while PE 2 stays.
    for _ in 0..2 {
        let mut other = reg.connect();
        other.send(&unreachable("eu", 1));
        // Make sure it was read before the connection goes.
        assert_eq!(resolve(&mut other, "eu").map(|v| !v.is_empty()), Ok(true));
    }
    assert!(
        eventually(Duration::from_secs(2), || resolve(&mut pu, "eu")
            == Ok(vec![2])),
        "three reports from three associations did not remove the PE"
    );
}
