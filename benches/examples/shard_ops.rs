//! Runs one kind of shard operation many times on a built population, for
//! counting instructions and cache misses per operation with callgrind
//! (the `shard` benchmark gives the times; this says where they go):
//!
//! ```sh
//! cargo build --profile bench -p rserpool-benches --example shard_ops
//! valgrind --tool=callgrind --cache-sim=yes --collect-atstart=no \
//!   --toggle-collect='*shard_ops::run*' \
//!   target/release/examples/shard_ops OP PES POOL_SIZE [POLICY] [COUNT]
//! ```
//!
//! `OP` is `resolve_3`, `reregister`, `register`, `deregister` or
//! `keep_alive`, done as the benchmark of that name does it (same fixtures,
//! same scattered targets); `POLICY` is `rr` (default), `lud` or `rlu`;
//! `COUNT` operations (default 10000; for `keep_alive`, rounds in which
//! every PE gets a keep-alive and acks it). With `BATCH=n` in the
//! environment the operations go through `Shard::pipelined` `n` at a time
//! (distance 1), as the benchmark's `*_batch32` do with 32. Only `run` is
//! counted: building the population and choosing the targets are not. `register` adds `COUNT` new PEs and
//! `deregister` removes `COUNT` existing ones, at most `PES` / 10 (the
//! benchmark's batch).

use std::hint::black_box;

use rserpool_benches::handlespace::{PolicyChoice, Population, Req, load_of, scatter};
use rserpool_shard::{Shard, Time};

#[derive(Clone, Copy)]
enum Op {
    Resolve3,
    Reregister,
    Register,
    Deregister,
    KeepAlive,
}

/// One operation on target (request, load).
fn one(pop: &Population, s: &mut Shard, op: Op, t: &(Req, u32), out: &mut Vec<u8>) {
    let (req, load) = t;
    out.clear();
    match op {
        Op::Resolve3 => pop.resolve(s, Time::ZERO, req, 3, out),
        Op::Reregister | Op::Register => {
            black_box(pop.register(s, Time::ZERO, req, *load, out));
        }
        Op::Deregister => pop.deregister(s, Time::ZERO, req, out),
        Op::KeepAlive => {}
    }
    black_box(&out);
}

/// The measured part: `targets` are (request, load); `batch`: how many go
/// through the prefetch pipeline at a time (0: one by one).
#[inline(never)]
fn run(pop: &Population, s: &mut Shard, op: Op, targets: &[(Req, u32)], batch: usize) {
    let mut out = Vec::with_capacity(1 << 16);
    if let Op::KeepAlive = op {
        let mut acks = Vec::new();
        let mut now = Time::ZERO;
        let pipeline = (batch > 0).then_some((batch, 1));
        for _ in targets {
            now = now + Population::keep_alive_step();
            black_box(pop.keep_alive_round(s, now, &mut acks, pipeline));
        }
        return;
    }
    if batch == 0 {
        for t in targets {
            one(pop, s, op, t, &mut out);
        }
        return;
    }
    for chunk in targets.chunks(batch) {
        s.pipelined(
            chunk,
            1,
            |(req, _)| {
                Some(match op {
                    Op::Resolve3 => Population::pool_target(req),
                    Op::Deregister => Population::removal_target(req),
                    _ => Population::target(req),
                })
            },
            |s, t| one(pop, s, op, t, &mut out),
        );
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: shard_ops resolve_3|reregister|register|deregister|keep_alive PES POOL_SIZE [rr|lud|rlu] [COUNT]";
    let op = match a.first().map(String::as_str) {
        Some("resolve_3") => Op::Resolve3,
        Some("reregister") => Op::Reregister,
        Some("register") => Op::Register,
        Some("deregister") => Op::Deregister,
        Some("keep_alive") => Op::KeepAlive,
        _ => panic!("{usage}"),
    };
    let num = |i: usize, d: usize| a.get(i).map_or(d, |v| v.parse().expect(usage));
    let (pes, pool_size) = (num(1, 1000), num(2, 10));
    let policy = match a.get(3).map_or("rr", String::as_str) {
        "rr" => PolicyChoice::RoundRobin,
        "lud" => PolicyChoice::LeastUsedDegradation,
        "rlu" => PolicyChoice::RandomizedLeastUsed,
        _ => panic!("{usage}"),
    };
    let count = num(4, 10_000);
    assert!(
        matches!(op, Op::Resolve3 | Op::Reregister | Op::KeepAlive) || count <= pes / 10,
        "register and deregister: COUNT at most PES / 10, as in the benchmark"
    );
    let pop = Population::new(pes, pool_size, policy);
    let mut s = pop.build();
    let adaptive = policy != PolicyChoice::RoundRobin;
    let targets: Vec<(Req, u32)> = (0..count as u64)
        .map(|k| match op {
            Op::Resolve3 => (pop.req(0, scatter(k, pop.pools())), 0),
            Op::Reregister => {
                let pe = scatter(k, pes);
                let load = if adaptive { load_of(pe, k) } else { 0 };
                (pop.req(pe, pop.pool_of(pe)), load)
            }
            Op::Register => {
                let pe = pes + k as usize;
                (pop.req(pe, scatter(k, pop.pools())), load_of(pe, 0))
            }
            Op::Deregister => {
                let pe = scatter(k, pes);
                (pop.req(pe, pop.pool_of(pe)), 0)
            }
            Op::KeepAlive => (pop.req(0, 0), 0),
        })
        .collect();
    let batch = std::env::var("BATCH").map_or(0, |b| b.parse().expect("BATCH: a number"));
    run(&pop, &mut s, op, &targets, batch);
    let expect = match op {
        Op::Register => pes + count,
        Op::Deregister => pes - count,
        _ => pes,
    };
    assert_eq!(s.pe_count(), expect);
    assert_eq!(s.stats().registrations_rejected, 0);
    assert_eq!(s.stats().keep_alive_timeouts, 0);
    if let Op::KeepAlive = op {
        assert_eq!(s.stats().keep_alives_sent, (pes * count) as u64);
    }
    eprintln!("{count} operations done on {pes} PEs in pools of {pool_size}");
}

/// The registrar binary's allocator (`registrar/src/main.rs`), so that the
/// figures are the ones a registrar gets; docs/benchmarks.md ("Allocator")
/// compares it with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
