//! The pool element core under scripted time: registration, server hunt,
//! timeouts and retries, home changes (failure, H bit), keep-alives,
//! re-registration with load changes, announces, deregistration.

mod common;
use common::*;
use rserpool_client::*;
use rserpool_wire::asap::*;
use rserpool_wire::*;

const POOL: &str = "EchoPool";
const ID: u32 = 0x1234;

fn spec() -> PeSpec {
    let mut s = PeSpec::new(
        pool(POOL),
        PeId(ID),
        Proto::Sctp,
        7001,
        vec![ip("10.0.0.9")],
    );
    s.reregistration_interval = ms(1000);
    s.policy = Policy::LeastUsed { load: 0 };
    s
}

fn drain(c: &mut PoolElementCore) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

fn events(c: &mut PoolElementCore) -> Vec<PeEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn connects(actions: &[Action]) -> Vec<(ConnId, RegistrarAddr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ConnectRegistrar { conn, to } => Some((*conn, to.clone())),
            _ => None,
        })
        .collect()
}

fn registrations(actions: &[Action]) -> Vec<(ConnId, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                conn,
                ppid: 11,
                data,
            } if data[0] == 1 => Some((*conn, data.clone())),
            _ => None,
        })
        .collect()
}

fn element(
    bytes: &[u8],
) -> (
    u32,
    u32,
    u32,
    Policy,
    Vec<std::net::IpAddr>,
    u16,
    TransportUse,
) {
    let AsapMessage::Registration(r) = AsapMessage::parse(bytes).unwrap() else {
        panic!("not a registration")
    };
    let e = r.element;
    (
        e.id.0,
        e.home_server.0,
        e.registration_life,
        e.policy.known().unwrap(),
        e.user_transport.addresses.iter().collect(),
        e.user_transport.port,
        e.user_transport.transport_use,
    )
}

/// Registers with the first registrar of `list`; returns the core and the
/// registrar connection.
fn registered(list: &[&str]) -> (PoolElementCore, ConnId) {
    let mut c = PoolElementCore::new(spec(), registrars(list));
    c.register(at(0));
    let a = drain(&mut c);
    let (conn, to) = connects(&a)[0].clone();
    assert_eq!(to, reg(list[0]));
    c.handle_connected(at(10), conn);
    let a = drain(&mut c);
    assert_eq!(registrations(&a).len(), 1);
    c.handle_message(at(20), conn, &registration_response(POOL, ID, None));
    assert!(events(&mut c).contains(&PeEvent::Registered {
        first: true,
        server: None
    }));
    assert_eq!(c.state(), PeState::Registered);
    (c, conn)
}

#[test]
fn registration_carries_the_spec_with_life_in_milliseconds() {
    let mut c = PoolElementCore::new(spec(), registrars(&["10.0.0.1:3863"]));
    c.register(at(0));
    let a = drain(&mut c);
    let (conn, _) = connects(&a)[0].clone();
    c.handle_connected(at(5), conn);
    let a = drain(&mut c);
    let regs = registrations(&a);
    assert_eq!(regs[0].0, conn);
    let (id, home, life, policy, addrs, port, tu) = element(&regs[0].1);
    assert_eq!((id, home, life), (ID, 0, 3000), "life = 3 x 1000 ms");
    assert_eq!(policy, Policy::LeastUsed { load: 0 });
    assert_eq!(addrs, vec![ip("10.0.0.9")]);
    assert_eq!((port, tu), (7001, TransportUse::DATA_PLUS_CONTROL));
    let mut s = spec();
    s.registration_life = Some(ms(5500));
    s.life_unit = LifeUnit::Seconds;
    assert_eq!(s.registration_life_wire(), 5);
}

#[test]
fn reregistration_on_interval_carries_load_changes() {
    let (mut c, conn) = registered(&["10.0.0.1:3863"]);
    assert_eq!(c.poll_timeout(), Some(at(1020)), "next re-registration");
    // A small load change waits for the periodic re-registration.
    c.set_load(at(100), 1000);
    assert!(registrations(&drain(&mut c)).is_empty());
    c.handle_timeout(at(1020));
    let r = registrations(&drain(&mut c));
    assert_eq!(r.len(), 1);
    assert_eq!(element(&r[0].1).3, Policy::LeastUsed { load: 1000 });
    c.handle_message(at(1030), conn, &registration_response(POOL, ID, None));
    assert!(events(&mut c).contains(&PeEvent::Registered {
        first: false,
        server: None
    }));
    // A change of >= 1 % goes out at once.
    c.set_load(at(1100), u32::MAX / 2);
    let r = registrations(&drain(&mut c));
    assert_eq!(element(&r[0].1).3, Policy::LeastUsed { load: u32::MAX / 2 });
    // Another change while that one is in flight follows its answer.
    c.set_load(at(1110), u32::MAX);
    assert!(registrations(&drain(&mut c)).is_empty());
    c.handle_message(at(1120), conn, &registration_response(POOL, ID, None));
    let r = registrations(&drain(&mut c));
    assert_eq!(element(&r[0].1).3, Policy::LeastUsed { load: u32::MAX });
}

#[test]
fn server_hunt_tries_the_list_in_order_three_at_a_time_and_first_wins() {
    let list = [
        "10.0.0.1:3863",
        "10.0.0.2:3863",
        "10.0.0.3:3863",
        "10.0.0.4:3863",
    ];
    let mut c = PoolElementCore::new(spec(), registrars(&list));
    c.register(at(0));
    let a = drain(&mut c);
    let cs = connects(&a);
    assert_eq!(
        cs.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        vec![reg(list[0]), reg(list[1]), reg(list[2])]
    );
    // The first fails at once: the fourth takes its place.
    c.handle_connect_failed(at(5), cs[0].0);
    let more = connects(&drain(&mut c));
    assert_eq!(more[0].1, reg(list[3]));
    // The third answers first: the others are closed, the registration goes there.
    c.handle_connected(at(7), cs[2].0);
    let a = drain(&mut c);
    let closed: Vec<ConnId> = a
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn } => Some(*conn),
            _ => None,
        })
        .collect();
    assert!(
        closed.contains(&cs[1].0) && closed.contains(&more[0].0),
        "{a:?}"
    );
    assert_eq!(registrations(&a)[0].0, cs[2].0);
    assert_eq!(c.home().unwrap().1, &reg(list[2]));
}

#[test]
fn connect_timeout_moves_on_then_backs_off_while_a_registrar_is_needed() {
    let mut cfg = registrars(&["10.0.0.1:3863", "10.0.0.2:3863"]);
    cfg.max_parallel_connects = 1;
    cfg.connect_timeout = ms(500);
    cfg.hunt_retry_delay = ms(1000);
    let mut c = PoolElementCore::new(spec(), cfg);
    c.register(at(0));
    let first = connects(&drain(&mut c));
    assert_eq!(first.len(), 1);
    c.handle_timeout(at(500));
    let a = drain(&mut c);
    assert!(a.contains(&Action::Close { conn: first[0].0 }));
    let second = connects(&a);
    assert_eq!(second[0].1, reg("10.0.0.2:3863"));
    c.handle_timeout(at(1000));
    drain(&mut c);
    // Nobody answered: the registration failed, a new hunt follows after 1 s.
    assert!(events(&mut c).contains(&PeEvent::RegistrationFailed {
        error: RequestError::NoRegistrar
    }));
    assert_eq!(c.poll_timeout(), Some(at(2000)));
    c.handle_timeout(at(2000));
    let again = connects(&drain(&mut c));
    assert_eq!(again[0].1, reg("10.0.0.1:3863"));
    c.handle_connected(at(2010), again[0].0);
    assert_eq!(
        registrations(&drain(&mut c)).len(),
        1,
        "registers once connected"
    );
}

#[test]
fn response_timeout_drops_the_registrar_and_registers_at_another() {
    let (mut c, a_conn) = registered(&["10.0.0.1:3863", "10.0.0.2:3863"]);
    events(&mut c);
    c.handle_timeout(at(1020)); // periodic re-registration, never answered
    assert_eq!(registrations(&drain(&mut c))[0].0, a_conn);
    c.handle_timeout(at(4020)); // 3 s response timeout
    let a = drain(&mut c);
    assert!(a.contains(&Action::Close { conn: a_conn }));
    let cs = connects(&a);
    assert_eq!(cs[0].1, reg("10.0.0.2:3863"), "the failed one goes last");
    c.handle_connected(at(4030), cs[0].0);
    let r = registrations(&drain(&mut c));
    assert_eq!(
        r.len(),
        1,
        "the re-registration is sent again to the new one"
    );
    assert_eq!(r[0].0, cs[0].0);
    c.handle_message(at(4040), cs[0].0, &registration_response(POOL, ID, None));
    let ev = events(&mut c);
    assert!(ev.contains(&PeEvent::RegistrarLost), "{ev:?}");
    assert!(ev.contains(&PeEvent::Registered {
        first: false,
        server: None
    }));
    assert_eq!(c.state(), PeState::Registered);
}

#[test]
fn registrar_loss_is_repaired_without_the_application() {
    let (mut c, a_conn) = registered(&["10.0.0.1:3863", "10.0.0.2:3863"]);
    events(&mut c);
    c.handle_closed(at(500), a_conn);
    let cs = connects(&drain(&mut c));
    assert_eq!(cs[0].1, reg("10.0.0.2:3863"));
    c.handle_connected(at(510), cs[0].0);
    let r = registrations(&drain(&mut c));
    assert_eq!(r[0].0, cs[0].0, "registers again at once on the new home");
    c.handle_message(at(520), cs[0].0, &registration_response(POOL, ID, None));
    assert_eq!(c.state(), PeState::Registered);
    let ev = events(&mut c);
    assert!(matches!(ev[0], PeEvent::RegistrarLost));
    assert!(matches!(ev[1], PeEvent::HomeChanged { .. }));
}

#[test]
fn keep_alives_are_acked_and_the_h_bit_adopts_a_new_home() {
    let (mut c, a_conn) = registered(&["10.0.0.1:3863"]);
    events(&mut c);
    // A keep-alive from the home: acked on that connection, id learnt.
    c.handle_message(at(100), a_conn, &keep_alive(0xaaaa, POOL, Some(ID), false));
    let a = drain(&mut c);
    assert_eq!(a.len(), 1);
    let Action::Send {
        conn,
        ppid: 11,
        data,
    } = &a[0]
    else {
        panic!("{a:?}")
    };
    assert_eq!(*conn, a_conn);
    assert_eq!(
        AsapMessage::parse(data).unwrap(),
        AsapMessage::EndpointKeepAliveAck(EndpointKeepAliveAck {
            pool_handle: PoolHandle::new(POOL.as_bytes()).unwrap(),
            pe_id: PeId(ID),
        })
    );
    assert_eq!(c.home_server(), Some(ServerId(0xaaaa)));
    // The next registration names it as home.
    c.handle_timeout(at(1020));
    let r = registrations(&drain(&mut c));
    assert_eq!(element(&r[0].1).1, 0xaaaa);
    c.handle_message(at(1030), a_conn, &registration_response(POOL, ID, None));
    // Keep-alives for another PE or pool get no ACK.
    c.handle_message(
        at(1040),
        a_conn,
        &keep_alive(0xaaaa, POOL, Some(ID + 1), false),
    );
    c.handle_message(
        at(1040),
        a_conn,
        &keep_alive(0xaaaa, "Other", Some(ID), false),
    );
    assert!(drain(&mut c).is_empty());
    // Another registrar connects (takeover) and sends H=1: adopted.
    let b_conn = c.alloc_conn();
    c.handle_incoming(at(1100), b_conn, addr("10.0.0.2:3863"), Proto::Sctp);
    c.handle_message(at(1110), b_conn, &keep_alive(0xbbbb, POOL, Some(ID), true));
    let a = drain(&mut c);
    assert!(a.contains(&Action::Close { conn: a_conn }), "{a:?}");
    let sends: Vec<(ConnId, AsapType)> = a.iter().filter_map(sent_type).collect();
    assert!(sends.contains(&(b_conn, AsapType::EndpointKeepAliveAck)));
    assert!(sends.contains(&(b_conn, AsapType::Registration)));
    assert_eq!(c.home().unwrap().0, b_conn);
    assert_eq!(c.home_server(), Some(ServerId(0xbbbb)));
    assert!(events(&mut c).iter().any(|e| matches!(
        e,
        PeEvent::HomeChanged {
            server: Some(ServerId(0xbbbb)),
            ..
        }
    )));
}

#[test]
fn announces_give_registrars_at_their_source_port_or_first_sctp_transport() {
    // Announces on, no static list.
    let cfg = RegistrarConfig {
        connect_timeout: ms(1000),
        ..RegistrarConfig::default()
    };
    let mut c = PoolElementCore::new(spec(), cfg);
    c.register(at(0));
    assert!(connects(&drain(&mut c)).is_empty(), "nothing to try yet");
    // RSPLIB's 8-byte announce: the UDP source address and port.
    c.handle_announce(at(100), addr("10.0.0.7:40123"), &announce(7, &[]));
    let cs = connects(&drain(&mut c));
    assert_eq!(cs[0].1, reg("10.0.0.7:40123"));
    c.handle_connect_failed(at(110), cs[0].0);
    // With transports: the first SCTP one (TCP skipped), loopback dropped.
    let a = [ip("127.0.0.1"), ip("10.0.0.8")];
    let t = [
        Transport::tcp(5000, TransportUse::DATA_ONLY, &a[1..]),
        Transport::sctp(3863, TransportUse::DATA_ONLY, &a),
    ];
    c.handle_announce(at(120), addr("10.0.0.8:3863"), &announce(8, &t));
    let cs = connects(&drain(&mut c));
    assert_eq!(cs[0].1, reg("10.0.0.8:3863"));
    c.handle_connected(at(130), cs[0].0);
    let r = registrations(&drain(&mut c));
    assert_eq!(element(&r[0].1).1, 8, "the announced server id is the home");
}

#[test]
fn learnt_registrars_expire_after_the_announce_timeout() {
    let cfg = RegistrarConfig {
        announce_timeout: ms(5000),
        connect_timeout: ms(100),
        hunt_retry_delay: ms(100),
        ..RegistrarConfig::default()
    };
    let mut c = PoolElementCore::new(spec(), cfg);
    c.handle_announce(at(0), addr("10.0.0.7:40123"), &announce(7, &[]));
    c.register(at(4000));
    let cs = connects(&drain(&mut c));
    assert_eq!(cs.len(), 1, "still valid at 4 s");
    c.handle_connect_failed(at(4001), cs[0].0);
    // Hunts continue with back-off; after 5 s the entry is gone.
    let mut t = 4001;
    let (mut before, mut after) = (0, 0);
    while t < 9000 {
        t = c.poll_timeout().unwrap().as_micros() / 1000;
        c.handle_timeout(at(t));
        for (conn, _) in connects(&drain(&mut c)) {
            if t >= 5000 {
                after += 1;
            } else {
                before += 1;
            }
            c.handle_connect_failed(at(t), conn);
        }
    }
    assert!(before > 0 && after == 0, "{before} {after}");
}

#[test]
fn deregistration_and_an_unsolicited_expiry_notice() {
    let (mut c, conn) = registered(&["10.0.0.1:3863"]);
    // The registrar says the registration expired: register again at once.
    c.handle_message(at(100), conn, &deregistration_response(POOL, ID));
    assert_eq!(registrations(&drain(&mut c)).len(), 1);
    c.handle_message(at(110), conn, &registration_response(POOL, ID, None));
    events(&mut c);
    c.deregister(at(200));
    let a = drain(&mut c);
    assert_eq!(
        a.iter().filter_map(sent_type).collect::<Vec<_>>(),
        vec![(conn, AsapType::Deregistration)]
    );
    c.handle_message(at(210), conn, &deregistration_response(POOL, ID));
    assert_eq!(
        events(&mut c),
        vec![PeEvent::Deregistered { result: Ok(()) }]
    );
    assert!(drain(&mut c).contains(&Action::Close { conn }));
    assert_eq!(c.state(), PeState::Deregistered);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_refused_first_registration_stops_the_pe() {
    let mut c = PoolElementCore::new(spec(), registrars(&["10.0.0.1:3863"]));
    c.register(at(0));
    let (conn, _) = connects(&drain(&mut c))[0].clone();
    c.handle_connected(at(1), conn);
    drain(&mut c);
    c.handle_message(
        at(2),
        conn,
        &registration_response(POOL, ID, Some(CauseCode::INCONSISTENT_POLICY)),
    );
    assert_eq!(c.state(), PeState::Rejected(CauseCode::INCONSISTENT_POLICY));
    assert!(events(&mut c).contains(&PeEvent::Rejected {
        cause: CauseCode::INCONSISTENT_POLICY
    }));
    assert_eq!(c.poll_timeout(), None, "no re-registration");
}
