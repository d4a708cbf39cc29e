//! Resolving allocates nothing: a counting global allocator watches
//! thousands of handle resolutions (ordered and weighted policies, 3 and 128
//! PEs per answer, unknown pools) after one warm-up request per pool.

mod common;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use rserpool_shard::Time;
use rserpool_wire::asap::HandleResolution;
use rserpool_wire::{HandleResolutionOption, Policy, PoolHandle};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn handle_resolution_does_not_allocate() {
    let mut s = shard(|_| {});
    let pools: [(&str, Policy); 4] = [
        ("rr", Policy::RoundRobin {}),
        (
            "lud",
            Policy::LeastUsedDegradation {
                load: 5,
                load_degradation: 1,
            },
        ),
        ("wrand", Policy::WeightedRandom { weight: 3 }),
        ("wrr", Policy::WeightedRoundRobin { weight: 2 }),
    ];
    for (name, p) in pools {
        for id in 1..=200 {
            register(&mut s, Time::ZERO, name, id, p);
        }
    }
    let hr = |name: &'static str, items| HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(name.as_bytes()).unwrap(),
        option: Some(HandleResolutionOption { items }),
    };
    let mut out = Vec::with_capacity(1 << 20);
    // Warm-up: scratch buffers reach their working size.
    for (name, _) in pools {
        s.handle_resolution(Time::ZERO, &hr(name, 128), &mut out);
    }
    out.clear();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for round in 0..2_000 {
        for (name, _) in pools {
            s.handle_resolution(
                Time::ZERO,
                &hr(name, if round % 2 == 0 { 3 } else { 128 }),
                &mut out,
            );
        }
        s.handle_resolution(Time::ZERO, &hr("unknown", 3), &mut out);
        out.clear();
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations during 10,000 resolutions");
    // The answers were real: the last one decodes to 3 PEs.
    s.handle_resolution(Time::ZERO, &hr("rr", 3), &mut out);
    assert_eq!(resolve(&mut s, "rr", 3).len(), 3);
}
