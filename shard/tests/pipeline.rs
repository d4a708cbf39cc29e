//! Prefetching is a hint: a batch run through `Shard::pipelined` gives,
//! byte for byte, the answers of the same batch run plainly, and leaves the
//! shard in the same state. Checked on twin shards with every policy
//! family, pools of 1 to 40 PEs, unknown pools and registrations and
//! deregistrations mixed into the batch (they change pools that later
//! prefetches in the same batch look at).

mod common;
use common::*;
use proptest::prelude::*;
use rserpool_shard::{Shard, Target, Time};
use rserpool_wire::asap::{Deregistration, HandleResolution};
use rserpool_wire::{HandleResolutionOption, PeId, Policy, PoolHandle, ServerId};

#[derive(Clone, Debug)]
enum Op {
    Resolve(usize, u32),
    Register(usize, u32),
    Deregister(usize, u32),
}

fn pool_name(p: usize) -> String {
    format!("pool-{p}")
}

fn policy_of(p: usize) -> Policy {
    match p % 4 {
        0 => Policy::RoundRobin {},
        1 => Policy::LeastUsed { load: 100 },
        2 => Policy::WeightedRandom { weight: 3 },
        _ => Policy::RandomizedLeastUsed { load: 7 },
    }
}

fn build(sizes: &[usize]) -> Shard {
    let mut s = shard(|_| {});
    let mut id = 1;
    for (p, &n) in sizes.iter().enumerate() {
        for _ in 0..n {
            register(&mut s, Time::ZERO, &pool_name(p), id, policy_of(p));
            id += 1;
        }
    }
    s
}

fn run(s: &mut Shard, op: &Op, out: &mut Vec<u8>) {
    out.clear();
    match *op {
        Op::Resolve(p, items) => {
            let name = pool_name(p);
            let hr = HandleResolution {
                subscribe: false,
                pool_handle: PoolHandle::new(name.as_bytes()).unwrap(),
                option: Some(HandleResolutionOption { items }),
            };
            s.handle_resolution(Time::ZERO, &hr, out);
        }
        Op::Register(p, id) => {
            let (_, bytes) = register(s, Time::ZERO, &pool_name(p), 10_000 + id, policy_of(p));
            out.extend_from_slice(&bytes);
        }
        Op::Deregister(p, id) => {
            let name = pool_name(p);
            let d = Deregistration {
                pool_handle: PoolHandle::new(name.as_bytes()).unwrap(),
                pe_id: PeId(id),
            };
            let a = assoc_addrs(id);
            s.handle_deregistration(Time::ZERO, &assoc(id, &a), &d, out);
        }
    }
}

/// What a registrar would tell the prefetch stages about `op` (the PE id
/// and association peeked from the message, and whether it removes the
/// PE), or with `wrong`, a hint that names another PE and association and
/// says the opposite about removal: hints never change answers.
fn target_of<'a>(op: &Op, names: &'a [String], wrong: bool) -> Target<'a> {
    let skew = if wrong { 7 } else { 0 };
    match *op {
        Op::Resolve(p, _) => Target::pool(names[p].as_bytes()),
        Op::Register(p, id) => {
            let (h, pe, a) = (
                names[p].as_bytes(),
                10_000 + id + skew,
                u64::from(10_000 + id),
            );
            if wrong {
                Target::removal(h, pe, a)
            } else {
                Target::pe(h, pe, a)
            }
        }
        Op::Deregister(p, id) => {
            let (h, pe, a) = (names[p].as_bytes(), id + skew, u64::from(id + skew));
            if wrong {
                Target::pe(h, pe, a)
            } else {
                Target::removal(h, pe, a)
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn pipelined_batches_answer_exactly_as_plain_ones(
        sizes in proptest::collection::vec(1usize..40, 1..12),
        ops in proptest::collection::vec(
            prop_oneof![
                6 => (0usize..14, 1u32..5).prop_map(|(p, n)| Op::Resolve(p, n)),
                1 => (0usize..14, 0u32..50).prop_map(|(p, id)| Op::Register(p, id)),
                1 => (0usize..14, 1u32..200).prop_map(|(p, id)| Op::Deregister(p, id)),
            ],
            1..120),
        distance in 0usize..6,
        batch in 1usize..40,
        wrong_every in 0usize..5,
    ) {
        let names: Vec<String> = (0..14).map(pool_name).collect();
        // Every `wrong_every`-th hint names the wrong PE (0: none does).
        let items: Vec<(usize, &Op)> = ops.iter().enumerate().collect();
        let mut plain = build(&sizes);
        let mut piped = build(&sizes);
        let mut out = Vec::new();
        let mut want = Vec::new();
        for op in &ops {
            run(&mut plain, op, &mut out);
            want.push(out.clone());
        }
        let mut got = Vec::new();
        for group in items.chunks(batch) {
            let target = |&(i, op): &(usize, &Op)| {
                Some(target_of(op, &names, wrong_every != 0 && i % wrong_every == 0))
            };
            piped.pipelined(group, distance, target, |s, &(_, op)| {
                run(s, op, &mut out);
                got.push(out.clone());
            });
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(plain.pe_count(), piped.pe_count());
        prop_assert_eq!(plain.checksum(ME), piped.checksum(ME));
        prop_assert_eq!(plain.checksum(ServerId(0)), piped.checksum(ServerId(0)));
        piped.check_invariants().map_err(TestCaseError::fail)?;
    }
}

#[test]
fn single_prefetch_stages_are_harmless_on_any_handle() {
    let mut s = build(&[1, 5, 30]);
    for stage in 0..Shard::PREFETCH_STAGES + 2 {
        for h in ["pool-0", "pool-1", "pool-2", "nope", ""] {
            s.prefetch(Target::pool(h.as_bytes()), stage);
            for pe in [1, 2, 36, 99, u32::MAX] {
                s.prefetch(Target::pe(h.as_bytes(), pe, u64::from(pe)), stage);
                s.prefetch(Target::removal(h.as_bytes(), pe, u64::from(pe)), stage);
            }
        }
    }
    assert_eq!(resolve(&mut s, "pool-2", 3).len(), 3);
    s.check_invariants().unwrap();
}
