//! The bodies of the fuzz targets in `fuzz_targets/`, as plain functions so
//! they build and run on a stable toolchain: the replay test below runs them
//! over `seeds/` (and over `corpus/` and `artifacts/` when a fuzzing run left
//! any), so `cargo test --manifest-path fuzz/Cargo.toml --lib` checks every
//! input found so far without cargo-fuzz or nightly.
//!
//! Each function panics exactly when it finds a bug in `rserpool-wire`:
//!
//! * [`parse_any`]: decoding arbitrary bytes never panics, errors point into
//!   the input, and every [`Seq`] of an accepted message yields exactly
//!   `len()` items (the codec's "validated once, iteration cannot fail"
//!   contract);
//! * [`round_trip`]: decode, encode, decode again gives an equal message,
//!   and encoding that gives the same bytes again (hickory-dns's oracle);
//! * [`params_iter`]: the parameter iterator and [`Param::parse_prefix`]
//!   terminate on arbitrary bytes, and every decoded parameter round-trips.
//!
//! Input layout for `parse_any` and `round_trip`: the first byte picks the
//! protocol (even: ASAP, odd: ENRP), the rest is one message. `params_iter`
//! takes the bytes as a run of parameters (a message body).
#![forbid(unsafe_code)]

use std::net::IpAddr;

use rserpool_wire::asap::AsapMessage;
use rserpool_wire::enrp::{EnrpMessage, PoolEntry};
use rserpool_wire::{
    Cause, CauseInfo, Encode, Error, OperationError, Param, PolicyParam, PoolElement, Protocol,
    Reports, Seq, ServerInfo, Tlvs, Transport, WireItem, frame_len,
};

/// The protocol the first input byte selects.
pub const fn protocol_of(selector: u8) -> Protocol {
    if selector & 1 == 0 {
        Protocol::Asap
    } else {
        Protocol::Enrp
    }
}

/// The selector byte for `protocol` (the inverse of [`protocol_of`]).
pub const fn selector_of(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Asap => 0,
        Protocol::Enrp => 1,
    }
}

/// Walks a sequence, checking it yields exactly the items it counted.
fn walk<'a, T: WireItem<'a> + Clone>(s: &Seq<'a, T>, mut f: impl FnMut(&T)) {
    let mut n = 0;
    for item in s.iter() {
        f(&item);
        n += 1;
    }
    assert_eq!(n, s.len(), "a Seq yielded fewer items than it counted");
}

fn touch_transport(t: &Transport<'_>) {
    walk(&t.addresses, |a: &IpAddr| {
        std::hint::black_box(a);
    });
    std::hint::black_box((t.kind, t.port, t.transport_use, t.service_code, t.opaque));
}

fn touch_policy(p: &PolicyParam<'_>) {
    if let Some(k) = p.known() {
        std::hint::black_box(k.values());
    }
    std::hint::black_box(p.policy_type());
}

fn touch_element(e: &PoolElement<'_>) {
    touch_transport(&e.user_transport);
    touch_policy(&e.policy);
    if let Some(t) = &e.asap_transport {
        touch_transport(t);
    }
    std::hint::black_box((e.id, e.home_server, e.registration_life));
}

fn touch_elements(s: &Seq<'_, PoolElement<'_>>) {
    walk(s, touch_element);
}

fn touch_server(s: &ServerInfo<'_>) {
    touch_transport(&s.transport);
}

fn touch_error(e: &OperationError<'_>) {
    walk(&e.causes, |c: &Cause<'_>| match &c.info {
        CauseInfo::Bytes(b) => {
            std::hint::black_box(b);
        }
        CauseInfo::Policy(p) => touch_policy(p),
        CauseInfo::Transport(t) => touch_transport(t),
    });
    assert!(
        e.first_code().is_some(),
        "an Operation Error without causes"
    );
}

/// Reads every field of an ASAP message, iterating every sequence.
pub fn touch_asap(m: &AsapMessage<'_>) {
    match m {
        AsapMessage::Registration(x) => touch_element(&x.element),
        AsapMessage::RegistrationResponse(x) => x.error.iter().for_each(touch_error),
        AsapMessage::DeregistrationResponse(x) => x.error.iter().for_each(touch_error),
        AsapMessage::HandleResolutionResponse(x) => {
            x.policy.iter().for_each(touch_policy);
            touch_elements(&x.elements);
            x.error.iter().for_each(touch_error);
        }
        AsapMessage::ServerAnnounce(x) => walk(&x.transports, touch_transport),
        AsapMessage::BusinessCard(x) => {
            x.policy.iter().for_each(touch_policy);
            touch_elements(&x.elements);
        }
        AsapMessage::Error(x) => touch_error(&x.error),
        AsapMessage::Deregistration(_)
        | AsapMessage::HandleResolution(_)
        | AsapMessage::EndpointKeepAlive(_)
        | AsapMessage::EndpointKeepAliveAck(_)
        | AsapMessage::EndpointUnreachable(_)
        | AsapMessage::Cookie(_)
        | AsapMessage::CookieEcho(_) => {}
    }
    std::hint::black_box((m.message_type(), m.flags()));
}

/// Reads every field of an ENRP message, iterating every sequence.
pub fn touch_enrp(m: &EnrpMessage<'_>) {
    match m {
        EnrpMessage::Presence(x) => x.server_info.iter().for_each(touch_server),
        EnrpMessage::HandleTableResponse(x) => walk(&x.entries, |e: &PoolEntry<'_>| {
            assert!(!e.elements.is_empty(), "a pool entry without PEs");
            touch_elements(&e.elements);
        }),
        EnrpMessage::HandleUpdate(x) => touch_element(&x.element),
        EnrpMessage::ListResponse(x) => walk(&x.servers, touch_server),
        EnrpMessage::Error(x) => touch_error(&x.error),
        EnrpMessage::HandleTableRequest(_)
        | EnrpMessage::ListRequest(_)
        | EnrpMessage::InitTakeover(_)
        | EnrpMessage::InitTakeoverAck(_)
        | EnrpMessage::TakeoverServer(_) => {}
    }
    std::hint::black_box((m.message_type(), m.flags(), m.ids()));
}

/// Checks what a decode error promises: it names a field, maps to a cause or
/// to a silent discard, and its offending bytes lie inside the input.
fn check_error(e: &Error, input: &[u8]) {
    assert!(!e.field().is_empty());
    std::hint::black_box((e.kind(), e.cause(), e.to_string()));
    assert!(
        e.offending(input).is_some(),
        "error {e:?} points outside the input"
    );
}

/// Target `parse_any`: decode one message of the protocol the first byte
/// picks; never panic; iterate everything an accepted message holds.
pub fn parse_any(data: &[u8]) {
    let Some((&selector, msg)) = data.split_first() else {
        return;
    };
    let _ = frame_len(msg);
    let mut reports = Reports::new();
    match protocol_of(selector) {
        Protocol::Asap => match AsapMessage::parse_reporting(msg, &mut reports) {
            Ok(m) => touch_asap(&m),
            Err(e) => check_error(&e, msg),
        },
        Protocol::Enrp => match EnrpMessage::parse_reporting(msg, &mut reports) {
            Ok(m) => touch_enrp(&m),
            Err(e) => check_error(&e, msg),
        },
    }
    for r in reports.iter() {
        assert!(r.len() >= 4, "a reported parameter shorter than its header");
    }
}

/// Largest encoding of any message: the 16-bit length plus 3 pad bytes.
const MAX_ENCODED: usize = 65_535 + 3;

/// Target `round_trip`: if the input decodes, its encoding decodes to an
/// equal message, and encoding that gives the same bytes.
pub fn round_trip(data: &[u8]) {
    let Some((&selector, msg)) = data.split_first() else {
        return;
    };
    let mut first = vec![0u8; MAX_ENCODED];
    let mut second = vec![0u8; MAX_ENCODED];
    match protocol_of(selector) {
        Protocol::Asap => {
            let Ok(m) = AsapMessage::parse(msg) else {
                return;
            };
            let n = encode_checked(&m, &mut first);
            let again = AsapMessage::parse(&first[..n])
                .unwrap_or_else(|e| panic!("re-encoding of {m:?} does not decode: {e}"));
            assert_eq!(m, again, "decode(encode(m)) != m");
            let n2 = encode_checked(&again, &mut second);
            assert_eq!(first[..n], second[..n2], "encoding is not stable");
        }
        Protocol::Enrp => {
            let Ok(m) = EnrpMessage::parse(msg) else {
                return;
            };
            let n = encode_checked(&m, &mut first);
            let again = EnrpMessage::parse(&first[..n])
                .unwrap_or_else(|e| panic!("re-encoding of {m:?} does not decode: {e}"));
            assert_eq!(m, again, "decode(encode(m)) != m");
            let n2 = encode_checked(&again, &mut second);
            assert_eq!(first[..n], second[..n2], "encoding is not stable");
        }
    }
}

/// Encodes a decoded value, which must always be possible, and checks
/// `encoded_len` against what was written.
fn encode_checked(m: &(impl Encode + std::fmt::Debug), buf: &mut [u8]) -> usize {
    let n = m
        .encode(buf)
        .unwrap_or_else(|e| panic!("decoded {m:?} does not encode: {e}"));
    assert_eq!(n, m.encoded_len(), "encoded_len disagrees with encode");
    assert_eq!(n % 4, 0, "an encoding not padded to 4 bytes");
    n
}

/// How deep `params_iter` descends into nested parameter values.
const MAX_DEPTH: usize = 4;

fn walk_tlvs(region: &[u8], depth: usize) {
    let mut seen = 0usize;
    for tlv in Tlvs::new(region, "fuzz") {
        match tlv {
            Ok(t) => {
                assert_eq!(t.raw().len(), t.value().len() + 4);
                std::hint::black_box((t.ty(), t.action()));
                if depth < MAX_DEPTH {
                    walk_tlvs(t.value(), depth + 1);
                }
            }
            Err(e) => check_error(&e, region),
        }
        seen += 1;
        // Every parameter takes at least 4 bytes, an error ends the iterator.
        assert!(seen <= region.len() / 4 + 1, "Tlvs does not advance");
    }
}

/// Target `params_iter`: iterate the input as a run of parameters, both as
/// raw TLVs (descending into nested values) and as typed [`Param`]s; every
/// decoded parameter must re-encode to one that decodes equal.
pub fn params_iter(data: &[u8]) {
    walk_tlvs(data, 0);
    let mut rest = data;
    let mut buf = vec![0u8; MAX_ENCODED];
    loop {
        match Param::parse_prefix(rest) {
            Ok(Some((p, next))) => {
                assert!(next.len() < rest.len(), "parse_prefix does not advance");
                touch_param(&p);
                let n = encode_checked(&p, &mut buf);
                match Param::parse_prefix(&buf[..n]) {
                    Ok(Some((again, tail))) => {
                        assert_eq!(p, again, "parameter does not round-trip");
                        assert!(tail.is_empty(), "re-encoded parameter leaves bytes");
                    }
                    other => panic!("re-encoded {p:?} does not decode: {other:?}"),
                }
                rest = next;
            }
            Ok(None) => break,
            Err(e) => {
                check_error(&e, rest);
                break;
            }
        }
    }
}

fn touch_param(p: &Param<'_>) {
    match p {
        Param::Transport(t) => touch_transport(t),
        Param::Policy(x) => touch_policy(x),
        Param::PoolElement(e) => touch_element(e),
        Param::ServerInfo(s) => touch_server(s),
        Param::OperationError(e) => touch_error(e),
        Param::Address(_)
        | Param::PoolHandle(_)
        | Param::Cookie(_)
        | Param::PeId(_)
        | Param::PeChecksum(_)
        | Param::HandleResolutionOption(_)
        | Param::Unknown(_) => {}
    }
}

/// Hex text as in `seeds/*.hex`: one message per line, `#` comments,
/// whitespace and colons ignored. Returns (line number, bytes) per message.
pub fn parse_seed_file(text: &str) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let hex: String = line
            .split('#')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        if hex.is_empty() {
            continue;
        }
        assert!(hex.len() % 2 == 0, "line {}: odd number of digits", i + 1);
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|j| {
                u8::from_str_radix(&hex[j..j + 2], 16)
                    .unwrap_or_else(|_| panic!("line {}: bad hex", i + 1))
            })
            .collect();
        out.push((i + 1, bytes));
    }
    out
}

/// The parameters of a message: the bytes after the common header (and after
/// the two server ids for ENRP). Empty if the message is shorter.
pub fn message_params(protocol: Protocol, msg: &[u8]) -> &[u8] {
    let skip = match protocol {
        Protocol::Asap => 4,
        Protocol::Enrp => 12,
    };
    msg.get(skip..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use super::*;

    fn dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut v: Vec<_> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        v.sort();
        v
    }

    /// Every seed through all three targets; seeds of `*-malformed.hex`
    /// must be refused, all others must decode.
    #[test]
    fn replay_seeds() {
        let seeds = files(&dir("seeds"));
        assert!(seeds.len() >= 4, "fuzz/seeds/ is missing");
        let mut count = 0;
        for path in seeds {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".hex") {
                continue;
            }
            let protocol = if name.starts_with("enrp") {
                Protocol::Enrp
            } else {
                assert!(
                    name.starts_with("asap"),
                    "{name}: name must start asap or enrp"
                );
                Protocol::Asap
            };
            let must_decode = !name.contains("malformed");
            for (line, msg) in parse_seed_file(&fs::read_to_string(&path).unwrap()) {
                let decoded = match protocol {
                    Protocol::Asap => AsapMessage::parse(&msg).map(|_| ()),
                    Protocol::Enrp => EnrpMessage::parse(&msg).map(|_| ()),
                };
                assert_eq!(
                    decoded.is_ok(),
                    must_decode,
                    "{name}:{line}: decode gave {decoded:?}"
                );
                for sel in [selector_of(protocol), selector_of(protocol) ^ 1] {
                    let mut input = vec![sel];
                    input.extend_from_slice(&msg);
                    parse_any(&input);
                    round_trip(&input);
                }
                params_iter(&msg);
                params_iter(message_params(protocol, &msg));
                count += 1;
            }
        }
        assert!(count >= 50, "only {count} seeds");
    }

    /// Whatever a local fuzzing run left in corpus/ and artifacts/ (both are
    /// git-ignored) replays too, so a crash found by cargo-fuzz becomes a
    /// failing `cargo test` until the codec is fixed.
    #[test]
    fn replay_local_corpus_and_artifacts() {
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 3] = [
            ("parse_any", parse_any),
            ("round_trip", round_trip),
            ("params_iter", params_iter),
        ];
        for (target, f) in targets {
            for base in ["corpus", "artifacts"] {
                for path in files(&dir(base).join(target)) {
                    f(&fs::read(&path).unwrap());
                }
            }
        }
    }

    /// The RSPLIB capture vectors (`tests/vectors/rsplib-3.4.4/*.hex`, one
    /// message per file), when present: through all three targets as the
    /// protocol their name gives, and as the other one. Whether they must
    /// decode is the vector tests' business; here they must not panic.
    #[test]
    fn replay_rsplib_vectors() {
        let vectors = dir("../tests/vectors/rsplib-3.4.4");
        for path in files(&vectors) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".hex") {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            for (_, msg) in parse_seed_file(&text) {
                for sel in [0, 1] {
                    let mut input = vec![sel];
                    input.extend_from_slice(&msg);
                    parse_any(&input);
                    round_trip(&input);
                    params_iter(message_params(protocol_of(sel), &msg));
                }
                params_iter(&msg);
            }
        }
    }

    #[test]
    fn short_and_empty_inputs() {
        for data in [&[][..], &[0], &[1], &[0, 5, 0], &[1, 2, 0, 0, 12]] {
            parse_any(data);
            round_trip(data);
            params_iter(data);
        }
    }
}
