//! Scripted scenarios with explicit timestamps: registration rules, keep-alive,
//! expiry, unreachable reports, association loss, ENRP updates, ownership,
//! checksums and handle-table continuation.

mod common;
use std::time::Duration;

use common::*;
use rserpool_shard::{Event, RegistrationOutcome, TableCursor, Time};
use rserpool_wire::asap::*;
use rserpool_wire::enrp::{HandleUpdate, UpdateAction};
use rserpool_wire::*;

const RR: Policy = Policy::RoundRobin {};
const T0: Time = Time::ZERO;

fn secs(s: u64) -> Time {
    Time::from_secs(s)
}

#[test]
fn registration_creates_pool_and_answers_with_pe_id() {
    let mut s = shard(|_| {});
    let (o, out) = register(&mut s, T0, "EchoPool", 7, RR);
    assert_eq!(o, RegistrationOutcome::Added);
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&out).unwrap() else {
        panic!()
    };
    assert!(!r.reject && r.error.is_none());
    assert_eq!(
        (r.pool_handle.as_bytes(), r.pe_id),
        (&b"EchoPool"[..], PeId(7))
    );
    assert_eq!((s.pool_count(), s.pe_count(), s.owned_count(ME)), (1, 1, 1));
    // Same PE again: an update, not a second PE.
    assert_eq!(
        register(&mut s, T0, "EchoPool", 7, RR).0,
        RegistrationOutcome::Updated
    );
    assert_eq!(s.pe_count(), 1);
    s.check_invariants().unwrap();
}

#[test]
fn consistency_checks_send_the_rfc_causes_with_the_pools_values() {
    let mut s = shard(|_| {});
    register(&mut s, T0, "p", 1, Policy::LeastUsed { load: 5 });
    // Wrong transport type: 0x7 with the pool's transport (an SCTP one).
    let (o, out) = register_with(
        &mut s,
        T0,
        "p",
        2,
        2,
        RR,
        TransportKind::Tcp,
        TransportUse::DATA_PLUS_CONTROL,
        1,
    );
    assert_eq!(
        o,
        RegistrationOutcome::Rejected(CauseCode::INCONSISTENT_TRANSPORT)
    );
    let (code, info) = reg_cause(&out).unwrap();
    assert_eq!(code, CauseCode::INCONSISTENT_TRANSPORT);
    assert_eq!(&info[..2], &param_type::SCTP_TRANSPORT.to_be_bytes());
    // Wrong data/control configuration: 0x8 (checked before the policy).
    let (o, _) = register_with(
        &mut s,
        T0,
        "p",
        2,
        2,
        RR,
        TransportKind::Sctp,
        TransportUse::DATA_ONLY,
        1,
    );
    assert_eq!(
        o,
        RegistrationOutcome::Rejected(CauseCode::INCONSISTENT_DATA_CONTROL)
    );
    // Wrong policy: 0x5 with the pool's policy parameter (Least Used).
    let (o, out) = register(&mut s, T0, "p", 2, RR);
    assert_eq!(
        o,
        RegistrationOutcome::Rejected(CauseCode::INCONSISTENT_POLICY)
    );
    let (_, info) = reg_cause(&out).unwrap();
    let Some((Param::Policy(p), _)) = Param::parse_prefix(&info).unwrap() else {
        panic!()
    };
    assert_eq!(p, PolicyParam::Known(Policy::LeastUsed { load: 5 }));
    // A PE of the right kind is fine; rejections changed nothing.
    assert_eq!(
        register(&mut s, T0, "p", 2, Policy::LeastUsed { load: 1 }).0,
        RegistrationOutcome::Added
    );
    assert_eq!(s.stats().registrations_rejected, 3);
    s.check_invariants().unwrap();
}

#[test]
fn pe_id_zero_unknown_policy_and_unusable_addresses_are_invalid_values() {
    let mut s = shard(|c| c.min_address_scope = rserpool_shard::addr::Scope::SiteLocal);
    let (o, _) = register(&mut s, T0, "p", 0, RR);
    assert_eq!(o, RegistrationOutcome::Rejected(CauseCode::INVALID_VALUES));

    // A user address that is not the association's.
    let assoc_addrs = [ip("10.9.9.9")];
    let other = [ip("10.1.1.1")];
    let reg = |addrs| Registration {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        element: PoolElement {
            id: PeId(5),
            home_server: ServerId(0),
            registration_life: 1000,
            user_transport: Transport::sctp(7000, TransportUse::DATA_ONLY, addrs),
            policy: RR.into(),
            asap_transport: None,
        },
    };
    let mut out = Vec::new();
    let a = assoc(5, &assoc_addrs);
    assert_eq!(
        s.handle_registration(T0, &a, &reg(&other), &mut out),
        RegistrationOutcome::Rejected(CauseCode::INVALID_VALUES)
    );
    // Loopback below the minimum scope is dropped; the site-local one stays.
    let lo = [ip("127.0.0.1"), ip("10.9.9.9")];
    let a2_addrs = [ip("127.0.0.1"), ip("10.9.9.9")];
    out.clear();
    assert_eq!(
        s.handle_registration(T0, &assoc(6, &a2_addrs), &reg(&lo), &mut out),
        RegistrationOutcome::Added
    );
    let r = resolve_raw(&mut s, "p", 1);
    let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&r).unwrap() else {
        panic!()
    };
    let pe = r.elements.iter().next().unwrap();
    assert_eq!(
        pe.user_transport.addresses.iter().collect::<Vec<_>>(),
        vec![ip("10.9.9.9")]
    );
    assert_eq!(pe.home_server, ME);
    assert!(pe.asap_transport.is_none(), "no ASAP transport towards PUs");
    // Unknown policy type.
    let unknown = Registration {
        element: PoolElement {
            policy: PolicyParam::Unknown {
                policy_type: PolicyType(0x8000_0001),
                data: &[],
            },
            ..reg(&lo).element
        },
        ..reg(&lo)
    };
    out.clear();
    assert_eq!(
        s.handle_registration(T0, &assoc(6, &a2_addrs), &unknown, &mut out),
        RegistrationOutcome::Rejected(CauseCode::INVALID_VALUES)
    );
}

#[test]
fn limits_give_lack_of_resources() {
    let mut s = shard(|c| {
        c.max_pes_per_pool = 2;
        c.max_pools = 2;
    });
    assert_eq!(
        register(&mut s, T0, "a", 1, RR).0,
        RegistrationOutcome::Added
    );
    assert_eq!(
        register(&mut s, T0, "a", 2, RR).0,
        RegistrationOutcome::Added
    );
    assert_eq!(
        register(&mut s, T0, "a", 3, RR).0,
        RegistrationOutcome::Rejected(CauseCode::LACK_OF_RESOURCES)
    );
    assert_eq!(
        register(&mut s, T0, "a", 2, RR).0,
        RegistrationOutcome::Updated,
        "updates are always fine"
    );
    assert_eq!(
        register(&mut s, T0, "b", 4, RR).0,
        RegistrationOutcome::Added
    );
    assert_eq!(
        register(&mut s, T0, "c", 5, RR).0,
        RegistrationOutcome::Rejected(CauseCode::LACK_OF_RESOURCES)
    );
}

#[test]
fn resolution_of_unknown_pool_and_policy_copy_of_first_pe() {
    let mut s = shard(|_| {});
    let out = resolve_raw(&mut s, "nope", 3);
    let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.error.unwrap().first_code(),
        Some(CauseCode::UNKNOWN_POOL_HANDLE)
    );
    assert!(r.elements.is_empty());

    register(
        &mut s,
        T0,
        "w",
        1,
        Policy::WeightedRoundRobin { weight: 10 },
    );
    register(
        &mut s,
        T0,
        "w",
        2,
        Policy::WeightedRoundRobin { weight: 20 },
    );
    let out = resolve_raw(&mut s, "w", 3);
    let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out).unwrap() else {
        panic!()
    };
    let first = r.elements.iter().next().unwrap();
    assert_eq!(
        r.policy,
        Some(first.policy),
        "RSPLIB copies the first PE's policy"
    );
    assert_eq!(r.elements.len(), 2);
    // Re-encoding the decoded response gives the same bytes: the copied PE
    // bytes are canonical.
    assert_eq!(AsapMessage::parse(&out).unwrap().to_vec().unwrap(), out);
}

#[test]
fn deregistration_unknown_is_success_and_proxy_is_refused() {
    let mut s = shard(|_| {});
    let d = Deregistration {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        pe_id: PeId(9),
    };
    let addrs = assoc_addrs(9);
    let mut out = Vec::new();
    s.handle_deregistration(T0, &assoc(9, &addrs), &d, &mut out);
    let AsapMessage::DeregistrationResponse(r) = AsapMessage::parse(&out).unwrap() else {
        panic!()
    };
    assert!(r.error.is_none());

    register(&mut s, T0, "p", 9, RR);
    events(&mut s);
    let other = assoc_addrs(10);
    out.clear();
    s.handle_deregistration(T0, &assoc(10, &other), &d, &mut out);
    let AsapMessage::DeregistrationResponse(r) = AsapMessage::parse(&out).unwrap() else {
        panic!()
    };
    assert_eq!(r.error.unwrap().first_code(), Some(CauseCode::SECURITY));
    assert_eq!(s.pe_count(), 1);
    out.clear();
    s.handle_deregistration(T0, &assoc(9, &addrs), &d, &mut out);
    assert_eq!(
        (s.pe_count(), s.pool_count()),
        (0, 0),
        "the last PE takes its pool along"
    );
    let ev = events(&mut s);
    assert!(
        matches!(
            &ev[..],
            [Event::Update {
                action: UpdateAction::DelPe,
                ..
            }]
        ),
        "{ev:?}"
    );
    s.check_invariants().unwrap();
}

#[test]
fn keep_alive_cycle_ack_and_timeout() {
    let mut s = shard(|_| {});
    register(&mut s, T0, "p", 1, RR);
    register(&mut s, T0, "p", 2, RR);
    events(&mut s);
    // Nothing before the interval.
    run_until(&mut s, secs(4));
    assert!(transmits(&mut s).is_empty());
    assert!(s.poll_timeout().unwrap() <= secs(5) + Duration::from_millis(10));
    run_until(&mut s, secs(5) + Duration::from_millis(10));
    let t = transmits(&mut s);
    assert_eq!(t.len(), 2);
    for (to, bytes) in &t {
        let AsapMessage::EndpointKeepAlive(k) = AsapMessage::parse(bytes).unwrap() else {
            panic!()
        };
        assert!(!k.home);
        assert_eq!(
            (k.server_id, k.pe_id),
            (ME, Some(PeId(*to as u32))),
            "sent on the PE's own association"
        );
    }
    // PE 1 acks, PE 2 does not.
    let ack = EndpointKeepAliveAck {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        pe_id: PeId(1),
    };
    let a1 = assoc_addrs(1);
    s.handle_keep_alive_ack(secs(6), &assoc(1, &a1), &ack);
    run_until(&mut s, secs(10) + Duration::from_millis(20));
    assert_eq!(s.pe_count(), 1);
    assert_eq!(s.stats().keep_alive_timeouts, 1);
    let ev = events(&mut s);
    assert!(ev.contains(&Event::AbortAssociation(2)), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Update {
            action: UpdateAction::DelPe,
            ..
        }
    )));
    // PE 1 gets its next keep-alive 5 s after its ack (at 11 s).
    assert!(transmits(&mut s).is_empty());
    run_until(&mut s, secs(11) + Duration::from_millis(10));
    let t = transmits(&mut s);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].0, 1);
    s.check_invariants().unwrap();
}

#[test]
fn reregistration_restarts_the_keep_alive_cycle() {
    let mut s = shard(|_| {});
    register(&mut s, T0, "p", 1, RR);
    run_until(&mut s, secs(5));
    assert_eq!(transmits(&mut s).len(), 1);
    // No ack, but a re-registration at 8 s proves the PE alive.
    register(&mut s, secs(8), "p", 1, RR);
    run_until(&mut s, secs(12));
    assert_eq!(
        s.pe_count(),
        1,
        "the pending keep-alive timeout was cancelled"
    );
    run_until(&mut s, secs(13) + Duration::from_millis(10));
    assert_eq!(transmits(&mut s).len(), 1);
}

#[test]
fn unreachable_reports_remove_after_threshold() {
    let mut s = shard(|_| {});
    register(&mut s, T0, "p", 1, RR);
    let eu = EndpointUnreachable {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        pe_id: PeId(1),
    };
    s.handle_unreachable(T0, &eu);
    s.handle_unreachable(T0, &eu);
    assert_eq!(s.pe_count(), 1);
    s.handle_unreachable(T0, &eu);
    assert_eq!(s.pe_count(), 0);
    assert_eq!(s.stats().unreachable_removed, 1);
    // Unknown PEs are ignored.
    s.handle_unreachable(T0, &eu);
}

#[test]
fn association_loss_removes_its_pes_only() {
    let mut s = shard(|_| {});
    // PEs 1 and 2 on association 1, PE 3 on association 3.
    register_with(
        &mut s,
        T0,
        "p",
        1,
        1,
        RR,
        TransportKind::Sctp,
        TransportUse::DATA_PLUS_CONTROL,
        1000,
    );
    register_with(
        &mut s,
        T0,
        "q",
        2,
        1,
        RR,
        TransportKind::Sctp,
        TransportUse::DATA_PLUS_CONTROL,
        1000,
    );
    register(&mut s, T0, "p", 3, RR);
    s.handle_association_lost(T0, 1);
    assert_eq!((s.pe_count(), s.pool_count()), (1, 1));
    assert_eq!(resolve(&mut s, "p", 3), [3]);
    s.check_invariants().unwrap();
}

#[test]
fn owned_pes_ignore_their_life_unless_asked() {
    let mut s = shard(|_| {});
    register_with(
        &mut s,
        T0,
        "p",
        1,
        1,
        RR,
        TransportKind::Sctp,
        TransportUse::DATA_PLUS_CONTROL,
        2000,
    );
    let a = assoc_addrs(1);
    let ack = EndpointKeepAliveAck {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        pe_id: PeId(1),
    };
    for t in [5u64, 10, 15] {
        run_until(&mut s, secs(t));
        transmits(&mut s);
        s.handle_keep_alive_ack(secs(t), &assoc(1, &a), &ack);
    }
    assert_eq!(
        s.pe_count(),
        1,
        "life 2000 ms passed long ago, keep-alives keep it"
    );

    let mut s = shard(|c| c.expire_owned = true);
    register_with(
        &mut s,
        T0,
        "p",
        1,
        1,
        RR,
        TransportKind::Sctp,
        TransportUse::DATA_PLUS_CONTROL,
        2000,
    );
    run_until(&mut s, Time::from_millis(2010));
    assert_eq!(s.pe_count(), 0);
    let t = transmits(&mut s);
    let AsapMessage::DeregistrationResponse(r) = AsapMessage::parse(&t[0].1).unwrap() else {
        panic!()
    };
    assert_eq!(
        (t[0].0, r.pe_id),
        (1, PeId(1)),
        "unsolicited notice on the PE's association"
    );
}

fn peer_update<'a>(
    action: UpdateAction,
    pool: &'a [u8],
    id: u32,
    life: u32,
    addrs: &'a [std::net::IpAddr],
) -> HandleUpdate<'a> {
    HandleUpdate {
        takeover_suggested: false,
        sender: PEER,
        receiver: ServerId(0),
        action,
        pool_handle: PoolHandle::new(pool).unwrap(),
        element: PoolElement {
            id: PeId(id),
            home_server: PEER,
            registration_life: life,
            user_transport: Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, addrs),
            policy: RR.into(),
            asap_transport: Some(Transport::sctp(50000, TransportUse::DATA_ONLY, addrs)),
        },
    }
}

#[test]
fn peer_updates_add_expire_and_delete() {
    let mut s = shard(|_| {});
    let a = [ip("10.5.5.5")];
    s.apply_update(
        T0,
        PEER,
        &peer_update(UpdateAction::AddPe, b"p", 1, 30_000, &a),
    );
    s.apply_update(
        T0,
        PEER,
        &peer_update(UpdateAction::AddPe, b"p", 2, 30_000, &a),
    );
    assert_eq!(
        (s.pe_count(), s.owned_count(PEER), s.owned_count(ME)),
        (2, 2, 0)
    );
    assert!(events(&mut s).is_empty(), "nothing is re-replicated");
    // Refreshing PE 1 at 20 s restarts its life; PE 2 expires at 30 s.
    s.apply_update(
        secs(20),
        PEER,
        &peer_update(UpdateAction::AddPe, b"p", 1, 30_000, &a),
    );
    run_until(&mut s, secs(31));
    assert_eq!(resolve(&mut s, "p", 3), [1]);
    assert!(transmits(&mut s).is_empty(), "no keep-alives to learnt PEs");
    s.apply_update(
        secs(32),
        PEER,
        &peer_update(UpdateAction::DelPe, b"p", 1, 30_000, &a),
    );
    assert_eq!(s.pe_count(), 0);
    // An update naming us as owner is ignored.
    let mut mine = peer_update(UpdateAction::AddPe, b"p", 3, 30_000, &a);
    mine.element.home_server = ME;
    s.apply_update(secs(33), PEER, &mine);
    assert_eq!(s.pe_count(), 0);
    s.check_invariants().unwrap();
}

#[test]
fn ownership_moves_with_registration_and_update() {
    let mut s = shard(|_| {});
    let a = [ip("10.5.5.5")];
    s.apply_update(
        T0,
        PEER,
        &peer_update(UpdateAction::AddPe, b"p", 1, 30_000, &a),
    );
    // The PE re-registers with us: we own it now, and tell the peers.
    register(&mut s, T0, "p", 1, RR);
    assert_eq!((s.owned_count(ME), s.owned_count(PEER)), (1, 0));
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Update {
            action: UpdateAction::AddPe,
            ..
        }]
    ));
    // A DEL from the old owner does not remove it any more.
    s.apply_update(
        T0,
        PEER,
        &peer_update(UpdateAction::DelPe, b"p", 1, 30_000, &a),
    );
    assert_eq!(s.pe_count(), 1);
    // It moves back to the peer: our keep-alives stop.
    s.apply_update(
        T0,
        PEER,
        &peer_update(UpdateAction::AddPe, b"p", 1, 30_000, &a),
    );
    assert_eq!((s.owned_count(ME), s.owned_count(PEER)), (0, 1));
    run_until(&mut s, secs(6));
    assert!(transmits(&mut s).is_empty());
    s.check_invariants().unwrap();
}

#[test]
fn checksums_match_the_spec_example() {
    // Spec digest §12.5: "EchoService" with PEs 0x1a2b3c4d and 0x5e6f7081.
    let mut s = shard(|_| {});
    assert_eq!(s.checksum(ME), 0xffff);
    register(&mut s, T0, "EchoService", 0x1a2b_3c4d, RR);
    register(&mut s, T0, "EchoService", 0x5e6f_7081, RR);
    assert_eq!(s.checksum(ME), 0x5672);
    let addrs = assoc_addrs(0x5e6f_7081);
    let d = Deregistration {
        pool_handle: PoolHandle::new(b"EchoService").unwrap(),
        pe_id: PeId(0x5e6f_7081),
    };
    s.handle_deregistration(T0, &assoc(0x5e6f_7081, &addrs), &d, &mut Vec::new());
    assert_eq!(s.checksum(ME), 0x6775);
}

#[test]
fn table_listing_in_chunks_returns_every_pe_once_despite_changes() {
    let mut s = shard(|_| {});
    let a = [ip("10.5.5.5")];
    for id in 1..=50 {
        register(&mut s, T0, if id % 3 == 0 { "x" } else { "y" }, id, RR);
        s.apply_update(
            T0,
            PEER,
            &peer_update(UpdateAction::AddPe, b"z", 1000 + id, 30_000, &a),
        );
    }
    let mut cursor = TableCursor::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut buf = vec![0u8; 65_536];
    let mut chunks = 0;
    while !cursor.is_done() {
        let mut w = Writer::new(&mut buf);
        let n = s.fill_table(None, &mut cursor, 7, &mut w);
        let len = w.finish().unwrap();
        assert!(n <= 7);
        // Parse the chunk as the body of a Handle Table Response.
        let mut region = &buf[..len];
        let mut current = None;
        while let Some((p, rest)) = Param::parse_prefix(region).unwrap() {
            match p {
                Param::PoolHandle(h) => current = Some(h.as_bytes().to_vec()),
                Param::PoolElement(e) => {
                    assert!(
                        e.asap_transport.is_some(),
                        "ENRP listings carry the ASAP transport"
                    );
                    assert!(
                        seen.insert((current.clone().unwrap(), e.id.0)),
                        "PE listed twice"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
            region = rest;
        }
        chunks += 1;
        if chunks == 3 {
            // Meanwhile: one PE already sent leaves, one new PE arrives.
            s.handle_association_lost(T0, 1);
            register(&mut s, T0, "y", 77, RR);
        }
    }
    // 100 PEs at the start (PE 1 was sent before it left) plus PE 77.
    assert_eq!(seen.len(), 101);
    assert!(
        seen.contains(&(b"y".to_vec(), 77)),
        "a PE joining mid-listing is sent"
    );
    assert!(chunks >= 15);

    // Own PEs only (W flag).
    let mut cursor = TableCursor::default();
    let mut w = Writer::new(&mut buf);
    let n = s.fill_table(Some(ME), &mut cursor, 1000, &mut w);
    assert!(cursor.is_done());
    assert_eq!(n, s.owned_count(ME));
}

#[test]
fn takeover_rehomes_and_adopted_pes_must_ack() {
    let mut s = shard(|_| {});
    let a = [ip("10.5.5.5")];
    for id in 1..=3 {
        s.apply_update(
            T0,
            PEER,
            &peer_update(UpdateAction::AddPe, b"p", id, 60_000, &a),
        );
    }
    let before_sum = s.checksum_sum(PEER);
    s.rehome(secs(1), PEER, ME);
    assert_eq!((s.owned_count(ME), s.owned_count(PEER)), (3, 0));
    assert_eq!(s.checksum_sum(ME), before_sum);
    let ev = events(&mut s);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Adopted { .. }))
            .count(),
        3
    );
    // PE 2 answers the H-bit keep-alive on a new association.
    let na = [ip("10.5.5.5")];
    let ack = EndpointKeepAliveAck {
        pool_handle: PoolHandle::new(b"p").unwrap(),
        pe_id: PeId(2),
    };
    s.handle_keep_alive_ack(secs(2), &assoc(99, &na), &ack);
    run_until(&mut s, secs(7));
    assert_eq!(resolve(&mut s, "p", 5), [2], "silent adoptees are removed");
    s.check_invariants().unwrap();
    // And PE 2 is now kept alive on association 99.
    run_until(&mut s, secs(8));
    assert_eq!(
        transmits(&mut s).iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![99]
    );
}
