//! Property tests: every message and parameter built from random *valid*
//! fields round-trips through the codec.
//!
//! For each of the 14 ASAP and 10 ENRP message types (all flag bits, all
//! optional parameters, every transport kind, all 16 known policies and
//! unknown policy types, operation errors with raw, policy and transport
//! causes) and for every parameter type:
//!
//! * `encoded_len()` equals the bytes `encode` writes, which are a multiple
//!   of 4, with the pad bytes actually written (the buffer is pre-filled with
//!   garbage) and nothing written past them;
//! * a buffer one byte short fails with `BufferTooSmall { needed }`;
//! * decoding gives an equal value (lists compare item by item) with nothing
//!   to report, and re-encoding the decoded value gives identical bytes;
//! * RSPLIB's length convention (containers count their final inner pad)
//!   decodes to the same value;
//! * an unknown parameter inserted at any boundary where the action bits
//!   apply (message level, inside transports, Pool Elements and Server
//!   Information) is skipped, reported, or stops decoding exactly as its two
//!   high bits say;
//! * flag bits a message type does not define are ignored;
//! * a byte stream of several messages is cut back into them by `frame_len`.
//!
//! Models and strategies live in `common/mod.rs`. "Valid fields" excludes
//! values Rust can express but the wire cannot, which do not round-trip (by
//! design, so the strategies never build them):
//!
//! * `PolicyParam::Unknown` whose type is one of the 16 known policies: it
//!   decodes as `Known` (or fails its length check);
//! * `CauseInfo::Bytes` with non-empty bytes under codes 0x5 and 0x7: those
//!   codes carry a nested parameter and are decoded as one (or rejected);
//!   `CauseInfo::Policy`/`Transport` under any other code decode as bytes;
//! * transport fields that do not exist for the kind (port, Transport Use or
//!   addresses of an opaque transport, the service code of a non-DCCP one,
//!   opaque bytes of an IP one): the encoder writes the kind's layout only,
//!   silently dropping port/use/service code/opaque bytes (address counts
//!   are refused, see errors.rs);
//! * flag bits and reserved fields (Update Action's second half): sent as 0.

mod common;

use std::fmt::Debug;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rserpool_wire::*;

fn fail(what: &str, e: impl Debug) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {e:?}"))
}

/// Encodes `m` every way the codec offers and checks the invariants that do
/// not depend on decoding. Returns the bytes.
fn encode_checked(m: &impl Encode, ty: u8, flags: u8) -> Result<Vec<u8>, TestCaseError> {
    let n = m.encoded_len();
    // Garbage-filled, larger than needed: proves the pad bytes are written
    // and nothing past the end is touched.
    let mut buf = vec![0xa5u8; n + 7];
    let written = m.encode(&mut buf).map_err(|e| fail("encode", e))?;
    prop_assert_eq!(written, n, "encoded_len() disagrees with encode()");
    prop_assert_eq!(n % 4, 0, "output is not a multiple of 4");
    prop_assert!(buf[n..].iter().all(|&b| b == 0xa5), "wrote past its end");
    buf.truncate(n);
    prop_assert_eq!(&m.to_vec().map_err(|e| fail("to_vec", e))?, &buf);

    prop_assert_eq!(buf[0], ty);
    prop_assert_eq!(buf[1], flags);
    let len = be16(&buf, 2);
    prop_assert!(len >= 4 && len <= n && n - len <= 3, "length field {}", len);
    prop_assert_eq!(pad4(len), n);
    prop_assert!(buf[len..].iter().all(|&b| b == 0), "final pad not zero");

    // Exactly one byte short, and much too short: the writer reports the need.
    let mut short = vec![0u8; n - 1];
    prop_assert_eq!(
        m.encode(&mut short),
        Err(EncodeError::BufferTooSmall { needed: n })
    );
    prop_assert_eq!(
        m.encode(&mut [0u8; 3]),
        Err(EncodeError::BufferTooSmall { needed: n })
    );

    prop_assert_eq!(frame_len(&buf).map_err(|e| fail("frame_len", e))?, Some(n));
    let view = MessageView::new_checked(&buf).map_err(|e| fail("view", e))?;
    prop_assert_eq!((view.ty(), view.flags()), (ty, flags));
    prop_assert_eq!(view.body().len(), len - 4);
    Ok(buf)
}

fn check_asap(msg: &AsapMessage<'_>) -> Result<(), TestCaseError> {
    let bytes = encode_checked(msg, msg.message_type().code(), msg.flags())?;
    let mut reports = Reports::new();
    let back = AsapMessage::parse_reporting(&bytes, &mut reports).map_err(|e| fail("decode", e))?;
    prop_assert!(reports.is_empty());
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(back.flags(), msg.flags());
    prop_assert_eq!(touch_asap(&back), touch_asap(msg));
    prop_assert_eq!(back.encoded_len(), bytes.len());
    prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
    prop_assert_eq!(
        Message::parse(Protocol::Asap, &bytes).map_err(|e| fail("Message", e))?,
        Message::Asap(*msg)
    );

    // RSPLIB's length convention decodes to the same message.
    let rsplib = rsplib_form(&bytes, Protocol::Asap);
    let back = AsapMessage::parse(&rsplib).map_err(|e| fail("decode RSPLIB form", e))?;
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
    Ok(())
}

fn check_enrp(msg: &EnrpMessage<'_>) -> Result<(), TestCaseError> {
    let bytes = encode_checked(msg, msg.message_type().code(), msg.flags())?;
    let mut reports = Reports::new();
    let back = EnrpMessage::parse_reporting(&bytes, &mut reports).map_err(|e| fail("decode", e))?;
    prop_assert!(reports.is_empty());
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(back.ids(), msg.ids());
    prop_assert_eq!(touch_enrp(&back), touch_enrp(msg));
    prop_assert_eq!(back.encoded_len(), bytes.len());
    prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
    prop_assert_eq!(
        Message::parse(Protocol::Enrp, &bytes).map_err(|e| fail("Message", e))?,
        Message::Enrp(*msg)
    );

    let rsplib = rsplib_form(&bytes, Protocol::Enrp);
    let back = EnrpMessage::parse(&rsplib).map_err(|e| fail("decode RSPLIB form", e))?;
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
    Ok(())
}

fn check_param(p: &Param<'_>) -> Result<(), TestCaseError> {
    let n = p.encoded_len();
    let mut buf = vec![0xa5u8; n + 5];
    prop_assert_eq!(p.encode(&mut buf).map_err(|e| fail("encode", e))?, n);
    prop_assert_eq!(n % 4, 0);
    prop_assert!(buf[n..].iter().all(|&b| b == 0xa5));
    buf.truncate(n);
    let len = be16(&buf, 2);
    prop_assert!(len >= 4 && pad4(len) == n);
    prop_assert!(buf[len..].iter().all(|&b| b == 0));

    let (back, rest) = Param::parse_prefix(&buf)
        .map_err(|e| fail("decode", e))?
        .ok_or_else(|| fail("decode", "nothing"))?;
    prop_assert!(rest.is_empty());
    prop_assert_eq!(&back, p);
    prop_assert_eq!(touch_param(&back), touch_param(p));
    prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &buf);

    // Without its final pad (the last parameter of a region), and followed
    // by another parameter, it decodes the same.
    let (back, rest) = Param::parse_prefix(&buf[..len])
        .map_err(|e| fail("decode unpadded", e))?
        .ok_or_else(|| fail("decode unpadded", "nothing"))?;
    prop_assert!(rest.is_empty());
    prop_assert_eq!(&back, p);
    let mut two = buf.clone();
    two.extend_from_slice(&[0, 0x0e, 0, 8, 1, 2, 3, 4]);
    let (back, rest) = Param::parse_prefix(&two)
        .map_err(|e| fail("decode first of two", e))?
        .ok_or_else(|| fail("decode first of two", "nothing"))?;
    prop_assert_eq!(&back, p);
    prop_assert_eq!(rest, &two[n..]);
    Ok(())
}

/// What must happen to `bytes` (a valid message, `original` re-encoded) with
/// the unknown parameter `tlv` inserted at offset `at`.
fn check_unknown_outcome<M: PartialEq + Debug>(
    result: Result<M, Error>,
    reports: &Reports<'_>,
    original: &M,
    mutated: &[u8],
    at: usize,
    tlv: &[u8],
) -> Result<(), TestCaseError> {
    let ty = u16::from_be_bytes([tlv[0], tlv[1]]);
    let action = UnrecognizedAction::for_param(ty);
    let expected = &mutated[at..at + tlv.len()];
    prop_assert_eq!(expected, tlv);
    match result {
        Ok(m) => {
            prop_assert!(!action.stops(), "{:?} parameter was skipped", action);
            prop_assert_eq!(&m, original);
            let reported: Vec<&[u8]> = reports.iter().collect();
            if action.reports() {
                prop_assert_eq!(reported.len(), 1);
                prop_assert_eq!(reported[0], tlv);
                prop_assert_eq!(reported[0].as_ptr(), expected.as_ptr());
            } else {
                prop_assert!(reported.is_empty());
            }
            prop_assert_eq!(reports.dropped(), 0);
        }
        Err(e) => {
            prop_assert!(
                action.stops(),
                "{:?} parameter stopped decoding: {:?}",
                action,
                e
            );
            prop_assert_eq!(e.kind(), ErrorKind::UnrecognizedParameter(action));
            let cause = action
                .reports()
                .then_some(CauseCode::UNRECOGNIZED_PARAMETER);
            prop_assert_eq!(e.cause(), cause);
            let off = e.offending(mutated).ok_or_else(|| fail("offending", e))?;
            prop_assert_eq!(off, tlv);
            prop_assert_eq!(off.as_ptr(), expected.as_ptr());
        }
    }
    Ok(())
}

/// Flag bits each message type defines (the others must be ignored).
fn defined_flags(proto: Protocol, ty: u8) -> u8 {
    match (proto, ty) {
        (Protocol::Asap, 0x03 | 0x05 | 0x06 | 0x07) => 0x01,
        (Protocol::Enrp, 0x01 | 0x02 | 0x04 | 0x06) => 0x01,
        (Protocol::Enrp, 0x03) => 0x03,
        _ => 0,
    }
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn asap_messages_round_trip(m in asap_message()) {
        with_asap(&m, check_asap)?;
    }

    #[test]
    fn enrp_messages_round_trip(m in enrp_message()) {
        with_enrp(&m, check_enrp)?;
    }

    #[test]
    fn parameters_round_trip(m in param()) {
        with_param(&m, check_param)?;
    }

    /// RSPLIB and RFC 5356 only define policies made of whole 32-bit fields,
    /// so the main strategies use whole words. An unknown policy's data of
    /// any other length round-trips too: the policy parameter's own length is
    /// exact (its pad is never counted, in either length convention), so the
    /// decoder recovers the data length byte for byte, whether the policy is
    /// top-level, inside a Pool Element (followed by an ASAP transport or
    /// not) or inside an Inconsistent Pooling Policy cause.
    #[test]
    fn unknown_policy_data_of_any_length_round_trips(
        ty in unknown_policy_type(),
        data in vec(any::<u8>(), 0..=23),
        handle in handle_bytes(),
        mut pe in pool_element(),
    ) {
        let policy = PolicyM::Unknown { ty, data };
        pe.policy = policy.clone();
        let m = AsapM::HandleResolutionResponse {
            accept: false,
            handle: handle.clone(),
            policy: Some(policy.clone()),
            pes: vec![pe.clone()],
            error: Some(OpErrM(vec![CauseM { code: 5, info: CauseInfoM::Policy(policy) }])),
        };
        with_asap(&m, check_asap)?;
        let m = AsapM::Registration { handle, pe };
        with_asap(&m, check_asap)?;
    }

    /// The registrar's look-ahead (pool handle and PE id, before parsing)
    /// agrees with the parser on every message it is used for.
    #[test]
    fn peeked_pool_handle_and_pe_id_agree_with_the_parser(m in asap_message()) {
        with_asap(&m, |msg| {
            let bytes = msg.to_vec().map_err(|e| fail("encode", e))?;
            let (handle, pe) = match msg {
                AsapMessage::Registration(r) => (r.pool_handle, Some(r.element.id)),
                AsapMessage::Deregistration(d) => (d.pool_handle, Some(d.pe_id)),
                AsapMessage::EndpointKeepAliveAck(a) => (a.pool_handle, Some(a.pe_id)),
                AsapMessage::EndpointUnreachable(u) => (u.pool_handle, Some(u.pe_id)),
                AsapMessage::HandleResolution(h) => (h.pool_handle, None),
                _ => return Ok(()),
            };
            prop_assert_eq!(peek_pool_handle(&bytes), Some(handle.as_bytes()));
            let want = pe.map(|p| p.0).filter(|&id| id != 0);
            prop_assert_eq!(peek_pe_id(&bytes), want);
            Ok(())
        })?;
    }

    #[test]
    fn unknown_asap_parameters_anywhere_follow_their_action_bits(
        m in asap_message(),
        pick in any::<Index>(),
        ty in unknown_param_type_any_action(),
        value in vec(any::<u8>(), 0..=9),
    ) {
        with_asap(&m, |msg| {
            let bytes = msg.to_vec().map_err(|e| fail("encode", e))?;
            let places = boundaries(&bytes, Protocol::Asap);
            let b = pick.get(&places);
            let tlv = &raw_tlv(ty, &value)[..value.len() + 4];
            let mutated = insert_at(&bytes, b, tlv);
            let mut reports = Reports::new();
            let r = AsapMessage::parse_reporting(&mutated, &mut reports);
            if let Ok(back) = &r {
                prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
            }
            check_unknown_outcome(r, &reports, msg, &mutated, b.at, tlv)
        })?;
    }

    #[test]
    fn unknown_enrp_parameters_anywhere_follow_their_action_bits(
        m in enrp_message(),
        pick in any::<Index>(),
        ty in unknown_param_type_any_action(),
        value in vec(any::<u8>(), 0..=9),
    ) {
        with_enrp(&m, |msg| {
            let bytes = msg.to_vec().map_err(|e| fail("encode", e))?;
            let places = boundaries(&bytes, Protocol::Enrp);
            let b = pick.get(&places);
            let tlv = &raw_tlv(ty, &value)[..value.len() + 4];
            let mutated = insert_at(&bytes, b, tlv);
            let mut reports = Reports::new();
            let r = EnrpMessage::parse_reporting(&mutated, &mut reports);
            if let Ok(back) = &r {
                prop_assert_eq!(&back.to_vec().map_err(|e| fail("re-encode", e))?, &bytes);
            }
            check_unknown_outcome(r, &reports, msg, &mutated, b.at, tlv)
        })?;
    }

    #[test]
    fn undefined_flag_bits_are_ignored(
        a in asap_message(),
        e in enrp_message(),
        noise in any::<u8>(),
    ) {
        with_asap(&a, |msg| {
            let bytes = msg.to_vec().map_err(|e| fail("encode", e))?;
            let mut noisy = bytes.clone();
            noisy[1] |= noise & !defined_flags(Protocol::Asap, bytes[0]);
            let back = AsapMessage::parse(&noisy).map_err(|e| fail("decode", e))?;
            prop_assert_eq!(&back, msg);
            prop_assert_eq!(back.to_vec().map_err(|e| fail("re-encode", e))?, bytes);
            Ok(())
        })?;
        with_enrp(&e, |msg| {
            let bytes = msg.to_vec().map_err(|e| fail("encode", e))?;
            let mut noisy = bytes.clone();
            noisy[1] |= noise & !defined_flags(Protocol::Enrp, bytes[0]);
            let back = EnrpMessage::parse(&noisy).map_err(|e| fail("decode", e))?;
            prop_assert_eq!(&back, msg);
            prop_assert_eq!(back.to_vec().map_err(|e| fail("re-encode", e))?, bytes);
            Ok(())
        })?;
    }

    /// Several messages sent back to back on a stream (TCP) are cut apart by
    /// `frame_len`, in either length convention, and decode one by one.
    #[test]
    fn streams_are_framed_message_by_message(
        msgs in vec(asap_message(), 1..=4),
        rsplib in any::<bool>(),
    ) {
        let frames: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| with_asap(m, |msg| msg.to_vec().expect("valid models encode")))
            .map(|b| if rsplib { rsplib_form(&b, Protocol::Asap) } else { b })
            .collect();
        let stream = frames.concat();
        let mut rest = &stream[..];
        for (m, frame) in msgs.iter().zip(&frames) {
            for cut in 0..4usize.min(rest.len()) {
                prop_assert_eq!(frame_len(&rest[..cut]).map_err(|e| fail("frame_len", e))?, None);
            }
            let n = frame_len(rest)
                .map_err(|e| fail("frame_len", e))?
                .ok_or_else(|| fail("frame_len", "no header"))?;
            prop_assert_eq!(n, frame.len());
            // A partial frame already tells how much is coming.
            prop_assert_eq!(frame_len(&rest[..4]).map_err(|e| fail("frame_len", e))?, Some(n));
            let (this, next) = rest.split_at(n);
            let back = AsapMessage::parse(this).map_err(|e| fail("decode", e))?;
            with_asap(m, |msg| {
                prop_assert_eq!(&back, msg);
                Ok(())
            })?;
            rest = next;
        }
        prop_assert!(rest.is_empty());
    }
}

/// The strategies really produce every message type, flag, transport kind,
/// known policy, cause shape and list size the properties claim to cover.
#[test]
fn strategies_cover_every_type_kind_and_policy() {
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let asap = asap_message();
    let enrp = enrp_message();
    let mut asap_seen = BTreeSet::new();
    let mut enrp_seen = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    let mut policies = BTreeSet::new();
    let mut unknown_policy = false;
    let mut causes = BTreeSet::new();
    let mut announce_sizes = BTreeSet::new();
    let mut multi_entry_tables = false;
    let mut mixed_sctp = false;
    let mut rsplib_differs = 0;
    let mut deepest_boundary = 0;
    for _ in 0..3000 {
        let a = asap.new_tree(&mut runner).unwrap().current();
        with_asap(&a, |m| {
            asap_seen.insert((m.message_type().code(), m.flags()));
            let bytes = m.to_vec().unwrap();
            rsplib_differs += usize::from(rsplib_form(&bytes, Protocol::Asap) != bytes);
            for b in boundaries(&bytes, Protocol::Asap) {
                deepest_boundary = deepest_boundary.max(b.ancestors.len());
            }
            let mut pes = Vec::new();
            let mut errs = Vec::new();
            match m {
                AsapMessage::Registration(r) => pes.push(r.element),
                AsapMessage::HandleResolutionResponse(r) => {
                    pes.extend(r.elements.iter());
                    errs.extend(r.error);
                    if let Some(p) = r.policy {
                        unknown_policy |= matches!(p, PolicyParam::Unknown { .. });
                    }
                }
                AsapMessage::ServerAnnounce(s) => {
                    announce_sizes.insert(s.transports.len());
                }
                AsapMessage::RegistrationResponse(r) => errs.extend(r.error),
                AsapMessage::Error(e) => errs.push(e.error),
                _ => {}
            }
            for pe in pes {
                kinds.insert(pe.user_transport.kind);
                policies.insert(pe.policy.policy_type());
                let t = pe.user_transport;
                mixed_sctp |= t.kind == TransportKind::Sctp
                    && t.addresses.iter().any(|a| a.is_ipv4())
                    && t.addresses.iter().any(|a| a.is_ipv6());
            }
            for e in errs {
                for c in e.causes.iter() {
                    causes.insert(match c.info {
                        CauseInfo::Bytes([]) => "empty",
                        CauseInfo::Bytes(_) => "bytes",
                        CauseInfo::Policy(_) => "policy",
                        CauseInfo::Transport(_) => "transport",
                    });
                }
            }
        });
        let e = enrp.new_tree(&mut runner).unwrap().current();
        with_enrp(&e, |m| {
            enrp_seen.insert((m.message_type().code(), m.flags()));
            if let EnrpMessage::HandleTableResponse(r) = m {
                multi_entry_tables |=
                    r.entries.len() >= 2 && r.entries.iter().any(|e| e.elements.len() >= 2);
            }
        });
    }
    let asap_expected: BTreeSet<(u8, u8)> = (1..=14u8)
        .map(|t| (t, 0))
        .chain([3, 5, 6, 7].map(|t| (t, 1)))
        .collect();
    assert_eq!(asap_seen, asap_expected);
    let enrp_expected: BTreeSet<(u8, u8)> = (1..=10u8)
        .map(|t| (t, 0))
        .chain([(1, 1), (2, 1), (3, 1), (3, 2), (3, 3), (4, 1), (6, 1)])
        .collect();
    assert_eq!(enrp_seen, enrp_expected);
    assert_eq!(kinds.len(), 6, "transport kinds: {kinds:?}");
    for ty in Policy::ALL_TYPES {
        assert!(policies.contains(ty), "policy {ty} never generated");
    }
    assert!(unknown_policy);
    assert_eq!(causes.len(), 4, "cause shapes: {causes:?}");
    assert_eq!(announce_sizes, BTreeSet::from([0, 1, 2, 3]));
    assert!(multi_entry_tables && mixed_sctp);
    // The RSPLIB rewrite changes lengths often enough to matter, and unknown
    // parameters get inserted down to addresses inside a PE's transport.
    assert!(
        rsplib_differs > 300,
        "RSPLIB form differed {rsplib_differs} times"
    );
    assert_eq!(deepest_boundary, 3);
}

/// The largest message the 16-bit length allows round-trips; one byte more
/// cannot be encoded.
#[test]
fn largest_message_round_trips() {
    let cookie = vec![0x5a; 65535 - 8];
    let m = AsapMessage::Cookie(asap::Cookie { cookie: &cookie });
    let bytes = m.to_vec().unwrap();
    assert_eq!(bytes.len(), 65536);
    assert_eq!(be16(&bytes, 2), 65535);
    assert_eq!(AsapMessage::parse(&bytes).unwrap(), m);
    assert_eq!(frame_len(&bytes).unwrap(), Some(65536));
    // Received without its final pad byte it is still the same message.
    assert_eq!(AsapMessage::parse(&bytes[..65535]).unwrap(), m);

    let cookie = vec![0x5a; 65535 - 7];
    let m = AsapMessage::Cookie(asap::Cookie { cookie: &cookie });
    assert_eq!(
        m.to_vec(),
        Err(EncodeError::TooLarge {
            field: "ASAP_COOKIE"
        })
    );
}
