//! Memory per PE, from a counting allocator (deterministic: no timing).
//!
//! 100,000 PEs with one IPv4 address each, round robin, in pools of 1, 10 and
//! 1000. Guards the layout against regressions; the 10^6 figures are in the
//! `shard_memory` benchmark and docs/benchmarks.md.

mod common;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;
use rserpool_shard::Time;
use rserpool_wire::Policy;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn bytes_per_pe(pool_size: u32, n: u32) -> f64 {
    let before = LIVE.load(Ordering::Relaxed);
    let mut s = shard(|c| c.replicate = false);
    for i in 1..=n {
        register(
            &mut s,
            Time::ZERO,
            &format!("pool-{}", i / pool_size),
            i,
            Policy::RoundRobin {},
        );
    }
    assert_eq!(s.pe_count(), n as usize);
    let used = LIVE.load(Ordering::Relaxed) - before;
    drop(s);
    used as f64 / f64::from(n)
}

#[test]
fn bytes_per_pe_stay_within_budget() {
    let n = 100_000;
    let (one, ten, thousand) = (
        bytes_per_pe(1, n),
        bytes_per_pe(10, n),
        bytes_per_pe(1000, n),
    );
    eprintln!(
        "bytes per PE at {n} PEs: pools of 1: {one:.1}, of 10: {ten:.1}, of 1000: {thousand:.1}"
    );
    // The goal is 200 (at 10^6, met: 198.8 for pools of one, see
    // docs/benchmarks.md); the bounds guard today's layout (177.9, 187.6
    // and 214.5 at this size, where the slabs' last 16384-record chunks are
    // still mostly empty) with about 3 % to spare.
    assert!(thousand <= 183.0, "{thousand}");
    assert!(ten <= 193.0, "{ten}");
    // A pool per PE carries a pool record (40 bytes) each.
    assert!(one <= 221.0, "{one}");
}
