//! The codec allocates nothing: decoding the spec examples (section 12 of
//! the spec digest, byte vectors copied from `spec_examples.rs`), iterating
//! every list in them, looking at errors, and encoding them into a stack
//! buffer.
//!
//! A counting global allocator counts only on the thread that measures and
//! only while it measures (a thread-local flag), so the test harness's own
//! allocations (other threads, output capture, setup) do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rserpool_wire::*;

struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: never touch a thread-local that is being torn down.
    let on = MEASURING.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialized thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result and how many allocations it made.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    MEASURING.with(|m| m.set(true));
    let r = f();
    MEASURING.with(|m| m.set(false));
    (r, COUNT.with(Cell::get))
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Spec examples 12.1-12.7, as in `spec_examples.rs`.
fn asap_examples() -> Vec<Vec<u8>> {
    [
        // 12.1 Registration
        "01 00 00 3c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0a 00 28 1a 2b 3c 4d 00 00 00 00
         00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08 00 00 00 01",
        // 12.2b Registration Response, rejected with an Inconsistent Pooling Policy cause
        "03 01 00 30 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d 00 0c 00 14
         00 05 00 10 00 08 00 0c 40 00 00 01 00 00 00 00",
        // 12.3 Handle Resolution
        "05 00 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00",
        // 12.4 Handle Resolution Response with two PEs
        "06 00 00 74 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 08 00 08 00 00 00 01 00 0a 00 28
         1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a 00 08 00 08
         00 00 00 01 00 0a 00 30 5e 6f 70 81 11 22 33 44 00 00 01 2c 00 04 00 18 1b 58 00 00 00 01 00 08
         c0 00 02 0b 00 01 00 08 c6 33 64 0b 00 08 00 08 00 00 00 01",
        // 12.4 Handle Resolution Response, unknown pool
        "06 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0c 00 08 00 09 00 04",
        // 12.7 Endpoint Keep Alive, Keep Alive Ack, Server Announce
        "07 01 00 17 11 22 33 44 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00",
        "08 00 00 1c 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00 00 0e 00 08 1a 2b 3c 4d",
        "0a 00 00 18 11 22 33 44 00 04 00 10 0f 17 00 00 00 01 00 08 c0 00 02 01",
    ]
    .iter()
    .map(|s| hex(s))
    .collect()
}

fn enrp_examples() -> Vec<Vec<u8>> {
    [
        // 12.5 Presence with checksum
        "01 00 00 2c 11 22 33 44 00 00 00 00 00 0f 00 06 56 72 00 00 00 0b 00 18 11 22 33 44 00 04 00 10
         26 ad 00 00 00 01 00 08 c0 00 02 01",
        // 12.6 Handle Update
        "04 00 00 58 11 22 33 44 00 00 00 00 00 00 00 00 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00
         00 0a 00 38 1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a
         00 08 00 08 00 00 00 01 00 04 00 10 c3 50 00 00 00 01 00 08 c0 00 02 0a",
        // 12.7 Handle Table Request, Init Takeover
        "02 01 00 0c 55 66 77 88 11 22 33 44",
        "07 00 00 10 55 66 77 88 00 00 00 00 99 aa bb cc",
        // A Handle Table Response with two pool entries, built from 12.4's PEs.
        "03 02 00 74 55 66 77 88 11 22 33 44 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00
         00 0a 00 28 1a 2b 3c 4d 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0a
         00 08 00 08 00 00 00 01 00 09 00 05 78 00 00 00
         00 0a 00 28 5e 6f 70 81 11 22 33 44 00 00 01 2c 00 04 00 10 1b 58 00 00 00 01 00 08 c0 00 02 0b
         00 08 00 08 00 00 00 01",
    ]
    .iter()
    .map(|s| hex(s))
    .collect()
}

/// Everything a receiver does with an ASAP message, without allocating:
/// decode (with reports), walk every list, encode into a stack buffer and
/// compare. Returns a checksum of what it saw so nothing is optimized away.
fn asap_round(bytes: &[u8]) -> usize {
    let mut reports = Reports::new();
    let m = AsapMessage::parse_reporting(bytes, &mut reports).expect("spec example decodes");
    assert!(reports.is_empty());
    let seen = walk_asap(&m);
    let mut buf = [0u8; 512];
    let n = m.encode(&mut buf).expect("fits");
    assert_eq!(&buf[..n], bytes);
    assert_eq!(m.encoded_len(), n);
    let mut view_buf = [0u8; 512];
    let mut w = Writer::new(&mut view_buf);
    m.emit(&mut w);
    assert_eq!(w.finish(), Ok(n));
    seen + n
}

fn enrp_round(bytes: &[u8]) -> usize {
    let mut reports = Reports::new();
    let m = EnrpMessage::parse_reporting(bytes, &mut reports).expect("spec example decodes");
    assert!(reports.is_empty());
    let seen = walk_enrp(&m);
    let mut buf = [0u8; 512];
    let n = m.encode(&mut buf).expect("fits");
    assert_eq!(&buf[..n], bytes);
    assert_eq!(m.encoded_len(), n);
    seen + n
}

fn walk_transport(t: &Transport<'_>) -> usize {
    let mut n = 0;
    for a in t.addresses.iter() {
        n += usize::from(a.is_ipv4()) + 1;
    }
    assert_eq!(n.min(1), usize::from(!t.addresses.is_empty()));
    n + usize::from(t.port)
}

fn walk_pe(pe: &PoolElement<'_>) -> usize {
    walk_transport(&pe.user_transport)
        + pe.asap_transport.as_ref().map_or(0, walk_transport)
        + pe.policy.known().map_or(0, |p| p.values().as_slice().len())
        + pe.id.0 as usize
}

fn walk_error(e: &OperationError<'_>) -> usize {
    let mut n = 0;
    for c in e.causes.iter() {
        n += usize::from(c.code.0)
            + match c.info {
                CauseInfo::Bytes(b) => b.len(),
                CauseInfo::Policy(p) => p.policy_type().0 as usize,
                CauseInfo::Transport(t) => walk_transport(&t),
            };
    }
    n
}

fn walk_asap(m: &AsapMessage<'_>) -> usize {
    match m {
        AsapMessage::Registration(r) => walk_pe(&r.element),
        AsapMessage::RegistrationResponse(r) => r.error.as_ref().map_or(0, walk_error),
        AsapMessage::HandleResolutionResponse(r) => {
            r.elements.iter().map(|pe| walk_pe(&pe)).sum::<usize>()
                + r.error.as_ref().map_or(0, walk_error)
        }
        AsapMessage::ServerAnnounce(s) => s.transports.iter().map(|t| walk_transport(&t)).sum(),
        AsapMessage::BusinessCard(b) => b.elements.iter().map(|pe| walk_pe(&pe)).sum(),
        AsapMessage::Error(e) => walk_error(&e.error),
        other => other.message_type().code().into(),
    }
}

fn walk_enrp(m: &EnrpMessage<'_>) -> usize {
    match m {
        EnrpMessage::Presence(p) => p
            .server_info
            .as_ref()
            .map_or(0, |s| walk_transport(&s.transport)),
        EnrpMessage::HandleTableResponse(r) => r
            .entries
            .iter()
            .map(|e| {
                e.pool_handle.as_bytes().len()
                    + e.elements.iter().map(|pe| walk_pe(&pe)).sum::<usize>()
            })
            .sum(),
        EnrpMessage::HandleUpdate(u) => walk_pe(&u.element),
        EnrpMessage::ListResponse(l) => {
            l.servers.iter().map(|s| walk_transport(&s.transport)).sum()
        }
        EnrpMessage::Error(e) => walk_error(&e.error),
        other => other.message_type().code().into(),
    }
}

/// Rejections do not allocate either: the error, its cause and the
/// offending bytes are all at hand without a heap.
fn rejection(bytes: &[u8]) -> usize {
    let e = AsapMessage::parse(bytes).expect_err("broken on purpose");
    let cause = e.cause().map_or(0, |c| usize::from(c.0));
    cause + e.offending(bytes).map_or(0, <[u8]>::len) + e.field().len()
}

#[test]
fn decoding_walking_and_encoding_allocate_nothing() {
    let asap = asap_examples();
    let enrp = enrp_examples();
    // Broken copies, made before measuring: unknown stop+report parameter,
    // bad padding, truncation.
    let mut broken = Vec::new();
    let mut b = asap[2].clone();
    b[4] = 0x40;
    broken.push(b);
    let mut b = asap[2].clone();
    b[19] = 1;
    broken.push(b);
    broken.push(asap[3][..50].to_vec());

    // The counter works: an allocation inside the closure is seen.
    let (v, n) = allocations(|| vec![1u8; 3]);
    assert_eq!((v.len(), n), (3, 1));

    let (seen, n) = allocations(|| {
        let mut seen = 0;
        for b in &asap {
            seen += asap_round(b);
        }
        for b in &enrp {
            seen += enrp_round(b);
        }
        for b in &broken {
            seen += rejection(b);
        }
        seen
    });
    assert!(seen > 0);
    assert_eq!(n, 0, "the codec allocated {n} times");
}
