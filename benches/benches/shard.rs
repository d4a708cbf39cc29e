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
//! Every timing includes encoding the response into a reused buffer; none
//! includes decoding the request (see the `wire` benchmarks), nor choosing
//! the targets: every operation works through a batch of targets prepared
//! untimed. Untimed checks after each batch: every resolution was answered
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
use rserpool_benches::handlespace::{PolicyChoice, Population, load_of, scatter};
use rserpool_shard::{Shard, Time};
use rserpool_wire::AsapMessage;

/// A built shard and the state of the requests sent to it.
struct Bench {
    pop: Population,
    shard: Shard,
    now: Time,
    /// Requests so far: drives `scatter`, so successive calls reach new PEs.
    k: u64,
    out: Vec<u8>,
    acks: Vec<u64>,
    batch: Vec<(usize, usize)>,
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

    /// Largest number of PEs added or removed before the shard is restored.
    fn batch_len(&self) -> u64 {
        (self.pop.pes() as u64 / 10).max(1)
    }

    fn resolve(&mut self, iters: u64, items: u32) -> Duration {
        let pools = self.pop.pools();
        let expect = (items as usize).min(self.pop.pool_size());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(CHUNK);
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                self.batch.push((scatter(self.k, pools), 0));
                self.k += 1;
            }
            let before = self.shard.stats().resolutions;
            let t = Instant::now();
            for &(pool, _) in &self.batch {
                self.out.clear();
                self.pop
                    .resolve(&mut self.shard, self.now, pool, items, &mut self.out);
                black_box(&self.out);
            }
            total += t.elapsed();
            assert_eq!(
                self.shard.stats().resolutions - before,
                c,
                "answered with PEs"
            );
            assert_eq!(answered_pes(&self.out), expect, "PEs in the last answer");
        }
        total
    }

    /// As `resolve`, but requests are handed to the shard in batches of
    /// `batch` through [`Shard::pipelined`], as a registrar core does with
    /// the requests of one wake-up: the prefetches of each request overlap
    /// the work on the ones before it. The pipeline starts empty for every
    /// batch.
    fn resolve_pipelined(&mut self, iters: u64, items: u32, batch: usize) -> Duration {
        let pools = self.pop.pools();
        let expect = (items as usize).min(self.pop.pool_size());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(CHUNK);
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                self.batch.push((scatter(self.k, pools), 0));
                self.k += 1;
            }
            let before = self.shard.stats().resolutions;
            let (pop, out, now) = (&self.pop, &mut self.out, self.now);
            let t = Instant::now();
            for group in self.batch.chunks(batch) {
                self.shard.pipelined(
                    group,
                    pipeline_distance(),
                    |&(pool, _)| Some(pop.handle(pool).as_bytes()),
                    |shard, &(pool, _)| {
                        out.clear();
                        pop.resolve(shard, now, pool, items, out);
                        black_box(&*out);
                    },
                );
            }
            total += t.elapsed();
            assert_eq!(
                self.shard.stats().resolutions - before,
                c,
                "answered with PEs"
            );
            assert_eq!(answered_pes(&self.out), expect, "PEs in the last answer");
        }
        total
    }

    fn reregister(&mut self, iters: u64) -> Duration {
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
                self.batch.push((pe, load as usize));
                self.k += 1;
            }
            let t = Instant::now();
            for &(pe, load) in &self.batch {
                self.out.clear();
                black_box(self.pop.register(
                    &mut self.shard,
                    self.now,
                    pe,
                    self.pop.pool_of(pe),
                    load as u32,
                    &mut self.out,
                ));
            }
            total += t.elapsed();
            assert_eq!(self.shard.pe_count(), n);
            assert_eq!(self.shard.stats().registrations_rejected, 0);
        }
        total
    }

    fn register(&mut self, iters: u64) -> Duration {
        let (n, pools) = (self.pop.pes(), self.pop.pools());
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(self.batch_len());
            left -= c;
            self.batch.clear();
            for i in 0..c as usize {
                self.batch.push((n + i, scatter(self.k, pools)));
                self.k += 1;
            }
            let t = Instant::now();
            for &(pe, pool) in &self.batch {
                self.out.clear();
                black_box(self.pop.register(
                    &mut self.shard,
                    self.now,
                    pe,
                    pool,
                    load_of(pe, 0),
                    &mut self.out,
                ));
            }
            total += t.elapsed();
            assert_eq!(self.shard.pe_count(), n + c as usize);
            assert_eq!(self.shard.pool_count(), pools);
            assert_eq!(self.shard.stats().registrations_rejected, 0);
            for &(pe, pool) in &self.batch {
                self.out.clear();
                self.pop
                    .deregister(&mut self.shard, self.now, pe, pool, &mut self.out);
            }
            assert_eq!(self.shard.pe_count(), n);
        }
        total
    }

    fn deregister(&mut self, iters: u64) -> Duration {
        let n = self.pop.pes();
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let c = left.min(self.batch_len());
            left -= c;
            self.batch.clear();
            for _ in 0..c {
                let pe = scatter(self.k, n);
                self.batch.push((pe, self.pop.pool_of(pe)));
                self.k += 1;
            }
            let t = Instant::now();
            for &(pe, pool) in &self.batch {
                self.out.clear();
                self.pop
                    .deregister(&mut self.shard, self.now, pe, pool, &mut self.out);
                black_box(&self.out);
            }
            total += t.elapsed();
            assert_eq!(self.shard.pe_count(), n - c as usize);
            for &(pe, pool) in &self.batch {
                self.out.clear();
                self.pop.register(
                    &mut self.shard,
                    self.now,
                    pe,
                    pool,
                    load_of(pe, 0),
                    &mut self.out,
                );
            }
            assert_eq!(self.shard.pe_count(), n);
        }
        total
    }

    /// Whole keep-alive rounds (every PE once) until `iters` PEs are done;
    /// the time is scaled to `iters` PEs.
    fn keep_alive(&mut self, iters: u64) -> Duration {
        let n = self.pop.pes();
        let mut total = Duration::ZERO;
        let mut done = 0u64;
        while done < iters {
            self.now = self.now + Population::keep_alive_step();
            let t = Instant::now();
            let sent = self
                .pop
                .keep_alive_round(&mut self.shard, self.now, &mut self.acks);
            total += t.elapsed();
            assert_eq!(sent, n, "every PE gets one keep-alive per round");
            done += n as u64;
        }
        total.mul_f64(iters as f64 / done as f64)
    }
}

/// Requests between prefetch stages in `resolve_pipelined`
/// (`SHARD_PREFETCH_DISTANCE`, default 1).
fn pipeline_distance() -> usize {
    env_list("SHARD_PREFETCH_DISTANCE", &[1usize])[0]
}

/// Requests per wake-up in `resolve_pipelined`.
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
    g.bench_function(format!("{name}/resolve_3"), |c| {
        c.iter_custom(|iters| b.resolve(iters, 3));
    });
    g.bench_function(format!("{name}/resolve_3_batch{WAKE_UP_BATCH}"), |c| {
        c.iter_custom(|iters| b.resolve_pipelined(iters, 3, WAKE_UP_BATCH));
    });
    if p >= 1000 {
        g.bench_function(format!("{name}/resolve_128"), |c| {
            c.iter_custom(|iters| b.resolve(iters, 128));
        });
    }
    if name == "rr" {
        // A round costs n PEs' worth whatever `iters` is: few, equal samples.
        if n >= 100_000 {
            g.sample_size(10);
        }
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function(format!("{name}/keep_alive"), |c| {
            c.iter_custom(|iters| b.keep_alive(iters));
        });
        g.sample_size(100);
        g.sampling_mode(SamplingMode::Auto);
    }
    g.bench_function(format!("{name}/reregister"), |c| {
        c.iter_custom(|iters| b.reregister(iters));
    });
    g.bench_function(format!("{name}/register"), |c| {
        c.iter_custom(|iters| b.register(iters));
    });
    g.bench_function(format!("{name}/deregister"), |c| {
        c.iter_custom(|iters| b.deregister(iters));
    });
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
