//! The pool user's cache of handle resolutions (RFC 5352 section 3.3) and
//! local pool member selection.
//!
//! Each pool's entry is the PE list of the last Handle Resolution Response,
//! fresh for the configured lifetime after it arrived (`now <= fetched +
//! lifetime`, so a lifetime of zero serves exactly the answer being
//! processed). The pool's policy type is the response's top-level Policy
//! parameter (Round Robin when absent, RFC 5352); the per-PE values come
//! from each PE's own Policy parameter. Selection is deliberately simple:
//!
//! | Policy | Selection over the cached PEs |
//! |---|---|
//! | Round Robin, unknown types | in list order, wrapping |
//! | Weighted Round Robin | smooth weighted round robin (each PE `weight` times per cycle, spread out; weight 0 counts as 1) |
//! | Random | uniform |
//! | Weighted Random, WRAND-DPF | probability proportional to weight (all zero: uniform) |
//! | Priority | highest priority; ties in turn |
//! | Least Used, LU-DPF | lowest load; ties in turn |
//! | LUD, LUD-DPF | lowest load plus a local degradation counter, which grows by the PE's load degradation each time it is chosen and restarts with every fresh answer |
//! | PLU, PLUD, RPLU, RPLUD | lowest load + load degradation; ties in turn |
//! | RLU, RLUD | probability proportional to `0xFFFFFFFF - load` |
//!
//! PEs that failed are removed from the entry, and callers can exclude
//! PEs (those already tried during one failover).

use std::collections::HashMap;
use std::time::Duration;

use rserpool_wire::{Policy, PolicyType};

use crate::rng::Rng;
use crate::time::Time;
use crate::types::{PeId, PeInfo, PoolHandleBuf};

#[derive(Debug)]
struct Cached {
    info: PeInfo,
    /// Smooth WRR's current weight.
    current: i64,
    /// LUD's local degradation counter.
    degradation: u64,
}

/// One pool's cached answer and selection state.
#[derive(Debug)]
pub(crate) struct PoolEntry {
    policy: PolicyType,
    pes: Vec<Cached>,
    fetched: Time,
    /// Round-robin position.
    cursor: usize,
}

/// The cache of all pools.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pools: HashMap<PoolHandleBuf, PoolEntry>,
}

fn weight(p: &PeInfo) -> u64 {
    match p.policy {
        Some(Policy::WeightedRoundRobin { weight })
        | Some(Policy::WeightedRandom { weight })
        | Some(Policy::WeightedRandomDpf { weight, .. }) => u64::from(weight),
        _ => 1,
    }
}

fn load(p: &PeInfo) -> u64 {
    p.policy
        .as_ref()
        .and_then(crate::types::load_of)
        .map_or(0, u64::from)
}

fn load_degradation(p: &PeInfo) -> u64 {
    match p.policy {
        Some(
            Policy::LeastUsedDegradation {
                load_degradation, ..
            }
            | Policy::PriorityLeastUsed {
                load_degradation, ..
            }
            | Policy::RandomizedPriorityLeastUsed {
                load_degradation, ..
            }
            | Policy::RandomizedLeastUsedDegradation {
                load_degradation, ..
            }
            | Policy::PriorityLeastUsedDegradation {
                load_degradation, ..
            }
            | Policy::RandomizedPriorityLeastUsedDegradation {
                load_degradation, ..
            }
            | Policy::LeastUsedDegradationDpf {
                load_degradation, ..
            },
        ) => u64::from(load_degradation),
        _ => 0,
    }
}

fn priority(p: &PeInfo) -> u64 {
    match p.policy {
        Some(Policy::Priority { priority }) => u64::from(priority),
        _ => 0,
    }
}

impl Cache {
    /// Stores a fresh answer (replacing the old one and its selection state).
    pub(crate) fn store(
        &mut self,
        now: Time,
        pool: PoolHandleBuf,
        policy: PolicyType,
        pes: Vec<PeInfo>,
    ) {
        let pes = pes
            .into_iter()
            .map(|info| Cached {
                info,
                current: 0,
                degradation: 0,
            })
            .collect();
        self.pools.insert(
            pool,
            PoolEntry {
                policy,
                pes,
                fetched: now,
                cursor: 0,
            },
        );
    }

    /// Whether `pool` has an answer younger than `lifetime`.
    pub(crate) fn is_fresh(&self, now: Time, pool: &PoolHandleBuf, lifetime: Duration) -> bool {
        self.pools
            .get(pool)
            .is_some_and(|e| now <= e.fetched + lifetime)
    }

    /// Forgets `pool`'s answer.
    pub(crate) fn invalidate(&mut self, pool: &PoolHandleBuf) {
        self.pools.remove(pool);
    }

    /// Removes a failed PE.
    pub(crate) fn remove(&mut self, pool: &PoolHandleBuf, id: PeId) {
        if let Some(e) = self.pools.get_mut(pool) {
            if let Some(i) = e.pes.iter().position(|c| c.info.id == id) {
                e.pes.remove(i);
                if e.cursor > i {
                    e.cursor -= 1;
                }
            }
        }
    }

    /// The cached PEs of `pool` (any age).
    pub(crate) fn list(&self, pool: &PoolHandleBuf) -> Vec<PeInfo> {
        self.pools
            .get(pool)
            .map(|e| e.pes.iter().map(|c| c.info.clone()).collect())
            .unwrap_or_default()
    }

    /// Selects a PE of `pool` by its policy, skipping `exclude` (any age:
    /// callers check freshness).
    pub(crate) fn select(
        &mut self,
        pool: &PoolHandleBuf,
        exclude: &[PeId],
        rng: &mut Rng,
    ) -> Option<PeInfo> {
        let e = self.pools.get_mut(pool)?;
        let cand: Vec<usize> = (0..e.pes.len())
            .filter(|&i| !exclude.contains(&e.pes[i].info.id))
            .collect();
        if cand.is_empty() {
            return None;
        }
        let pick = match e.policy {
            PolicyType::WEIGHTED_ROUND_ROBIN => {
                let total: i64 = cand
                    .iter()
                    .map(|&i| weight(&e.pes[i].info).max(1) as i64)
                    .sum();
                let mut best = cand[0];
                for &i in &cand {
                    e.pes[i].current += weight(&e.pes[i].info).max(1) as i64;
                    if e.pes[i].current > e.pes[best].current {
                        best = i;
                    }
                }
                e.pes[best].current -= total;
                best
            }
            PolicyType::RANDOM => cand[rng.below(cand.len() as u64) as usize],
            PolicyType::WEIGHTED_RANDOM | PolicyType::WEIGHTED_RANDOM_DPF => {
                weighted(&cand, |i| weight(&e.pes[i].info), rng)
            }
            PolicyType::RANDOMIZED_LEAST_USED | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => {
                weighted(
                    &cand,
                    |i| u64::from(u32::MAX) - load(&e.pes[i].info) + 1,
                    rng,
                )
            }
            PolicyType::PRIORITY => {
                let best = cand.iter().map(|&i| priority(&e.pes[i].info)).max()?;
                in_turn(e, &cand, |c| priority(&c.info) == best)
            }
            PolicyType::LEAST_USED | PolicyType::LEAST_USED_DPF => {
                let best = cand.iter().map(|&i| load(&e.pes[i].info)).min()?;
                in_turn(e, &cand, |c| load(&c.info) == best)
            }
            PolicyType::LEAST_USED_DEGRADATION | PolicyType::LEAST_USED_DEGRADATION_DPF => {
                let rank = |c: &Cached| load(&c.info) + c.degradation;
                let best = cand.iter().map(|&i| rank(&e.pes[i])).min()?;
                let i = in_turn(e, &cand, |c| rank(c) == best);
                e.pes[i].degradation += load_degradation(&e.pes[i].info);
                i
            }
            PolicyType::PRIORITY_LEAST_USED
            | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => {
                let rank = |c: &Cached| load(&c.info) + load_degradation(&c.info);
                let best = cand.iter().map(|&i| rank(&e.pes[i])).min()?;
                in_turn(e, &cand, |c| rank(c) == best)
            }
            _ => in_turn(e, &cand, |_| true),
        };
        Some(e.pes[pick].info.clone())
    }
}

/// The first candidate at or after the round-robin cursor that `ok` accepts
/// (there is always one); the cursor moves past it.
fn in_turn(e: &mut PoolEntry, cand: &[usize], ok: impl Fn(&Cached) -> bool) -> usize {
    let n = e.pes.len();
    let start = e.cursor % n.max(1);
    let pick = (0..n)
        .map(|k| (start + k) % n)
        .find(|i| cand.contains(i) && ok(&e.pes[*i]))
        .unwrap_or(cand[0]);
    e.cursor = pick + 1;
    pick
}

fn weighted(cand: &[usize], w: impl Fn(usize) -> u64, rng: &mut Rng) -> usize {
    let total: u64 = cand.iter().map(|&i| w(i)).sum();
    if total == 0 {
        return cand[rng.below(cand.len() as u64) as usize];
    }
    let mut x = rng.below(total);
    for &i in cand {
        let wi = w(i);
        if x < wi {
            return i;
        }
        x -= wi;
    }
    cand[cand.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_wire::{ServerId, TransportKind, TransportUse};

    fn pe(id: u32, policy: Policy) -> PeInfo {
        PeInfo {
            id: PeId(id),
            home_server: ServerId(0),
            registration_life: 0,
            transport: TransportKind::Sctp,
            transport_use: TransportUse::DATA_PLUS_CONTROL,
            port: 1,
            addresses: vec!["10.0.0.1".parse().unwrap()],
            policy_type: policy.policy_type(),
            policy: Some(policy),
        }
    }

    fn picks(c: &mut Cache, pool: &PoolHandleBuf, n: usize, rng: &mut Rng) -> Vec<u32> {
        (0..n)
            .map(|_| c.select(pool, &[], rng).unwrap().id.0)
            .collect()
    }

    fn setup(policy: PolicyType, pes: Vec<PeInfo>) -> (Cache, PoolHandleBuf) {
        let mut c = Cache::default();
        let p = PoolHandleBuf::new("p").unwrap();
        c.store(Time::ZERO, p.clone(), policy, pes);
        (c, p)
    }

    #[test]
    fn round_robin_wraps_and_skips_removed_and_excluded() {
        let rr = Policy::RoundRobin {};
        let (mut c, p) = setup(
            PolicyType::ROUND_ROBIN,
            vec![pe(1, rr), pe(2, rr), pe(3, rr)],
        );
        let mut rng = Rng::new(1);
        assert_eq!(picks(&mut c, &p, 4, &mut rng), vec![1, 2, 3, 1]);
        c.remove(&p, PeId(2));
        assert_eq!(picks(&mut c, &p, 3, &mut rng), vec![3, 1, 3]);
        assert_eq!(c.select(&p, &[PeId(1)], &mut rng).unwrap().id, PeId(3));
        assert_eq!(c.select(&p, &[PeId(1), PeId(3)], &mut rng), None);
    }

    #[test]
    fn weighted_round_robin_is_proportional_and_spread() {
        let (mut c, p) = setup(
            PolicyType::WEIGHTED_ROUND_ROBIN,
            vec![
                pe(1, Policy::WeightedRoundRobin { weight: 1 }),
                pe(2, Policy::WeightedRoundRobin { weight: 3 }),
            ],
        );
        let v = picks(&mut c, &p, 8, &mut Rng::new(1));
        assert_eq!(v.iter().filter(|&&x| x == 2).count(), 6);
        assert_eq!(v[..4].iter().filter(|&&x| x == 1).count(), 1, "{v:?}");
    }

    #[test]
    fn weighted_random_follows_weights() {
        let (mut c, p) = setup(
            PolicyType::WEIGHTED_RANDOM,
            vec![
                pe(1, Policy::WeightedRandom { weight: 1 }),
                pe(2, Policy::WeightedRandom { weight: 9 }),
                pe(3, Policy::WeightedRandom { weight: 0 }),
            ],
        );
        let v = picks(&mut c, &p, 1000, &mut Rng::new(7));
        let twos = v.iter().filter(|&&x| x == 2).count();
        assert!((850..=950).contains(&twos), "{twos}");
        assert!(!v.contains(&3));
    }

    #[test]
    fn priority_and_least_used_pick_the_best_in_turn() {
        let (mut c, p) = setup(
            PolicyType::PRIORITY,
            vec![
                pe(1, Policy::Priority { priority: 1 }),
                pe(2, Policy::Priority { priority: 5 }),
                pe(3, Policy::Priority { priority: 5 }),
            ],
        );
        assert_eq!(picks(&mut c, &p, 3, &mut Rng::new(1)), vec![2, 3, 2]);
        let (mut c, p) = setup(
            PolicyType::LEAST_USED,
            vec![
                pe(1, Policy::LeastUsed { load: 9 }),
                pe(2, Policy::LeastUsed { load: 2 }),
            ],
        );
        assert_eq!(picks(&mut c, &p, 2, &mut Rng::new(1)), vec![2, 2]);
    }

    #[test]
    fn least_used_with_degradation_moves_on_as_the_counter_grows() {
        let d = |load| Policy::LeastUsedDegradation {
            load,
            load_degradation: 10,
        };
        let (mut c, p) = setup(
            PolicyType::LEAST_USED_DEGRADATION,
            vec![pe(1, d(0)), pe(2, d(15))],
        );
        // 1 (0), 1 (10), 2 (15 < 20), 1 (20 < 25) ...
        assert_eq!(picks(&mut c, &p, 4, &mut Rng::new(1)), vec![1, 1, 2, 1]);
    }

    #[test]
    fn freshness_follows_the_lifetime() {
        let (c, p) = setup(PolicyType::ROUND_ROBIN, vec![]);
        let life = Duration::from_millis(100);
        assert!(c.is_fresh(Time::from_millis(100), &p, life));
        assert!(!c.is_fresh(Time::from_millis(101), &p, life));
        assert!(c.is_fresh(Time::ZERO, &p, Duration::ZERO));
        assert!(!c.is_fresh(Time(1), &p, Duration::ZERO));
    }
}
