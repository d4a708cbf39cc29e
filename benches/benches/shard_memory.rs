//! Memory per PE of the handlespace shard: 10^6 PEs with one IPv4 address
//! each, Round Robin, in pools of 1, 10 and 1000 PEs.
//!
//! A counting global allocator gives the live bytes the shard holds after
//! the registrations (temporary allocations freed on the way do not count);
//! `VmRSS` from `/proc/self/status` gives what the process really uses,
//! allocator overhead and retained free memory included. Each pool size
//! runs in a child process of its own so that the RSS figures start clean.
//!
//! The breakdown lists every live allocation of 1 MiB or more (the slabs,
//! hash tables and timer heap, one by one) and the rest by size class.
//!
//! Each pool size is measured three times, each in a child process of its
//! own: over the system allocator (glibc's malloc), over mimalloc (the
//! registrar binary's allocator) with its default options, and over
//! mimalloc with `MIMALLOC_ALLOW_THP=0` (the operator's knob in
//! `tuning/README.md`). The allocator figure is the same for all three (the
//! shard asks for the same bytes); the RSS shows what each allocator makes
//! of them.
//!
//! Run with `cargo bench -p rserpool-benches --bench shard_memory`.
//! `SHARD_MEMORY_PES` changes the number of PEs (default 1000000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use rserpool_benches::handlespace::{PolicyChoice, Population};

struct Counting;

/// Which allocator the counting one forwards to: 0 not yet decided, 1 the
/// system's, 2 mimalloc. Decided at the first allocation from
/// `SHARD_MEMORY_ALLOC` (read with `getenv`, which does not allocate), so
/// every block is freed by the allocator that gave it out.
static INNER: AtomicU8 = AtomicU8::new(0);

fn use_mimalloc() -> bool {
    let mut v = INNER.load(Ordering::Relaxed);
    if v == 0 {
        // SAFETY: a NUL-terminated name; the result is only compared.
        let p = unsafe { libc::getenv(c"SHARD_MEMORY_ALLOC".as_ptr()) };
        // SAFETY: `getenv` returns null or a NUL-terminated string.
        let mi = !p.is_null() && unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes() == b"mimalloc";
        v = if mi { 2 } else { 1 };
        INNER.store(v, Ordering::Relaxed);
    }
    v == 2
}

/// The allocator the counting one forwards to.
fn inner() -> &'static dyn GlobalAlloc {
    if use_mimalloc() {
        &mimalloc::MiMalloc
    } else {
        &System
    }
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Live bytes and allocations per size class (class `c`: sizes in
/// `(2^(c-1), 2^c]`).
static CLASS_BYTES: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];
static CLASS_COUNT: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];

/// Allocations of at least `LARGE` bytes: (address, size), 0 = free slot.
const LARGE: usize = 1 << 20;
static LARGE_PTR: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];
static LARGE_SIZE: [AtomicUsize; 256] = [const { AtomicUsize::new(0) }; 256];

fn class(size: usize) -> usize {
    (usize::BITS - size.saturating_sub(1).leading_zeros()) as usize
}

fn track(p: *mut u8, size: usize) {
    if p.is_null() {
        return;
    }
    LIVE.fetch_add(size, Ordering::Relaxed);
    LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
    CLASS_BYTES[class(size)].fetch_add(size, Ordering::Relaxed);
    CLASS_COUNT[class(size)].fetch_add(1, Ordering::Relaxed);
    if size >= LARGE {
        for (ptr, sz) in LARGE_PTR.iter().zip(&LARGE_SIZE) {
            if ptr
                .compare_exchange(0, p as usize, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                sz.store(size, Ordering::Relaxed);
                break;
            }
        }
    }
}

fn untrack(p: *mut u8, size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
    LIVE_COUNT.fetch_sub(1, Ordering::Relaxed);
    CLASS_BYTES[class(size)].fetch_sub(size, Ordering::Relaxed);
    CLASS_COUNT[class(size)].fetch_sub(1, Ordering::Relaxed);
    if size >= LARGE {
        for ptr in &LARGE_PTR {
            if ptr
                .compare_exchange(p as usize, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
    }
}

// SAFETY: forwards to the system allocator or mimalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { inner().alloc(l) };
        track(p, l.size());
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { inner().alloc_zeroed(l) };
        track(p, l.size());
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        untrack(p, l.size());
        // SAFETY: same contract as the caller's.
        unsafe { inner().dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let q = unsafe { inner().realloc(p, l, n) };
        if !q.is_null() {
            untrack(p, l.size());
            track(q, n);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn snapshot() -> ([usize; 64], [usize; 64], Vec<usize>) {
    let bytes = std::array::from_fn(|c| CLASS_BYTES[c].load(Ordering::Relaxed));
    let count = std::array::from_fn(|c| CLASS_COUNT[c].load(Ordering::Relaxed));
    let mut large: Vec<usize> = LARGE_PTR
        .iter()
        .zip(&LARGE_SIZE)
        .filter(|(p, _)| p.load(Ordering::Relaxed) != 0)
        .map(|(_, s)| s.load(Ordering::Relaxed))
        .collect();
    large.sort_unstable_by(|a, b| b.cmp(a));
    (bytes, count, large)
}

/// Measures one pool size in this process and prints the results.
fn child(pes: usize, pool_size: usize) {
    let pop = Population::new(pes, pool_size, PolicyChoice::RoundRobin);
    let (bytes0, count0, large0) = snapshot();
    let (live0, rss0) = (LIVE.load(Ordering::Relaxed), status_bytes("VmRSS"));
    let t = Instant::now();
    let shard = pop.build();
    let took = t.elapsed();
    if use_mimalloc() {
        // Give back what mimalloc keeps cached for reuse, so that its RSS
        // counts what the shard holds (glibc has no such cache to flush).
        // SAFETY: no preconditions.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
    let (live1, rss1, hwm) = (
        LIVE.load(Ordering::Relaxed),
        status_bytes("VmRSS"),
        status_bytes("VmHWM"),
    );
    let (bytes1, count1, large1) = snapshot();
    let per = |b: usize| b as f64 / pes as f64;
    let live = live1 - live0;
    let rss = rss1.saturating_sub(rss0);
    println!(
        "{}, pools of {pool_size:>4}: {:>7} pools, allocator {:>6.1} B/PE ({:.1} MB live), \
         RSS {:>6.1} B/PE ({:.1} MB; peak RSS {:.1} MB), built in {took:.2?}",
        std::env::var("SHARD_MEMORY_LABEL").unwrap_or_default(),
        shard.pool_count(),
        per(live),
        live as f64 / 1e6,
        per(rss),
        rss as f64 / 1e6,
        hwm as f64 / 1e6,
    );
    let mut large = large1.clone();
    for l in &large0 {
        if let Some(i) = large.iter().position(|x| x == l) {
            large.remove(i);
        }
    }
    let large_total: usize = large.iter().sum();
    println!(
        "    allocations >= 1 MiB: {} of them, {:.1} B/PE",
        large.len(),
        per(large_total)
    );
    for l in &large {
        println!("      {:>12} bytes  {:>6.1} B/PE", l, per(*l));
    }
    println!("    smaller allocations by size class:");
    for c in 0..64 {
        let (mut b, mut n) = (
            bytes1[c].wrapping_sub(bytes0[c]),
            count1[c].wrapping_sub(count0[c]),
        );
        if 1usize << c >= LARGE {
            // Subtract the large ones listed above.
            let big: Vec<&usize> = large.iter().filter(|&&l| class(l) == c).collect();
            b = b.wrapping_sub(big.iter().copied().sum::<usize>());
            n = n.wrapping_sub(big.len());
        }
        if n != 0 && b != 0 {
            println!(
                "      {:>9}..{:<9} {:>9} allocations {:>12} bytes  {:>6.1} B/PE",
                (1usize << c) / 2 + 1,
                1usize << c,
                n as isize,
                b as isize,
                per(b)
            );
        }
    }
    drop(shard);
}

/// One allocator setting to measure: its label, the `SHARD_MEMORY_ALLOC`
/// value, and more environment for the child.
type Allocator<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

fn main() {
    let pes: usize = std::env::var("SHARD_MEMORY_PES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if let Some(p) = std::env::var("SHARD_MEMORY_CHILD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        child(pes, p);
        return;
    }
    // `cargo test --benches` runs this as a test: nothing to check there.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("{pes} PEs, one IPv4 address each, Round Robin");
    let exe = std::env::current_exe().expect("own path");
    // (label, SHARD_MEMORY_ALLOC, further environment of the child)
    let allocators: [Allocator<'_>; 3] = [
        ("glibc malloc", "system", &[]),
        ("mimalloc", "mimalloc", &[]),
        (
            "mimalloc, THP off",
            "mimalloc",
            &[("MIMALLOC_ALLOW_THP", "0")],
        ),
    ];
    for (label, alloc, env) in allocators {
        for p in [1, 10, 1000] {
            let status = Command::new(&exe)
                .env("SHARD_MEMORY_CHILD", p.to_string())
                .env("SHARD_MEMORY_PES", pes.to_string())
                .env("SHARD_MEMORY_ALLOC", alloc)
                .env("SHARD_MEMORY_LABEL", label)
                .envs(env.iter().copied())
                .status()
                .expect("run child");
            assert!(status.success(), "{label}, pools of {p}: {status}");
        }
    }
}
