//! The byte-level examples of the spec digest (section 12 of
//! shared/spec/rserpool-reference.md, each checked there with tshark 4.0.17):
//! they decode to the documented fields and re-encode byte for byte.

use std::net::{IpAddr, Ipv4Addr};

use rserpool_wire::asap::*;
use rserpool_wire::enrp::*;
use rserpool_wire::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn asap(bytes: &[u8]) -> AsapMessage<'_> {
    let m = AsapMessage::parse(bytes).expect("decodes");
    assert_eq!(m.to_vec().unwrap(), bytes, "re-encodes byte for byte");
    assert_eq!(m.encoded_len(), bytes.len());
    m
}

fn enrp(bytes: &[u8]) -> EnrpMessage<'_> {
    let m = EnrpMessage::parse(bytes).expect("decodes");
    assert_eq!(m.to_vec().unwrap(), bytes, "re-encodes byte for byte");
    assert_eq!(m.encoded_len(), bytes.len());
    m
}

const ECHO: &[u8] = b"EchoService";
const PE1: PeId = PeId(0x1a2b_3c4d);
const A: ServerId = ServerId(0x1122_3344);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn s12_1_registration() {
    let b = hex(
        "01 00 00 3c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0a 00 28 1a 2b 3c 4d 00 00 00 00
         00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 00 00 00 01",
    );
    let AsapMessage::Registration(r) = asap(&b) else {
        panic!("wrong type")
    };
    assert_eq!(r.pool_handle.as_bytes(), ECHO);
    let e = r.element;
    assert_eq!(
        (e.id, e.home_server, e.registration_life),
        (PE1, ServerId(0), 300)
    );
    assert_eq!(e.user_transport.kind, TransportKind::Sctp);
    assert_eq!(e.user_transport.port, 7000);
    assert_eq!(e.user_transport.transport_use, TransportUse::DATA_ONLY);
    assert_eq!(
        e.user_transport.addresses.iter().collect::<Vec<_>>(),
        vec![v4(192, 0, 2, 10)]
    );
    assert_eq!(e.policy, PolicyParam::Known(Policy::RoundRobin {}));
    assert_eq!(e.asap_transport, None);

    // Built from fields, it is the same message.
    let addrs = [v4(192, 0, 2, 10)];
    let built = AsapMessage::Registration(Registration {
        pool_handle: PoolHandle::new(ECHO).unwrap(),
        element: PoolElement {
            id: PE1,
            home_server: ServerId(0),
            registration_life: 300,
            user_transport: Transport::sctp(7000, TransportUse::DATA_ONLY, &addrs),
            policy: Policy::RoundRobin {}.into(),
            asap_transport: None,
        },
    });
    assert_eq!(built.to_vec().unwrap(), b);
}

#[test]
fn s12_2_registration_response_granted() {
    let b =
        hex("03 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d");
    let AsapMessage::RegistrationResponse(r) = asap(&b) else {
        panic!()
    };
    assert!(!r.reject);
    assert_eq!(
        (r.pool_handle.as_bytes(), r.pe_id, r.error),
        (ECHO, PE1, None)
    );
}

#[test]
fn s12_2b_registration_response_rejected_inconsistent_policy() {
    let b = hex(
        "03 01 00 30 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d 00 0c 00 14
         00 05 00 10 00 08 00 0c 40 00 00 01 00 00 00 00",
    );
    let AsapMessage::RegistrationResponse(r) = asap(&b) else {
        panic!()
    };
    assert!(r.reject);
    let causes: Vec<_> = r.error.unwrap().causes.iter().collect();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].code, CauseCode::INCONSISTENT_POLICY);
    assert_eq!(
        causes[0].info,
        CauseInfo::Policy(Policy::LeastUsed { load: 0 }.into())
    );
}

#[test]
fn s12_3_handle_resolution_rfc_length_19() {
    let b = hex("05 00 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00");
    let AsapMessage::HandleResolution(h) = asap(&b) else {
        panic!()
    };
    assert!(!h.subscribe);
    assert_eq!((h.pool_handle.as_bytes(), h.option), (ECHO, None));
    // RSPLIB's form (length 20) decodes to the same message.
    let mut rsplib = b.clone();
    rsplib[3] = 20;
    assert_eq!(
        AsapMessage::parse(&rsplib).unwrap(),
        AsapMessage::HandleResolution(h)
    );
}

#[test]
fn s12_4_handle_resolution_response_two_pes() {
    let b = hex(
        "06 00 00 74 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 08 00 08 00 00 00 01 00 0a 00 28
         1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08
         00 00 00 01 00 0a 00 30 5e 6f 70 81 11 22 33 44 00 00 01 2c 00 04 00 18 1b 58 00 00 00 01 00 08
         c0 00 02 0b 00 01 00 08 c6 33 64 0b 00 08 00 08 00 00 00 01",
    );
    let AsapMessage::HandleResolutionResponse(r) = asap(&b) else {
        panic!()
    };
    assert_eq!(r.policy, Some(Policy::RoundRobin {}.into()));
    assert_eq!(r.error, None);
    let pes: Vec<_> = r.elements.iter().collect();
    assert_eq!(pes.len(), 2);
    assert_eq!((pes[0].id, pes[0].home_server), (PE1, A));
    assert_eq!(pes[1].id, PeId(0x5e6f_7081));
    assert_eq!(
        pes[1].user_transport.addresses.iter().collect::<Vec<_>>(),
        vec![v4(192, 0, 2, 11), v4(198, 51, 100, 11)]
    );
}

#[test]
fn s12_4_handle_resolution_response_unknown_pool() {
    let b =
        hex("06 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0c 00 08 00 09 00 04");
    let AsapMessage::HandleResolutionResponse(r) = asap(&b) else {
        panic!()
    };
    assert!(r.elements.is_empty() && r.policy.is_none());
    assert_eq!(
        r.error.unwrap().first_code(),
        Some(CauseCode::UNKNOWN_POOL_HANDLE)
    );
}

#[test]
fn s12_5_presence_with_checksum() {
    let b = hex(
        "01 00 00 2c 11 22 33 44 00 00 00 00 00 0f 00 06 56 72 00 00 00 0b 00 18 11 22 33 44 00 04 00 10
         26 ad 00 00 00 01 00 08 c0 00 02 01",
    );
    let EnrpMessage::Presence(p) = enrp(&b) else {
        panic!()
    };
    assert!(!p.reply_required);
    assert_eq!(
        (p.sender, p.receiver, p.checksum),
        (A, ServerId(0), Some(PeChecksum(0x5672)))
    );
    let si = p.server_info.unwrap();
    assert_eq!((si.server_id, si.transport.port), (A, 9901));
    assert_eq!(
        si.transport.addresses.iter().collect::<Vec<_>>(),
        vec![v4(192, 0, 2, 1)]
    );
}

#[test]
fn s12_6_handle_update_add_and_del() {
    let mut b = hex(
        "04 00 00 58 11 22 33 44 00 00 00 00 00 00 00 00 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00
         00 0a 00 38 1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a
         00 08 00 08 00 00 00 01 00 04 00 10 c3 50 00 00 00 01 00 08 c0 00 02 0a",
    );
    let EnrpMessage::HandleUpdate(u) = enrp(&b) else {
        panic!()
    };
    assert_eq!(
        (u.action, u.sender, u.pool_handle.as_bytes()),
        (UpdateAction::AddPe, A, ECHO)
    );
    let asap_t = u.element.asap_transport.unwrap();
    assert_eq!((asap_t.kind, asap_t.port), (TransportKind::Sctp, 50000));
    assert_eq!(u.element.home_server, A);
    b[13] = 1;
    let EnrpMessage::HandleUpdate(d) = enrp(&b) else {
        panic!()
    };
    assert_eq!(d.action, UpdateAction::DelPe);
}

#[test]
fn s12_7_short_examples() {
    let b = hex("07 01 00 17 11 22 33 44 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00");
    let AsapMessage::EndpointKeepAlive(k) = asap(&b) else {
        panic!()
    };
    assert!(k.home);
    assert_eq!(
        (k.server_id, k.pool_handle.as_bytes(), k.pe_id),
        (A, ECHO, None)
    );

    let b =
        hex("08 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d");
    let AsapMessage::EndpointKeepAliveAck(k) = asap(&b) else {
        panic!()
    };
    assert_eq!(k.pe_id, PE1);

    let b = hex("0a 00 00 18 11 22 33 44 00 04 00 10 0f 17 00 00 00 01 00 08 c0 00 02 01");
    let AsapMessage::ServerAnnounce(s) = asap(&b) else {
        panic!()
    };
    let t: Vec<_> = s.transports.iter().collect();
    assert_eq!((s.server_id, t.len(), t[0].port), (A, 1, 3863));

    let b = hex("02 01 00 0c 55 66 77 88 11 22 33 44");
    let EnrpMessage::HandleTableRequest(r) = enrp(&b) else {
        panic!()
    };
    assert!(r.own_children_only);
    assert_eq!((r.sender, r.receiver), (ServerId(0x5566_7788), A));

    let b = hex("07 00 00 10 55 66 77 88 00 00 00 00 99 aa bb cc");
    let EnrpMessage::InitTakeover(t) = enrp(&b) else {
        panic!()
    };
    assert_eq!(t.target, ServerId(0x99aa_bbcc));
}
