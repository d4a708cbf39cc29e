//! Selection sequences per policy.
//!
//! The `rsplib_*` tests reproduce, in `Compat::Rsplib` mode, the sequences
//! that Debian's RSPLIB 3.4.4 library produced for the same registrations and
//! requests (docs/rsplib-behaviour.md §2.6). The `rfc_*` tests give the
//! sequences of the default mode, which follows RFC 5356 where RSPLIB does not.

mod common;
use common::*;
use rserpool_shard::{Compat, Time};
use rserpool_wire::Policy;

fn rsplib() -> rserpool_shard::Shard {
    shard(|c| c.selection = Compat::Rsplib)
}

fn reg_all(s: &mut rserpool_shard::Shard, pool: &str, pes: &[(u32, Policy)]) {
    for &(id, p) in pes {
        let (o, out) = register(s, Time::ZERO, pool, id, p);
        assert!(
            !matches!(o, rserpool_shard::RegistrationOutcome::Rejected(_)),
            "{:?}",
            reg_cause(&out)
        );
    }
}

fn answers(s: &mut rserpool_shard::Shard, pool: &str, items: u32, times: usize) -> Vec<Vec<u32>> {
    (0..times).map(|_| resolve(s, pool, items)).collect()
}

const RR: Policy = Policy::RoundRobin {};

#[test]
fn rsplib_round_robin() {
    let mut s = rsplib();
    reg_all(&mut s, "p", &[(3, RR), (1, RR), (2, RR)]);
    assert_eq!(answers(&mut s, "p", 1, 5), [[3], [1], [2], [3], [1]]);
    assert_eq!(
        answers(&mut s, "p", 3, 4),
        [[2, 3, 1], [3, 1, 2], [1, 2, 3], [2, 3, 1]]
    );
    assert_eq!(answers(&mut s, "p", 2, 3), [[3, 1], [1, 2], [2, 3]]);
}

#[test]
fn rsplib_round_robin_max_increment_3() {
    let mut s = shard(|c| {
        c.selection = Compat::Rsplib;
        c.max_increment = 3;
    });
    reg_all(&mut s, "p", &[(3, RR), (1, RR), (2, RR)]);
    assert_eq!(answers(&mut s, "p", 2, 3), [[3, 1], [2, 3], [1, 2]]);
}

#[test]
fn round_robin_reregistration_keeps_place_and_newcomer_goes_last() {
    for mode in [Compat::Rfc, Compat::Rsplib] {
        let mut s = shard(|c| c.selection = mode);
        reg_all(&mut s, "p", &[(1, RR), (2, RR), (3, RR)]);
        assert_eq!(resolve(&mut s, "p", 1), [1]);
        // PE 1 went to the back (seq 3) before PE 4 arrived (seq 4).
        reg_all(&mut s, "p", &[(2, RR), (4, RR)]);
        assert_eq!(answers(&mut s, "p", 1, 5), [[2], [3], [1], [4], [2]]);
    }
}

fn wrr(weight: u32) -> Policy {
    Policy::WeightedRoundRobin { weight }
}

#[test]
fn rsplib_weighted_round_robin() {
    let mut s = rsplib();
    reg_all(&mut s, "p", &[(1, wrr(1)), (2, wrr(2)), (3, wrr(3))]);
    let seq: Vec<u32> = answers(&mut s, "p", 1, 12).concat();
    assert_eq!(seq, [1, 2, 3, 2, 3, 3, 1, 2, 3, 2, 3, 3]);

    let mut s = rsplib();
    reg_all(&mut s, "p", &[(1, wrr(1)), (2, wrr(2)), (3, wrr(3))]);
    assert_eq!(
        answers(&mut s, "p", 3, 8),
        [
            [1, 2, 3],
            [2, 3, 1],
            [3, 2, 1],
            [2, 3, 1],
            [3, 1, 2],
            [3, 1, 2],
            [1, 2, 3],
            [2, 3, 1]
        ]
    );

    let mut s = rsplib();
    reg_all(&mut s, "p", &[(1, wrr(4)), (2, wrr(1))]);
    assert_eq!(
        answers(&mut s, "p", 1, 10).concat(),
        [1, 1, 2, 1, 1, 1, 1, 2, 1, 1]
    );

    let mut s = rsplib();
    reg_all(&mut s, "p", &[(1, wrr(5)), (2, wrr(2))]);
    assert_eq!(
        answers(&mut s, "p", 1, 14).concat(),
        [2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 1, 1, 1]
    );
}

#[test]
fn rfc_weighted_round_robin_gives_each_pe_its_weight_per_round() {
    let mut s = shard(|_| {});
    reg_all(&mut s, "p", &[(1, wrr(1)), (2, wrr(2)), (3, wrr(3))]);
    let seq: Vec<u32> = answers(&mut s, "p", 1, 12).concat();
    assert_eq!(seq, [1, 2, 2, 3, 3, 3, 1, 2, 2, 3, 3, 3]);
}

fn prio(priority: u32) -> Policy {
    Policy::Priority { priority }
}

#[test]
fn priority_highest_first_equal_ones_rotate() {
    for mode in [Compat::Rfc, Compat::Rsplib] {
        let mut s = shard(|c| c.selection = mode);
        reg_all(
            &mut s,
            "p",
            &[(1, prio(5)), (2, prio(1)), (3, prio(5)), (4, prio(9))],
        );
        assert_eq!(answers(&mut s, "p", 1, 3), [[4], [4], [4]]);
        assert_eq!(answers(&mut s, "p", 3, 2), [[4, 1, 3], [4, 1, 3]]);

        let mut s = shard(|c| c.selection = mode);
        reg_all(&mut s, "q", &[(1, prio(9)), (2, prio(9)), (3, prio(1))]);
        assert_eq!(answers(&mut s, "q", 1, 4), [[1], [2], [1], [2]]);
        assert_eq!(
            answers(&mut s, "q", 3, 3),
            [[1, 2, 3], [2, 1, 3], [1, 2, 3]]
        );
    }
}

fn lu(load: u32) -> Policy {
    Policy::LeastUsed { load }
}

#[test]
fn least_used_lowest_first_equal_ones_rotate() {
    for mode in [Compat::Rfc, Compat::Rsplib] {
        let mut s = shard(|c| c.selection = mode);
        reg_all(
            &mut s,
            "p",
            &[(1, lu(100)), (2, lu(50)), (3, lu(100)), (4, lu(50))],
        );
        assert_eq!(answers(&mut s, "p", 1, 5), [[2], [4], [2], [4], [2]]);
        assert_eq!(
            answers(&mut s, "p", 3, 3),
            [[4, 2, 1], [2, 4, 1], [4, 2, 1]]
        );
        reg_all(&mut s, "p", &[(1, lu(10))]);
        assert_eq!(resolve(&mut s, "p", 4), [1, 2, 4, 3]);
    }
}

fn lud(load: u32, load_degradation: u32) -> Policy {
    Policy::LeastUsedDegradation {
        load,
        load_degradation,
    }
}

#[test]
fn rsplib_least_used_with_degradation() {
    let mut s = rsplib();
    reg_all(
        &mut s,
        "p",
        &[(1, lud(100, 30)), (2, lud(120, 10)), (3, lud(150, 5))],
    );
    assert_eq!(
        answers(&mut s, "p", 3, 6),
        [
            [1, 2, 3],
            [2, 3, 1],
            [2, 3, 1],
            [3, 2, 1],
            [3, 2, 1],
            [2, 3, 1]
        ]
    );
}

#[test]
fn rfc_least_used_with_degradation_counts_once_per_selection() {
    // Keys start at the loads: 100, 120, 150. Each first-placed PE gains its
    // degradation once: PE1 100 -> 130 -> 160, PE2 120 -> 130 -> 140 ...
    let mut s = shard(|_| {});
    reg_all(
        &mut s,
        "p",
        &[(1, lud(100, 30)), (2, lud(120, 10)), (3, lud(150, 5))],
    );
    assert_eq!(answers(&mut s, "p", 1, 6).concat(), [1, 2, 1, 2, 2, 3]);
    // A re-registration resets the degradation.
    reg_all(&mut s, "p", &[(1, lud(100, 30))]);
    assert_eq!(resolve(&mut s, "p", 1), [1]);
}

#[test]
fn priority_least_used_static_penalty() {
    let plu = |load, load_degradation| Policy::PriorityLeastUsed {
        load,
        load_degradation,
    };
    let mut s = shard(|_| {});
    reg_all(
        &mut s,
        "p",
        &[(1, plu(100, 30)), (2, plu(110, 10)), (3, plu(120, 0))],
    );
    assert_eq!(answers(&mut s, "p", 1, 5).concat(), [2, 3, 2, 3, 2]);
}

#[test]
fn dpf_least_used_adds_distance_penalty() {
    // key = load + distance * load_dpf: PE1 100 + 10*5 = 150, PE2 120 + 0 = 120.
    let ludpf = |load, load_dpf, distance| Policy::LeastUsedDpf {
        load,
        load_dpf,
        distance,
    };
    let mut s = shard(|_| {});
    reg_all(
        &mut s,
        "p",
        &[(1, ludpf(100, 5, 10)), (2, ludpf(120, 5, 0))],
    );
    assert_eq!(resolve(&mut s, "p", 2), [2, 1]);
}

/// Draws `n` answers of `items` PEs (checking that no PE repeats in one)
/// and returns how often each PE came at position `at`.
fn counts_at(
    s: &mut rserpool_shard::Shard,
    pool: &str,
    items: u32,
    n: usize,
    at: usize,
) -> std::collections::BTreeMap<u32, usize> {
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        let a = resolve(s, pool, items);
        let mut uniq = a.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), a.len(), "a PE repeated in one answer: {a:?}");
        *m.entry(a[at]).or_default() += 1;
    }
    m
}

/// How often each PE came first in `n` answers of `items` PEs.
fn first_counts(
    s: &mut rserpool_shard::Shard,
    pool: &str,
    items: u32,
    n: usize,
) -> std::collections::BTreeMap<u32, usize> {
    counts_at(s, pool, items, n, 0)
}

#[test]
fn weighted_random_is_proportional_without_replacement() {
    let wrand = |weight| Policy::WeightedRandom { weight };
    let mut s = shard(|_| {});
    reg_all(
        &mut s,
        "p",
        &[(1, wrand(1)), (2, wrand(2)), (3, wrand(5)), (4, wrand(0))],
    );
    let n = 40_000;
    let c = first_counts(&mut s, "p", 3, n);
    let share = |id| c.get(&id).copied().unwrap_or(0) as f64 / n as f64;
    // Expected 1/8, 2/8, 5/8; 4 sigma of a binomial at n = 40000 is < 0.01.
    assert!((share(1) - 0.125).abs() < 0.01, "{c:?}");
    assert!((share(2) - 0.25).abs() < 0.01, "{c:?}");
    assert!((share(3) - 0.625).abs() < 0.01, "{c:?}");
    assert_eq!(share(4), 0.0, "weight 0 is never chosen");
    // Only 3 PEs have weight: a request for 4 gets 3.
    assert_eq!(resolve(&mut s, "p", 4).len(), 3);
}

#[test]
fn weighted_random_draws_the_rest_from_what_is_left() {
    // Without replacement, the second PE of weights 1, 2, 5 is PE 1 with
    // probability 2/8 * 1/6 + 5/8 * 1/3 = 0.25, PE 2 with 1/8 * 2/7 +
    // 5/8 * 2/3 = 0.452, PE 3 with 0.298 (with replacement and a retry on
    // repeats it would be the same; a draw that ignored the first pick's
    // removal would give 1/8, 2/8, 5/8).
    let wrand = |weight| Policy::WeightedRandom { weight };
    let mut s = shard(|_| {});
    reg_all(&mut s, "p", &[(1, wrand(1)), (2, wrand(2)), (3, wrand(5))]);
    let n = 40_000;
    let c = counts_at(&mut s, "p", 2, n, 1);
    let share = |id| c.get(&id).copied().unwrap_or(0) as f64 / n as f64;
    assert!((share(1) - 0.25).abs() < 0.01, "{c:?}");
    assert!((share(2) - 0.4524).abs() < 0.01, "{c:?}");
    assert!((share(3) - 0.2976).abs() < 0.01, "{c:?}");
    // One PE with almost all the weight: it comes first, and the others
    // still fill the answer, each second half of the time.
    reg_all(
        &mut s,
        "h",
        &[(1, wrand(u32::MAX)), (2, wrand(1)), (3, wrand(1))],
    );
    let c = counts_at(&mut s, "h", 3, 10_000, 1);
    assert_eq!(c.values().sum::<usize>(), 10_000);
    assert!((c[&2] as f64 / 10_000.0 - 0.5).abs() < 0.03, "{c:?}");
    assert!(!c.contains_key(&1), "{c:?}");
    for _ in 0..100 {
        let mut a = resolve(&mut s, "h", 3);
        assert_eq!(a[0], 1);
        a.sort_unstable();
        assert_eq!(a, [1, 2, 3]);
    }
}

#[test]
fn random_is_uniform_and_randomized_least_used_prefers_low_load() {
    let mut s = shard(|_| {});
    reg_all(
        &mut s,
        "r",
        &[
            (1, Policy::Random {}),
            (2, Policy::Random {}),
            (3, Policy::Random {}),
            (4, Policy::Random {}),
        ],
    );
    let c = first_counts(&mut s, "r", 2, 20_000);
    for id in 1..=4 {
        assert!((c[&id] as f64 / 20_000.0 - 0.25).abs() < 0.015, "{c:?}");
    }
    // RLU: weight = 0xFFFFFFFF - load. Loads 0 and 3/4 of max: shares 4/5, 1/5.
    let rlu = |load| Policy::RandomizedLeastUsed { load };
    reg_all(&mut s, "l", &[(10, rlu(0)), (11, rlu(0xc000_0000))]);
    let c = first_counts(&mut s, "l", 1, 20_000);
    assert!((c[&10] as f64 / 20_000.0 - 0.8).abs() < 0.015, "{c:?}");
}

#[test]
fn item_count_default_option_and_cap() {
    let mut s = shard(|_| {});
    for id in 1..=200 {
        register(&mut s, Time::ZERO, "big", id, RR);
    }
    assert_eq!(resolve(&mut s, "big", 0).len(), 3, "0 means the default");
    assert_eq!(resolve(&mut s, "big", 7).len(), 7);
    assert_eq!(resolve(&mut s, "big", 500).len(), 128);
    assert_eq!(resolve(&mut s, "big", u32::MAX).len(), 128);
}
