//! A registrar core (`rserpool_registrar::core::Core`) taking the
//! handle resolutions of one read: 32 ASAP_HANDLE_RESOLUTION frames for
//! scattered pools, parsed, routed, answered and queued for the connection,
//! one by one (`Core::handle_asap`, `plain`) and as one batch with the local
//! shard's memory prefetched ahead (`Core::handle_asap_many`, `many`, prefetch
//! distance 1, and unlike the registrar also below its `PREFETCH_MIN_PES`,
//! to show what the stages cost there). Reported per message. One shard,
//! Round Robin, one IPv4 address per PE.
//!
//! Sizes: `CORE_PES` (comma list, default `1000,1000000`) and `CORE_POOLS`
//! (PEs per pool, default `1,10`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rserpool_benches::handlespace::{PolicyChoice, Population, scatter};
use rserpool_registrar::core::{ConnMeta, Core, CoreLimits, LocalOut};
use rserpool_shard::Time;
use rserpool_wire::asap::HandleResolution;
use rserpool_wire::{AsapMessage, Encode, HandleResolutionOption, TransportKind};

/// Frames handed over at a time (the registrar's batch).
const BATCH: usize = 32;
/// Distinct prepared frames (cycled through).
const FRAMES: usize = 1 << 14;

/// Counts what the core delivers, keeping the last answer.
#[derive(Default)]
struct Sink {
    answers: u64,
    last: Vec<u8>,
}

impl LocalOut for Sink {
    fn deliver(&mut self, _assoc: u64, msg: &[u8]) {
        self.answers += 1;
        self.last.clear();
        self.last.extend_from_slice(msg);
    }
    fn abort(&mut self, _assoc: u64) {}
}

fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn bench(c: &mut Criterion) {
    for pes in sizes("CORE_PES", "1000,1000000") {
        for pool_size in sizes("CORE_POOLS", "1,10") {
            let pop = Population::new(pes, pool_size, PolicyChoice::RoundRobin);
            let shard = pop.build();
            let limits = CoreLimits {
                max_hr_rate: None,
                max_eu_rate: None,
                prefetch_distance: 1,
                prefetch_min_pes: 0,
            };
            let mut core = Core::new(0, 1, 2, Some(shard), None, limits, Default::default());
            let frames: Vec<Vec<u8>> = (0..FRAMES as u64)
                .map(|k| {
                    AsapMessage::HandleResolution(HandleResolution {
                        subscribe: false,
                        pool_handle: pop.handle(scatter(k, pop.pools())),
                        option: Some(HandleResolutionOption { items: 3 }),
                    })
                    .to_vec()
                    .expect("encodes")
                })
                .collect();
            let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            let mut conn = ConnMeta::new(1, TransportKind::Tcp, Vec::new(), 1);
            let mut g = c.benchmark_group(format!("core/{pes}_pes/pools_of_{pool_size}"));
            g.throughput(Throughput::Elements(BATCH as u64));
            for many in [false, true] {
                let mut sink = Sink::default();
                let mut at = 0;
                g.bench_function(
                    if many {
                        "hr_batch32_many"
                    } else {
                        "hr_batch32_plain"
                    },
                    |b| {
                        b.iter(|| {
                            let batch = &refs[at..at + BATCH];
                            at = (at + BATCH) % FRAMES;
                            if many {
                                core.handle_asap_many(Time::ZERO, &mut conn, batch, &mut sink);
                            } else {
                                for m in batch {
                                    core.handle_asap(Time::ZERO, &mut conn, m, &mut sink);
                                }
                            }
                        });
                    },
                );
                // Answered, and with as many PEs as the pool can give.
                assert!(sink.answers > 0);
                let Ok(AsapMessage::HandleResolutionResponse(r)) = AsapMessage::parse(&sink.last)
                else {
                    panic!("the last answer is not a handle resolution response")
                };
                assert!(r.error.is_none(), "the last resolution was refused");
                assert_eq!(r.elements.iter().count(), pool_size.min(3));
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// The registrar binary's allocator (`registrar/src/main.rs`), so that the
/// figures are the ones a registrar gets; docs/benchmarks.md ("Allocator")
/// compares it with glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
