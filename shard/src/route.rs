//! Which shard owns a pool: a pure, stable function of the pool handle.
//!
//! Stable means the same on every machine, build and run (xxh3 with a fixed
//! seed, not a randomly keyed hasher), so a pool's shard can be predicted in
//! tests and tooling. The hash is mapped to `0..shards` with a multiply-shift
//! (no modulo bias worth mentioning, no division).

use xxhash_rust::xxh3::xxh3_64;

/// The shard (in `0..shards`) that owns the pool `handle`. `shards` of 0 is
/// treated as 1.
pub fn shard_for(handle: &[u8], shards: usize) -> usize {
    if shards <= 1 {
        // What the mapping below gives for one shard, without the hash.
        return 0;
    }
    let n = shards as u128;
    ((u128::from(xxh3_64(handle)) * n) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_never_change() {
        // Pinned so that a dependency update cannot silently move pools.
        let got: Vec<usize> = [&b"EchoPool"[..], b"CalcAppPool", b"PingPongPool", b"x"]
            .iter()
            .map(|h| shard_for(h, 16))
            .collect();
        assert_eq!(got, KNOWN);
    }
    const KNOWN: [usize; 4] = [3, 10, 6, 14];

    proptest! {
        #[test]
        fn in_range_and_deterministic(h in proptest::collection::vec(any::<u8>(), 1..=32), n in 1usize..256) {
            let s = shard_for(&h, n);
            prop_assert!(s < n);
            prop_assert_eq!(s, shard_for(&h, n));
        }
    }

    #[test]
    fn spread_is_even() {
        // 64k sequential handles over 2, 7 and 64 shards: every shard within
        // 5 standard deviations of the mean, and a chi-square statistic
        // within 6 standard deviations of its expectation (n - 1).
        for n in [2usize, 7, 64] {
            let mut counts = vec![0u32; n];
            for i in 0..65_536u32 {
                counts[shard_for(format!("pool-{i}").as_bytes(), n)] += 1;
            }
            let mean = 65_536.0 / n as f64;
            let chi2: f64 = counts
                .iter()
                .map(|&c| (f64::from(c) - mean).powi(2) / mean)
                .sum();
            let dof = (n - 1) as f64;
            assert!(chi2 < dof + 6.0 * (2.0 * dof).sqrt(), "n={n} chi2={chi2}");
            for c in counts {
                assert!(
                    (f64::from(c) - mean).abs() < 5.0 * mean.sqrt(),
                    "n={n} count={c} mean={mean}"
                );
            }
        }
    }
}
