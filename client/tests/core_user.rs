//! The pool user core under scripted time: handle resolution with the item
//! option, cache expiry, policy from the top-level parameter, Endpoint
//! Unreachable once per failure, GETNEXTSERVER, and sessions: failover
//! order, cookie echo, queued data, business cards, retry and give-up.

mod common;
use common::*;
use rserpool_client::*;
use rserpool_wire::asap::*;
use rserpool_wire::*;

const POOL: &str = "EchoPool";
const RR: Policy = Policy::RoundRobin {};

fn user(cache_ms: u64) -> PoolUserCore {
    let cfg = UserConfig {
        cache_lifetime: ms(cache_ms),
        ..UserConfig::default()
    };
    PoolUserCore::new(registrars(&["10.0.0.1:3863"]), cfg, 42)
}

fn drain(c: &mut PoolUserCore) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

fn events(c: &mut PoolUserCore) -> Vec<PuEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Connects the registrar the core asked for; returns its connection and
/// the messages sent on it once up.
fn connect_registrar(c: &mut PoolUserCore, now: u64) -> (ConnId, Vec<Action>) {
    let a = drain(c);
    let conn = a
        .iter()
        .find_map(|a| match a {
            Action::ConnectRegistrar { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("a registrar connection is asked for");
    c.handle_connected(at(now), conn);
    (conn, drain(c))
}

fn asap_sends(a: &[Action]) -> Vec<AsapType> {
    a.iter().filter_map(sent_type).map(|(_, t)| t).collect()
}

fn unreachable_reports(a: &[Action]) -> Vec<u32> {
    a.iter()
        .filter_map(|a| match a {
            Action::Send { ppid: 11, data, .. } => match AsapMessage::parse(data).unwrap() {
                AsapMessage::EndpointUnreachable(e) => Some(e.pe_id.0),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn pe_connects(a: &[Action]) -> Vec<(ConnId, u32)> {
    a.iter()
        .filter_map(|a| match a {
            Action::ConnectPe { conn, pe, .. } => Some((*conn, pe.id.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn resolution_asks_for_items_and_the_answer_is_cached_for_its_lifetime() {
    let mut c = user(1000);
    let p = pool(POOL);
    let Selection::Pending(req) = c.select(at(0), &p) else {
        panic!("nothing cached yet")
    };
    let (reg_conn, a) = connect_registrar(&mut c, 1);
    let Action::Send { data, .. } = &a[0] else {
        panic!()
    };
    let AsapMessage::HandleResolution(hr) = AsapMessage::parse(data).unwrap() else {
        panic!()
    };
    assert_eq!(hr.option, Some(HandleResolutionOption { items: 3 }));
    assert_eq!(hr.pool_handle.as_bytes(), POOL.as_bytes());
    c.handle_message(
        at(2),
        reg_conn,
        11,
        &resolution_response(POOL, Some(RR), &[pe(1, RR), pe(2, RR)]),
    );
    let ev = events(&mut c);
    assert!(
        matches!(&ev[0], PuEvent::Selected { request, result: Ok(p), .. } if *request == req && p.id == PeId(1)),
        "{ev:?}"
    );
    // Within the lifetime: from the cache, round robin, no request.
    assert!(matches!(c.select(at(500), &p), Selection::Ready(pe) if pe.id == PeId(2)));
    assert!(matches!(c.select(at(1002), &p), Selection::Ready(pe) if pe.id == PeId(1)));
    assert!(drain(&mut c).is_empty());
    // Stale: asks again.
    assert!(matches!(c.select(at(1003), &p), Selection::Pending(_)));
    assert_eq!(asap_sends(&drain(&mut c)), vec![AsapType::HandleResolution]);
}

#[test]
fn the_policy_type_comes_from_the_top_level_parameter() {
    let mut c = user(1000);
    let p = pool(POOL);
    let prio = |x| Policy::Priority { priority: x };
    c.resolve(at(0), &p);
    let (conn, _) = connect_registrar(&mut c, 1);
    c.handle_message(
        at(2),
        conn,
        11,
        &resolution_response(
            POOL,
            Some(prio(0)),
            &[pe(1, prio(1)), pe(2, prio(9)), pe(3, prio(4))],
        ),
    );
    let ev = events(&mut c);
    assert!(matches!(&ev[0], PuEvent::Resolved { result: Ok(v), .. } if v.len() == 3));
    for _ in 0..3 {
        assert!(matches!(c.select(at(3), &p), Selection::Ready(pe) if pe.id == PeId(2)));
    }
    // Without a top-level policy: round robin (RFC 5352), whatever the PEs say.
    c.resolve(at(4), &p);
    drain(&mut c);
    c.handle_message(
        at(5),
        conn,
        11,
        &resolution_response(POOL, None, &[pe(1, prio(1)), pe(2, prio(9))]),
    );
    let picks: Vec<u32> = (0..2)
        .map(|_| match c.select(at(6), &p) {
            Selection::Ready(pe) => pe.id.0,
            s => panic!("{s:?}"),
        })
        .collect();
    assert_eq!(picks, vec![1, 2]);
}

#[test]
fn unknown_pools_and_request_failures_reach_the_caller() {
    let mut c = user(1000);
    let p = pool("Nope");
    c.resolve(at(0), &p);
    let (conn, _) = connect_registrar(&mut c, 1);
    c.handle_message(at(2), conn, 11, &unknown_pool("Nope"));
    assert!(matches!(
        &events(&mut c)[0],
        PuEvent::Resolved {
            result: Err(ResolveError::UnknownPool),
            ..
        }
    ));
    // A registrar that never answers: two transmissions, then Timeout...
    c.resolve(at(10), &p);
    drain(&mut c);
    c.handle_timeout(at(3010));
    let a = drain(&mut c);
    assert!(a.contains(&Action::Close { conn }));
    // ...the request is sent again to the (re)connected registrar...
    let (conn2, a) = {
        let conn2 = a
            .iter()
            .find_map(|a| match a {
                Action::ConnectRegistrar { conn, .. } => Some(*conn),
                _ => None,
            })
            .unwrap();
        c.handle_connected(at(3020), conn2);
        (conn2, drain(&mut c))
    };
    assert_eq!(asap_sends(&a), vec![AsapType::HandleResolution]);
    c.handle_timeout(at(6020));
    let _ = conn2;
    assert!(matches!(
        &events(&mut c)[0],
        PuEvent::Resolved {
            result: Err(ResolveError::Request(RequestError::Timeout)),
            ..
        }
    ));
}

#[test]
fn endpoint_unreachable_once_per_failure_event_and_next_server_excludes_it() {
    let mut c = user(10_000);
    let p = pool(POOL);
    c.resolve(at(0), &p);
    let (conn, _) = connect_registrar(&mut c, 1);
    let answer = resolution_response(POOL, Some(RR), &[pe(1, RR), pe(2, RR), pe(3, RR)]);
    c.handle_message(at(2), conn, 11, &answer);
    events(&mut c);
    // GETNEXTSERVER after PE 1 failed: reports it and never hands it out.
    let Selection::Ready(next) = c.select_next(at(3), &p, PeId(1)) else {
        panic!()
    };
    assert_ne!(next.id, PeId(1));
    assert_eq!(unreachable_reports(&drain(&mut c)), vec![1]);
    assert!(
        !c.report_failure(at(4), &p, PeId(1)),
        "same failure event: no second report"
    );
    assert!(drain(&mut c).is_empty());
    assert!(c.cached(&p).iter().all(|e| e.id != PeId(1)));
    // A fresh answer lists it again: a new failure is a new event.
    c.resolve(at(5), &p);
    drain(&mut c);
    c.handle_message(at(6), conn, 11, &answer);
    assert!(c.report_failure(at(7), &p, PeId(1)));
    assert_eq!(unreachable_reports(&drain(&mut c)), vec![1]);
}

/// Opens a session to a pool of PEs 1, 2, 3 (round robin); returns the core,
/// the registrar connection and the first PE connection.
fn session_on_pe1() -> (PoolUserCore, SessionId, ConnId, ConnId) {
    let mut c = user(10_000);
    let p = pool(POOL);
    let s = c.open_session(at(0), &p);
    let (reg_conn, a) = connect_registrar(&mut c, 1);
    assert_eq!(asap_sends(&a), vec![AsapType::HandleResolution]);
    c.handle_message(
        at(2),
        reg_conn,
        11,
        &resolution_response(POOL, Some(RR), &[pe(1, RR), pe(2, RR), pe(3, RR)]),
    );
    let pc = pe_connects(&drain(&mut c));
    assert_eq!(pc.len(), 1);
    assert_eq!(pc[0].1, 1);
    // Data sent before the connection is up waits for it.
    assert!(c.session_send(at(3), s, 0, b"early".to_vec()));
    assert!(drain(&mut c).is_empty());
    c.handle_connected(at(4), pc[0].0);
    let a = drain(&mut c);
    assert_eq!(
        a,
        vec![Action::Send {
            conn: pc[0].0,
            ppid: 0,
            data: b"early".to_vec()
        }]
    );
    assert_eq!(
        events(&mut c),
        vec![PuEvent::SessionUp {
            session: s,
            pe: PeId(1),
            failover: false,
            cookie_echoed: false
        }]
    );
    (c, s, reg_conn, pc[0].0)
}

#[test]
fn failover_echoes_the_last_cookie_first_then_sends_what_was_queued() {
    let (mut c, s, reg_conn, pe1) = session_on_pe1();
    // Data in both directions, and two cookies (only the last counts).
    c.handle_message(at(10), pe1, 0, b"pong");
    c.handle_message(
        at(11),
        pe1,
        11,
        &ControlMessage::Cookie(b"c1".to_vec()).encode(),
    );
    c.handle_message(
        at(12),
        pe1,
        11,
        &ControlMessage::Cookie(b"c2".to_vec()).encode(),
    );
    assert_eq!(
        events(&mut c),
        vec![
            PuEvent::SessionData {
                session: s,
                ppid: 0,
                data: b"pong".to_vec()
            },
            PuEvent::SessionCookie {
                session: s,
                cookie: b"c1".to_vec()
            },
            PuEvent::SessionCookie {
                session: s,
                cookie: b"c2".to_vec()
            },
        ]
    );
    assert_eq!(c.session_cookie(s), Some(&b"c2"[..]));
    // PE 1 dies (abort): reported, next PE in order, data meanwhile queued.
    c.handle_closed(at(20), pe1, true);
    let a = drain(&mut c);
    assert_eq!(unreachable_reports(&a), vec![1]);
    assert!(
        a.iter()
            .filter_map(sent_type)
            .all(|(conn, _)| conn == reg_conn)
    );
    let pc = pe_connects(&a);
    assert_eq!(pc[0].1, 2);
    assert_eq!(
        events(&mut c),
        vec![PuEvent::SessionDown {
            session: s,
            pe: PeId(1)
        }]
    );
    c.session_send(at(21), s, 0, b"during".to_vec());
    assert_eq!(c.session_queued(s), 1);
    c.handle_connected(at(22), pc[0].0);
    let a = drain(&mut c);
    assert_eq!(
        a,
        vec![
            Action::Send {
                conn: pc[0].0,
                ppid: 11,
                data: ControlMessage::CookieEcho(b"c2".to_vec()).encode()
            },
            Action::Send {
                conn: pc[0].0,
                ppid: 0,
                data: b"during".to_vec()
            },
        ]
    );
    assert_eq!(
        events(&mut c),
        vec![PuEvent::SessionUp {
            session: s,
            pe: PeId(2),
            failover: true,
            cookie_echoed: true
        }]
    );
}

#[test]
fn data_the_transport_refused_goes_to_the_next_pe() {
    let (mut c, s, _, pe1) = session_on_pe1();
    c.handle_send_failed(at(10), pe1, 0, b"lost?".to_vec());
    let a = drain(&mut c);
    assert_eq!(unreachable_reports(&a), vec![1]);
    let pc = pe_connects(&a);
    c.handle_connected(at(11), pc[0].0);
    assert_eq!(
        drain(&mut c),
        vec![Action::Send {
            conn: pc[0].0,
            ppid: 0,
            data: b"lost?".to_vec()
        }]
    );
    assert_eq!(c.session_pe(s).unwrap().id, PeId(2));
}

#[test]
fn a_graceful_close_fails_over_without_a_report() {
    let (mut c, _s, _, pe1) = session_on_pe1();
    c.handle_closed(at(10), pe1, false);
    let a = drain(&mut c);
    assert!(unreachable_reports(&a).is_empty());
    assert_eq!(pe_connects(&a)[0].1, 2);
}

#[test]
fn failover_order_is_cache_order_then_business_card_order() {
    let (mut c, s, _, pe1) = session_on_pe1();
    // PE 1 names PE 3 as its preferred backup.
    let card = ControlMessage::BusinessCard {
        pool: pool(POOL),
        elements: vec![PeInfo::from_wire(&rserpool_wire::PoolElement {
            id: PeId(3),
            home_server: ServerId(1),
            registration_life: 1,
            user_transport: Transport::sctp(
                7003,
                TransportUse::DATA_PLUS_CONTROL,
                &[ip("10.0.0.3")],
            ),
            policy: RR.into(),
            asap_transport: None,
        })],
    };
    c.handle_message(at(5), pe1, 11, &card.encode());
    c.session_failover(at(10), s, false);
    let pc = pe_connects(&drain(&mut c));
    assert_eq!(pc[0].1, 3, "the business card wins over round robin");
    // PE 3 cannot be reached either: connect timeout, then the cache (PE 2).
    c.handle_timeout(at(10 + 5000));
    let a = drain(&mut c);
    assert_eq!(unreachable_reports(&a), vec![3]);
    assert_eq!(pe_connects(&a)[0].1, 2);
}

#[test]
fn when_every_pe_fails_the_session_resolves_again_and_finally_gives_up() {
    let (mut c, s, reg_conn, pe1) = session_on_pe1();
    c.handle_closed(at(10), pe1, true);
    let mut now = 10;
    // PEs 2 and 3 refuse connections.
    for id in [2, 3] {
        let pc = pe_connects(&drain(&mut c));
        assert_eq!(pc[0].1, id);
        now += 1;
        c.handle_connect_failed(at(now), pc[0].0);
    }
    // All tried: wait 250 ms, then resolve again.
    assert!(pe_connects(&drain(&mut c)).is_empty());
    assert_eq!(c.poll_timeout(), Some(at(now + 250)));
    now += 250;
    c.handle_timeout(at(now));
    assert_eq!(asap_sends(&drain(&mut c)), vec![AsapType::HandleResolution]);
    c.handle_message(
        at(now),
        reg_conn,
        11,
        &resolution_response(POOL, Some(RR), &[pe(2, RR)]),
    );
    let pc = pe_connects(&drain(&mut c));
    assert_eq!(pc[0].1, 2, "tried again after the pause");
    // Keep failing until the 10 s failover timeout.
    let mut conn = pc[0].0;
    loop {
        now += 100;
        c.handle_connect_failed(at(now), conn);
        let mut a = drain(&mut c);
        while pe_connects(&a).is_empty() {
            if events(&mut c)
                .iter()
                .any(|e| matches!(e, PuEvent::SessionFailed { .. }))
            {
                assert!(now >= 10 + 10_000, "gave up at {now}");
                assert!(!c.session_send(at(now), s, 0, b"x".to_vec()));
                return;
            }
            now = c.poll_timeout().unwrap().as_micros() / 1000;
            c.handle_timeout(at(now));
            a = drain(&mut c);
            if asap_sends(&a).contains(&AsapType::HandleResolution) {
                c.handle_message(
                    at(now),
                    reg_conn,
                    11,
                    &resolution_response(POOL, Some(RR), &[pe(2, RR)]),
                );
                a.extend(drain(&mut c));
            }
        }
        conn = pe_connects(&a)[0].0;
        assert!(now < 10 + 11_000, "never gave up");
    }
}
