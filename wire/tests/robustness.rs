//! Robustness: hostile input never panics, errors behave, and whatever is
//! accepted survives the round-trip oracle (hickory-dns style: decode,
//! re-encode, decode again, compare).
//!
//! Inputs: random byte strings; random framed messages; "TLV soup" (random
//! trees of parameters of every type, properly framed, so decoding gets deep);
//! random mutations (bit flips, byte writes, truncation, extension, deletion,
//! edits of the message length and of parameter length and type fields) of
//! valid encoded messages and parameters; and the 67 RSPLIB vectors of
//! `tests/data/prerfc` (see its README), plain and mutated.
//!
//! Every input goes through `AsapMessage::parse_reporting`,
//! `EnrpMessage::parse_reporting`, `Param::parse_prefix`, `frame_len` and
//! `MessageView::new_checked` (see [`oracle`] for what is checked).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use rserpool_wire::*;

// ---------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------

/// What the decoders made of one input.
#[derive(Debug, Default)]
struct Outcome {
    asap: Option<Result<(), ErrorKind>>,
    enrp: Option<Result<(), ErrorKind>>,
    param: Option<Result<(), ErrorKind>>,
}

fn is_within(inner: &[u8], outer: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

/// Checks a decode error against the input it came from.
fn check_error(e: &Error, input: &[u8]) {
    let expected = match e.kind() {
        ErrorKind::UnrecognizedParameter(UnrecognizedAction::Stop)
        | ErrorKind::UnrecognizedMessage { report: false } => None,
        ErrorKind::UnrecognizedParameter(_) => Some(CauseCode::UNRECOGNIZED_PARAMETER),
        ErrorKind::UnrecognizedMessage { report: true } => Some(CauseCode::UNRECOGNIZED_MESSAGE),
        _ => Some(CauseCode::INVALID_VALUES),
    };
    assert_eq!(e.cause(), expected, "{e:?}");
    assert!(!e.field().is_empty());
    assert!(!e.to_string().is_empty());

    let off = e
        .offending(input)
        .unwrap_or_else(|| panic!("{e:?} does not point into the input"));
    assert!(is_within(off, input), "offending bytes outside the input");
    match e.kind() {
        ErrorKind::UnrecognizedParameter(action) => {
            // Exactly one whole unknown parameter, without its pad.
            assert!(action.stops());
            assert!(off.len() >= 4);
            assert_eq!(be16(off, 2), off.len());
            let ty = u16::from_be_bytes([off[0], off[1]]);
            assert!(!param_type::is_known(ty));
            assert_eq!(UnrecognizedAction::for_param(ty), action);
        }
        ErrorKind::UnrecognizedMessage { .. } => {
            assert_eq!(off.as_ptr(), input.as_ptr());
            assert_eq!(off.len(), input.len(), "the whole message is echoed");
        }
        _ => {}
    }
    // Another buffer with the same contents is not the one that was decoded.
    if !off.is_empty() {
        let copy = input.to_vec();
        assert_eq!(e.offending(&copy), None);
    }
}

fn check_reports(reports: &Reports<'_>, input: &[u8]) {
    for r in reports.iter() {
        assert!(is_within(r, input));
        assert!(r.len() >= 4 && be16(r, 2) == r.len());
        let ty = u16::from_be_bytes([r[0], r[1]]);
        assert!(!param_type::is_known(ty));
        assert_eq!(
            UnrecognizedAction::for_param(ty),
            UnrecognizedAction::SkipAndReport
        );
    }
}

/// Runs every decoder over `input` and checks:
/// * nothing panics;
/// * an error maps to the right cause and its offending bytes are a
///   sub-slice of the input (whole unknown TLV, whole unknown message);
/// * `MessageView`, `frame_len` and the parsers agree on framing errors;
/// * an accepted message or parameter: every `Seq` iterates fully (count ==
///   len), reports are unknown "skip and report" TLVs inside the input, the
///   value re-encodes without error into at most the input's padded size,
///   the re-encoding decodes to an equal value with nothing to report, and
///   it is a fixed point of decode + encode.
fn oracle(input: &[u8]) -> Outcome {
    let mut out = Outcome::default();

    // Framing.
    let view = MessageView::new_checked(input);
    match frame_len(input) {
        Ok(None) => assert!(input.len() < 4),
        Ok(Some(n)) => {
            assert!(input.len() >= 4 && n >= 4 && n % 4 == 0);
            assert_eq!(n, pad4(be16(input, 2)));
            if view.is_ok() {
                assert!(n >= input.len() && n - input.len() <= 3);
            }
        }
        Err(e) => {
            assert!(input.len() >= 4 && be16(input, 2) < 4);
            assert_eq!(e.kind(), ErrorKind::BadLength);
            assert_eq!(e.offending(input), Some(&input[..4]));
            assert!(view.is_err());
        }
    }
    match &view {
        Ok(v) => {
            assert_eq!(v.bytes().as_ptr(), input.as_ptr());
            assert_eq!(v.bytes().len(), input.len());
            assert!(is_within(v.body(), input));
            assert_eq!(v.body().len() + 4, be16(input, 2));
            assert_eq!((v.ty(), v.flags()), (input[0], input[1]));
        }
        Err(e) => check_error(e, input),
    }

    // ASAP.
    let mut reports = Reports::new();
    out.asap = Some(match AsapMessage::parse_reporting(input, &mut reports) {
        Ok(m) => {
            assert!(view.is_ok());
            check_reports(&reports, input);
            touch_asap(&m);
            assert_eq!(Message::parse(Protocol::Asap, input), Ok(Message::Asap(m)));
            let again = m.to_vec().expect("a decoded ASAP message re-encodes");
            assert_eq!(again.len(), m.encoded_len());
            assert!(again.len() <= pad4(input.len()), "re-encoding grew");
            let mut rep2 = Reports::new();
            let back = AsapMessage::parse_reporting(&again, &mut rep2)
                .expect("a re-encoded ASAP message decodes");
            assert_eq!(back, m);
            assert!(rep2.is_empty());
            assert_eq!(back.to_vec().expect("re-encodes"), again);
            Ok(())
        }
        Err(e) => {
            if let Err(v) = &view {
                assert_eq!(&e, v, "framing errors come from the view");
            }
            check_error(&e, input);
            Err(e.kind())
        }
    });

    // ENRP.
    let mut reports = Reports::new();
    out.enrp = Some(match EnrpMessage::parse_reporting(input, &mut reports) {
        Ok(m) => {
            assert!(view.is_ok());
            check_reports(&reports, input);
            touch_enrp(&m);
            assert_eq!(Message::parse(Protocol::Enrp, input), Ok(Message::Enrp(m)));
            let again = m.to_vec().expect("a decoded ENRP message re-encodes");
            assert_eq!(again.len(), m.encoded_len());
            assert!(again.len() <= pad4(input.len()), "re-encoding grew");
            let mut rep2 = Reports::new();
            let back = EnrpMessage::parse_reporting(&again, &mut rep2)
                .expect("a re-encoded ENRP message decodes");
            assert_eq!(back, m);
            assert!(rep2.is_empty());
            assert_eq!(back.to_vec().expect("re-encodes"), again);
            Ok(())
        }
        Err(e) => {
            if let Err(v) = &view {
                assert_eq!(&e, v, "framing errors come from the view");
            }
            check_error(&e, input);
            Err(e.kind())
        }
    });

    // A single parameter.
    out.param = Some(match Param::parse_prefix(input) {
        Ok(Some((p, rest))) => {
            assert!(is_within(rest, input));
            assert_eq!(
                rest.as_ptr() as usize + rest.len(),
                input.as_ptr() as usize + input.len(),
                "the rest is a suffix"
            );
            touch_param(&p);
            let again = p.to_vec().expect("a decoded parameter re-encodes");
            assert!(again.len() <= pad4(input.len() - rest.len()));
            let (back, tail) = Param::parse_prefix(&again)
                .expect("a re-encoded parameter decodes")
                .expect("not empty");
            assert!(tail.is_empty());
            assert_eq!(back, p);
            assert_eq!(back.to_vec().expect("re-encodes"), again);
            Ok(())
        }
        Ok(None) => {
            assert!(input.len() < 4 && input.iter().all(|&b| b == 0));
            Ok(())
        }
        Err(e) => {
            check_error(&e, input);
            Err(e.kind())
        }
    });
    out
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Message types worth aiming at: every assigned one of both protocols, the
/// first unassigned ones and one of each action class.
fn message_type() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 0u8..=0x0f, 1 => select(vec![0x40u8, 0x7f, 0x80, 0xc0, 0xff]), 1 => any::<u8>()]
}

/// A header with the right length in front of random bytes, optionally
/// padded.
fn framed_random() -> impl Strategy<Value = Vec<u8>> {
    (
        message_type(),
        any::<u8>(),
        vec(any::<u8>(), 0..=160),
        any::<bool>(),
    )
        .prop_map(|(ty, flags, body, pad)| {
            let mut b = vec![ty, flags, 0, 0];
            b.extend_from_slice(&body);
            let len = b.len();
            put16(&mut b, 2, len);
            if pad {
                b.resize(pad4(b.len()), 0);
            }
            b
        })
}

/// A parameter tree of random types and contents with consistent lengths.
#[derive(Clone, Debug)]
enum Node {
    Leaf(u16, Vec<u8>),
    Nest(u16, Vec<u8>, Vec<Self>),
}

fn emit(w: &mut Writer<'_>, n: &Node) {
    match n {
        Node::Leaf(t, d) => {
            let m = w.begin_param(*t, "soup");
            w.put_bytes(d);
            w.end_param(m);
        }
        Node::Nest(t, fixed, kids) => {
            let m = w.begin_param(*t, "soup");
            w.put_bytes(fixed);
            for k in kids {
                emit(w, k);
            }
            w.end_param(m);
        }
    }
}

fn be(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        2 => any::<[u8; 4]>().prop_map(|a| Node::Leaf(1, a.to_vec())),
        1 => any::<[u8; 16]>().prop_map(|a| Node::Leaf(2, a.to_vec())),
        2 => known_policy().prop_map(|p| {
            let mut d = be(p.policy_type().0);
            for v in p.values().as_slice() {
                d.extend_from_slice(&v.to_be_bytes());
            }
            Node::Leaf(8, d)
        }),
        1 => (any::<u32>(), vec(any::<u8>(), 0..=9))
            .prop_map(|(t, d)| Node::Leaf(8, [be(t), d].concat())),
        2 => vec(any::<u8>(), 0..=34).prop_map(|h| Node::Leaf(9, h)),
        1 => any::<u32>().prop_map(|v| Node::Leaf(0x0e, be(v))),
        1 => any::<u16>().prop_map(|v| Node::Leaf(0x0f, v.to_be_bytes().to_vec())),
        1 => any::<u32>().prop_map(|v| Node::Leaf(0x803f, be(v))),
        1 => vec(any::<u8>(), 0..=11).prop_map(|d| Node::Leaf(0x0d, d)),
        1 => vec(any::<u8>(), 0..=11).prop_map(|d| Node::Leaf(0x10, d)),
        1 => (unknown_param_type_any_action(), vec(any::<u8>(), 0..=11))
            .prop_map(|(t, d)| Node::Leaf(t, d)),
        1 => (any::<u16>(), vec(any::<u8>(), 0..=11)).prop_map(|(t, d)| Node::Leaf(t, d)),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(3, 40, 4, |inner| {
        prop_oneof![
            3 => (
                select(vec![3u16, 4, 4, 5, 6, 7, 0x0a, 0x0a, 0x0b]),
                any::<[u8; 12]>(),
                vec(inner.clone(), 0..=4),
            )
                .prop_map(|(t, fixed, kids)| {
                    let n = container_fixed(t).expect("container");
                    Node::Nest(t, fixed[..n].to_vec(), kids)
                }),
            1 => vec(
                (
                    prop_oneof![0u16..=0x0b, any::<u16>()],
                    proptest::option::of(inner),
                    vec(any::<u8>(), 0..=6),
                ),
                0..=3,
            )
            .prop_map(|causes| {
                let causes = causes
                    .into_iter()
                    .map(|(code, nested, raw)| match nested {
                        Some(n) => Node::Nest(code, Vec::new(), vec![n]),
                        None => Node::Leaf(code, raw),
                    })
                    .collect();
                Node::Nest(0x0c, Vec::new(), causes)
            }),
        ]
    })
}

/// A message of random type whose body is a parameter tree, most of the
/// time behind the fixed fields its type has.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        message_type(),
        any::<u8>(),
        prop_oneof![3 => Just(None), 1 => (0usize..=3).prop_map(Some)],
        proptest::array::uniform3(prop_oneof![
            Just([0u8; 4]),
            Just([0, 0, 0, 1]),
            any::<[u8; 4]>()
        ]),
        vec(node(), 0..=4),
    )
        .prop_map(|(asap, ty, flags, words, fixed, kids)| {
            let proto = if asap { Protocol::Asap } else { Protocol::Enrp };
            let words = words.unwrap_or(fixed_part(proto, ty) / 4);
            let mut buf = vec![0u8; 70_000];
            let mut w = Writer::new(&mut buf);
            let m = w.begin_message(ty, flags, "soup");
            for word in &fixed[..words] {
                w.put_bytes(word);
            }
            for k in &kids {
                emit(&mut w, k);
            }
            w.end_message(m);
            let n = w.finish().expect("small enough");
            buf.truncate(n);
            buf
        })
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Extend(Vec<u8>),
    Delete(Index, u8),
    Insert(Index, Vec<u8>),
    SetU16(Index, u16),
    MessageLength(i16),
    /// Changes the length field of a parameter (found in the original).
    ParamLength(Index, i16),
    /// Changes the type of a parameter (found in the original).
    ParamType(Index, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let small = prop_oneof![-8i16..=8, any::<i16>()];
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => vec(prop_oneof![Just(0u8), any::<u8>()], 1..=8).prop_map(Mutation::Extend),
        1 => (any::<Index>(), 1u8..=8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), vec(any::<u8>(), 1..=8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), any::<u16>()).prop_map(|(i, v)| Mutation::SetU16(i, v)),
        2 => small.clone().prop_map(Mutation::MessageLength),
        4 => (any::<Index>(), small).prop_map(|(i, d)| Mutation::ParamLength(i, d)),
        2 => (
            any::<Index>(),
            prop_oneof![0u16..=0x11, Just(0x803f), unknown_param_type_any_action()]
        )
            .prop_map(|(i, t)| Mutation::ParamType(i, t)),
    ]
}

fn apply(b: &mut Vec<u8>, m: &Mutation, headers: &[usize]) {
    let nudge = |v: usize, d: i16| u16::try_from(v).expect("u16").wrapping_add_signed(d);
    match m {
        Mutation::FlipBit(i, bit) if !b.is_empty() => {
            let i = i.index(b.len());
            b[i] ^= 1 << bit;
        }
        Mutation::SetByte(i, v) if !b.is_empty() => {
            let i = i.index(b.len());
            b[i] = *v;
        }
        Mutation::Truncate(i) if !b.is_empty() => {
            let n = i.index(b.len());
            b.truncate(n);
        }
        Mutation::Extend(more) => b.extend_from_slice(more),
        Mutation::Delete(i, n) if !b.is_empty() => {
            let at = i.index(b.len());
            let end = (at + usize::from(*n)).min(b.len());
            b.drain(at..end);
        }
        Mutation::Insert(i, bytes) => {
            let at = i.index(b.len() + 1);
            b.splice(at..at, bytes.iter().copied());
        }
        Mutation::SetU16(i, v) if b.len() >= 2 => {
            let at = i.index(b.len() - 1);
            b[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::MessageLength(d) if b.len() >= 4 => {
            let v = nudge(be16(b, 2), *d);
            b[2..4].copy_from_slice(&v.to_be_bytes());
        }
        Mutation::ParamLength(i, d) if !headers.is_empty() => {
            let at = headers[i.index(headers.len())] + 2;
            if at + 2 <= b.len() {
                let v = nudge(be16(b, at), *d);
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        Mutation::ParamType(i, t) if !headers.is_empty() => {
            let at = headers[i.index(headers.len())];
            if at + 2 <= b.len() {
                b[at..at + 2].copy_from_slice(&t.to_be_bytes());
            }
        }
        _ => {}
    }
}

fn mutate(original: &[u8], proto: Protocol, ms: &[Mutation]) -> Vec<u8> {
    let headers = if original.len() >= 4 && be16(original, 2) >= 4 {
        header_offsets(original, proto)
    } else {
        Vec::new()
    };
    let mut b = original.to_vec();
    for m in ms {
        apply(&mut b, m, &headers);
    }
    b
}

// ---------------------------------------------------------------------------
// The pre-RFC RSPLIB vectors
// ---------------------------------------------------------------------------

struct Vector {
    name: String,
    proto: Protocol,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prerfc");
    let mut v: Vec<Vector> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("readable");
            let proto = if name.contains("_asap-") {
                Protocol::Asap
            } else {
                assert!(name.contains("_enrp-"), "{name}");
                Protocol::Enrp
            };
            Vector {
                name,
                proto,
                bytes: hex(&text),
            }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[test]
fn prerfc_vectors_never_panic_and_are_rejected() {
    let vs = vectors();
    assert_eq!(vs.len(), 67, "all vectors copied");
    let mut rejected = 0;
    for v in &vs {
        let out = oracle(&v.bytes);
        let own = match v.proto {
            Protocol::Asap => out.asap,
            Protocol::Enrp => out.enrp,
        }
        .expect("ran");
        if v.name.contains("_rfc_") {
            // Fixed-layout ENRP messages unchanged since the drafts: valid
            // RFC 5353, and canonical.
            assert_eq!(own, Ok(()), "{}", v.name);
            let m = EnrpMessage::parse(&v.bytes).unwrap();
            assert_eq!(m.to_vec().unwrap(), v.bytes, "{}", v.name);
        } else {
            // Draft parameter codes: the first parameter of every one of
            // them has a code that means something else in RFC 5354 (or is
            // a known parameter out of place), so it is refused with Invalid
            // Values, which the receiver may report.
            let kind = own.expect_err(&v.name);
            assert_eq!(kind, ErrorKind::Misplaced, "{}", v.name);
            rejected += 1;
        }
    }
    assert_eq!(rejected, 61);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(Config::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(b in vec(any::<u8>(), 0..=300)) {
        oracle(&b);
    }

    #[test]
    fn framed_random_bytes_never_panic(b in framed_random()) {
        oracle(&b);
    }

    #[test]
    fn parameter_soup_never_panics(b in soup()) {
        oracle(&b);
    }

    #[test]
    fn mutated_asap_messages_never_panic(m in asap_message(), ms in vec(mutation(), 1..=4)) {
        let original = with_asap(&m, |msg| msg.to_vec().expect("valid"));
        oracle(&mutate(&original, Protocol::Asap, &ms));
        oracle(&mutate(&rsplib_form(&original, Protocol::Asap), Protocol::Asap, &ms));
    }

    #[test]
    fn mutated_enrp_messages_never_panic(m in enrp_message(), ms in vec(mutation(), 1..=4)) {
        let original = with_enrp(&m, |msg| msg.to_vec().expect("valid"));
        oracle(&mutate(&original, Protocol::Enrp, &ms));
        oracle(&mutate(&rsplib_form(&original, Protocol::Enrp), Protocol::Enrp, &ms));
    }

    #[test]
    fn mutated_parameters_never_panic(p in param(), ms in vec(mutation(), 1..=3)) {
        let original = with_param(&p, |p| p.to_vec().expect("valid"));
        // Parameter headers: the parameter itself, then (as in a message
        // with no fixed part) whatever `boundaries` finds inside it.
        let mut wrapped = vec![0x0b, 0, 0, 0];
        wrapped.extend_from_slice(&original);
        put16(&mut wrapped, 2, 4 + be16(&original, 2));
        let headers: Vec<usize> = header_offsets(&wrapped, Protocol::Asap)
            .into_iter()
            .map(|h| h - 4)
            .collect();
        let mut b = original.clone();
        for m in &ms {
            apply(&mut b, m, &headers);
        }
        oracle(&b);
    }

    #[test]
    fn mutated_prerfc_vectors_never_panic(pick in any::<Index>(), ms in vec(mutation(), 1..=4)) {
        let vs = vectors();
        let v = pick.get(&vs);
        // The vectors' draft layouts are not what `boundaries` understands,
        // so only blind edits (and message length edits) apply.
        let mut b = v.bytes.clone();
        for m in &ms {
            apply(&mut b, m, &[]);
        }
        oracle(&b);
    }
}

/// The generators are worth their time: across a fixed sample, both parsers
/// accept some inputs (so the re-encode oracle runs), and the rejections
/// reach every error kind.
#[test]
fn generators_reach_acceptance_and_every_error_kind() {
    let mut runner = TestRunner::deterministic();
    let mut accepted = [0usize; 3];
    let mut kinds = BTreeSet::new();
    let mut note = |o: Outcome| {
        for (i, r) in [o.asap, o.enrp, o.param].into_iter().enumerate() {
            match r.expect("ran") {
                Ok(()) => accepted[i] += 1,
                Err(k) => {
                    kinds.insert(match k {
                        ErrorKind::Truncated => "Truncated",
                        ErrorKind::BadLength => "BadLength",
                        ErrorKind::BadPadding => "BadPadding",
                        ErrorKind::Missing => "Missing",
                        ErrorKind::Misplaced => "Misplaced",
                        ErrorKind::TooLong => "TooLong",
                        ErrorKind::InvalidValue => "InvalidValue",
                        ErrorKind::UnrecognizedParameter(UnrecognizedAction::Stop) => "Stop",
                        ErrorKind::UnrecognizedParameter(_) => "StopAndReport",
                        ErrorKind::UnrecognizedMessage { report: false } => "Message",
                        ErrorKind::UnrecognizedMessage { report: true } => "MessageReport",
                        _ => "other",
                    });
                }
            }
        }
    };
    let soup = soup();
    let asap = (asap_message(), vec(mutation(), 1..=2));
    let enrp = (enrp_message(), vec(mutation(), 1..=2));
    for _ in 0..1500 {
        note(oracle(&soup.new_tree(&mut runner).unwrap().current()));
        let (m, ms) = asap.new_tree(&mut runner).unwrap().current();
        let b = with_asap(&m, |msg| msg.to_vec().unwrap());
        note(oracle(&mutate(&b, Protocol::Asap, &ms)));
        let (m, ms) = enrp.new_tree(&mut runner).unwrap().current();
        let b = with_enrp(&m, |msg| msg.to_vec().unwrap());
        note(oracle(&mutate(&b, Protocol::Enrp, &ms)));
    }
    assert!(accepted.iter().all(|&n| n >= 50), "accepted: {accepted:?}");
    let all: BTreeSet<&str> = [
        "Truncated",
        "BadLength",
        "BadPadding",
        "Missing",
        "Misplaced",
        "TooLong",
        "InvalidValue",
        "Stop",
        "StopAndReport",
        "Message",
        "MessageReport",
    ]
    .into();
    assert_eq!(kinds, all);
}
