//! The handlespace shard, per operation, at 10^3, 10^5 and 10^6 PEs in pools
//! of 1, 10 and 1000 PEs (one IPv4 address and one association per PE,
//! default configuration: keep-alive every 5 s ± 0.5 s, replication off).
//!
//! For each size, one shard per pool policy (Round Robin; Least Used with
//! Degradation; Randomized Least Used) is built once, untimed, then:
//!
//! * `resolve_3`, `resolve_128`: ASAP_HANDLE_RESOLUTION for a scattered
//!   pool, asking for 3 (or 128, pools of 1000 only) PEs.
//! * `keep_alive` (Round Robin only): time jumps past every PE's keep-alive;
//!   `handle_timeout` until done, draining `poll_transmit`, and every PE's
//!   ack through `handle_keep_alive_ack`. Reported per PE.
//! * `reregister`: a scattered existing PE registers again on its
//!   association (Round Robin: same values; the others: a new load).
//! * `register`: new PEs join scattered existing pools; they are removed
//!   again untimed every `n / 10` registrations, so the shard stays within
//!   10 % of its size.
//! * `deregister`: scattered existing PEs deregister; they register again
//!   untimed every `n / 10`.
//!
//! * `*_batch32` (`resolve_3`, `keep_alive`, `reregister`, `register`,
//!   `deregister`): the same requests handed to the shard 32 at a time
//!   through `Shard::pipelined` with each one's prefetch hint (its pool; for
//!   the requests about one PE, also the PE id and association), as a
//!   registrar core handles the complete messages of one read: the memory
//!   waits of a batch overlap. `keep_alive_batch32` pipelines the acks
//!   (the timer run itself already prefetches ahead).
//!
//! Every timing includes encoding the response into a reused buffer; none
//! includes decoding the request (see the `wire` benchmarks), nor choosing
//! the targets: every operation works through a batch of targets prepared
//! untimed, each with its own copy of its pool's handle, as a registrar
//! reads a request's handle from the message it just received (until
//! 2026-12-08 the requests read it from the table of all pool names, a
//! cache miss per request at 10^5 and 10^6 PEs that a registrar does not
//! have). A keep-alive's ack takes its handle from the keep-alive's bytes.
//! Untimed checks after each batch: every resolution was answered
//! with PEs and the last answer holds as many as the pool can give; no
//! registration was refused; the shard has the expected number of PEs.
//!
//! Time stands still in every benchmark but `keep_alive` (whose rounds
//! move it), so the timer-wheel entries of the registrations made while
//! measuring are never drained; in a registrar they are, in its timer runs.
//!
//! Select sizes with environment variables (comma lists): `SHARD_PES`
//! (default `1000,100000,1000000`), `SHARD_POOLS` (default `1,10,1000`),
//! `SHARD_POLICIES` (default `rr,lud,rlu`). Only one shard exists at a time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main};
use rserpool_benches::handlespace::{PolicyChoice, Population, Req, load_of, scatter};
use rserpool_shard::{Shard, Target, Time};
use rserpool_wire::AsapMessage;

/// A built shard and the state of the requests sent to it.
struct Bench {
    pop: Population,
    shard: Shard,
    now: Time,
    /// Requests so far: drives `scatter`, so successive calls reach new PEs.
    k: u64,
    out: Vec<u8>,
    acks: Vec<Req>,
    /// The requests of one timed batch, with a load for re-registrations,
    /// prepared untimed (their handles copied in, as a read buffer holds
    /// them).
    batch: Vec<(Req, u32)>,
}

impl Bench {
    fn new(pop: Population) -> Self {
        let t = Instant::now();
        let shard = pop.build();
        eprintln!(
            "built {} PEs in {} pools of {} ({}) in {:.2?}",
            pop.pes(),
            pop.pools(),
            pop.pool_size(),
            pop.policy().name(),
            t.elapsed()
        );
        Self {
            pop,
            shard,
            now: Time::ZERO,
            k: 0,
            out: Vec::with_capacity(1 << 16),
            acks: Vec::with_capacity(1 << 16),
            batch: Vec::new(),
        }
    }

    /// Times `op` on each item of the batch: one by one (`group` = `None`),
    /// or through [`Shard::pipelined`] `group` at a time with `target` as
    /// each one's prefetch hint, as a registrar core runs the requests of
    /// one read (the pipeline starts empty for every group).
    fn timed(
        &mut self,
        group: Option<usize>,
        target: for<'a> fn(&'a Req) -> Target<'a>,
        mut op: impl FnMut(&Population, &mut Shard, Time, &(Req, u32), &mut Vec<u8>),
    ) -> Duration {
        let Self {
            pop,
            shard,
            now,
            out,
            batch,
            ..
        } = self;
        let (pop, now) = (&*pop, *now);
        let t = Instant::now();
        match group {
            None => {
                for item in batch.iter() {
                    op(pop, shard, now, item, out);
                }
            }
            Some(g) => {
                for chunk in batch.chunks(g) {
                    shard.pipelined(
                        chunk,
                        pipeline_distance(),
                        |item| Some(target(&item.0)),
                        |s, item| op(pop, s, now, item, out),
                    );
                }
            }
        }
        t.elapsed()
    }

    /// Largest number of PEs added or removed before the shard is restored.
    fn batch_len(&self) -> u64 {
        (self.pop.pes() as u64 / 10).max(1)
    }

    fn resolve(&mut self, iters: u64, items: u32, group: Option<usize>) -> Duration {
        let pools = self.pop.pools();
        let expect = (items as usize).min(self.pop.pool_size());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(CHUNK);
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                self.batch
                    .push((self.pop.req(0, scatter(self.k, pools)), 0));
                self.k += 1;
            }
            let before = self.shard.stats().resolutions;
            total += self.timed(
                group,
                Population::pool_target,
                |p, s, now, (req, _), out| {
                    out.clear();
                    p.resolve(s, now, req, items, out);
                    black_box(&*out);
                },
            );
            assert_eq!(
                self.shard.stats().resolutions - before,
                c,
                "answered with PEs"
            );
            assert_eq!(answered_pes(&self.out), expect, "PEs in the last answer");
        }
        total
    }

    fn reregister(&mut self, iters: u64, group: Option<usize>) -> Duration {
        let n = self.pop.pes();
        let adaptive = self.pop.policy() != PolicyChoice::RoundRobin;
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(CHUNK);
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                let pe = scatter(self.k, n);
                let load = if adaptive { load_of(pe, self.k) } else { 0 };
                self.batch
                    .push((self.pop.req(pe, self.pop.pool_of(pe)), load));
                self.k += 1;
            }
            total += self.timed(group, Population::target, |p, s, now, (req, load), out| {
                out.clear();
                black_box(p.register(s, now, req, *load, out));
            });
            assert_eq!(self.shard.pe_count(), n);
            assert_eq!(self.shard.stats().registrations_rejected, 0);
        }
        total
    }

    fn register(&mut self, iters: u64, group: Option<usize>) -> Duration {
        let (n, pools) = (self.pop.pes(), self.pop.pools());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(self.batch_len());
            left -= c;
            self.batch.clear();
            for i in 0..c as usize {
                self.batch
                    .push((self.pop.req(n + i, scatter(self.k, pools)), 0));
                self.k += 1;
            }
            total += self.timed(group, Population::target, add_pe);
            assert_eq!(self.shard.pe_count(), n + c as usize);
            assert_eq!(self.shard.pool_count(), pools);
            assert_eq!(self.shard.stats().registrations_rejected, 0);
            self.timed(None, Population::target, remove_pe);
            assert_eq!(self.shard.pe_count(), n);
        }
        total
    }

    fn deregister(&mut self, iters: u64, group: Option<usize>) -> Duration {
        let n = self.pop.pes();
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(self.batch_len());
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                let pe = scatter(self.k, n);
                self.batch.push((self.pop.req(pe, self.pop.pool_of(pe)), 0));
                self.k += 1;
            }
            total += self.timed(group, Population::removal_target, remove_pe);
            assert_eq!(self.shard.pe_count(), n - c as usize);
            self.timed(None, Population::target, add_pe);
            assert_eq!(self.shard.pe_count(), n);
        }
        total
    }

    /// Whole keep-alive rounds (every PE once) until `iters` PEs are done;
    /// the time is scaled to `iters` PEs. With `group`, the acks are
    /// pipelined `group` at a time.
    fn keep_alive(&mut self, iters: u64, group: Option<usize>) -> Duration {
        let n = self.pop.pes();
        let mut total = Duration::ZERO;
        let mut done = 0u64;
        let pipeline = group.map(|g| (g, pipeline_distance()));
        while done < iters {
            self.now = self.now + Population::keep_alive_step();
            let t = Instant::now();
            let sent =
                self.pop
                    .keep_alive_round(&mut self.shard, self.now, &mut self.acks, pipeline);
            total += t.elapsed();
            assert_eq!(sent, n, "every PE gets one keep-alive per round");
            assert_eq!(
                self.shard.stats().keep_alive_timeouts,
                0,
                "every ack arrived"
            );
            done += n as u64;
        }
        total.mul_f64(iters as f64 / done as f64)
    }
}

/// PE `req.pe` registers with the request's pool.
fn add_pe(p: &Population, s: &mut Shard, now: Time, (req, _): &(Req, u32), out: &mut Vec<u8>) {
    out.clear();
    black_box(p.register(s, now, req, load_of(req.pe, 0), out));
}

/// PE `req.pe` deregisters from the request's pool.
fn remove_pe(p: &Population, s: &mut Shard, now: Time, (req, _): &(Req, u32), out: &mut Vec<u8>) {
    out.clear();
    p.deregister(s, now, req, out);
    black_box(&*out);
}

/// Requests between prefetch stages in the `_batch` benchmarks
/// (`SHARD_PREFETCH_DISTANCE`, default 1).
fn pipeline_distance() -> usize {
    env_list("SHARD_PREFETCH_DISTANCE", &[1usize])[0]
}

/// Requests per wake-up in the `_batch` benchmarks.
const WAKE_UP_BATCH: usize = 32;

/// Targets prepared per batch for `resolve` and `reregister`.
const CHUNK: u64 = 1024;

/// The number of PEs in a Handle Resolution Response (0 for anything else).
fn answered_pes(m: &[u8]) -> usize {
    match AsapMessage::parse(m) {
        Ok(AsapMessage::HandleResolutionResponse(r)) if r.error.is_none() => r.elements.len(),
        _ => 0,
    }
}

fn env_list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: cannot parse {s:?}"))
            })
            .collect(),
        _ => default.to_vec(),
    }
}

fn size_label(n: usize) -> String {
    let exp = n.ilog10();
    if 10usize.pow(exp) == n {
        format!("1e{exp}")
    } else {
        n.to_string()
    }
}

fn bench_policy(g: &mut BenchmarkGroup<'_, WallTime>, pop: Population) {
    let name = pop.policy().name();
    let (n, p) = (pop.pes(), pop.pool_size());
    let mut b = Bench::new(pop);
    g.sampling_mode(SamplingMode::Auto);
    let batch = format!("batch{WAKE_UP_BATCH}");
    let wake = Some(WAKE_UP_BATCH);
    g.bench_function(format!("{name}/resolve_3"), |c| {
        c.iter_custom(|iters| b.resolve(iters, 3, None));
    });
    g.bench_function(format!("{name}/resolve_3_{batch}"), |c| {
        c.iter_custom(|iters| b.resolve(iters, 3, wake));
    });
    if p >= 1000 {
        g.bench_function(format!("{name}/resolve_128"), |c| {
            c.iter_custom(|iters| b.resolve(iters, 128, None));
        });
    }
    if name == "rr" {
        // A round costs n PEs' worth whatever `iters` is: few, equal samples.
        if n >= 100_000 {
            g.sample_size(10);
        }
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function(format!("{name}/keep_alive"), |c| {
            c.iter_custom(|iters| b.keep_alive(iters, None));
        });
        g.bench_function(format!("{name}/keep_alive_{batch}"), |c| {
            c.iter_custom(|iters| b.keep_alive(iters, wake));
        });
        g.sample_size(100);
        g.sampling_mode(SamplingMode::Auto);
    }
    for group in [None, wake] {
        let suffix = group.map_or(String::new(), |_| format!("_{batch}"));
        g.bench_function(format!("{name}/reregister{suffix}"), |c| {
            c.iter_custom(|iters| b.reregister(iters, group));
        });
        g.bench_function(format!("{name}/register{suffix}"), |c| {
            c.iter_custom(|iters| b.register(iters, group));
        });
        g.bench_function(format!("{name}/deregister{suffix}"), |c| {
            c.iter_custom(|iters| b.deregister(iters, group));
        });
    }
    b.shard
        .check_invariants()
        .expect("consistent after the run");
}

fn benches(c: &mut Criterion) {
    let sizes: Vec<usize> = env_list("SHARD_PES", &[1000, 100_000, 1_000_000]);
    let pool_sizes: Vec<usize> = env_list("SHARD_POOLS", &[1, 10, 1000]);
    let policies: Vec<String> =
        env_list("SHARD_POLICIES", &["rr".into(), "lud".into(), "rlu".into()]);
    for &n in &sizes {
        for &p in pool_sizes.iter().filter(|&&p| p <= n) {
            let mut g = c.benchmark_group(format!("shard/{}/p{p}", size_label(n)));
            for choice in [
                PolicyChoice::RoundRobin,
                PolicyChoice::LeastUsedDegradation,
                PolicyChoice::RandomizedLeastUsed,
            ] {
                if policies.iter().any(|s| s == choice.name()) {
                    // The previous shard was dropped at the end of the last
                    // iteration: one shard in memory at a time.
                    bench_policy(&mut g, Population::new(n, p, choice));
                }
            }
            g.finish();
        }
    }
}

criterion_group!(shard, benches);
criterion_main!(shard);

/// The registrar binary's allocator (`registrar/src/main.rs`), so that the
/// figures are the ones a registrar gets; docs/benchmarks.md ("Allocator")
/// compares it with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
