//! Weighted selection over member slots `0..len`: a sixteen-ary tree of
//! sums over 32-bit weights.
//!
//! Sixteen weights are one 64-byte line, sixteen sums two adjacent lines;
//! a draw walks from the top level (at most sixteen sums) down one group
//! per level to its slot, and changing a weight adds to the sums on the
//! same path, whose lines the draw just read. In a pool of 1000, the walk
//! is three groups (the top one and the level below it can be prefetched
//! whole: 4 + 63 sums), where a binary indexed tree took ten scattered
//! words for a draw and another ten for its update. Pools of up to sixteen
//! are one line of weights and no sums.

use rand::Rng;

use crate::select::Entry;

/// Fan-out of every level.
const W: usize = 16;

/// The most slots a tree with no sums has (one line of weights).
pub(crate) const FLAT: usize = W;

/// How many draws of the next selection are decided in advance.
pub(crate) const AHEAD: usize = 3;

/// The weights and the sums above them.
#[derive(Debug, Default)]
pub(crate) struct Weights {
    /// Slot weights.
    vals: Vec<u32>,
    /// `sums[0][g]` is the sum of weights `16g..16g+16`, `sums[i][g]` the
    /// sum of `sums[i - 1][16g..16g+16]`; the last level has at most
    /// sixteen entries (none at all for up to sixteen slots).
    sums: Vec<Vec<u64>>,
    total: u64,
    /// Uniform random numbers for the first draws of the pool's next
    /// selection, taken from the shard's generator at the end of the one
    /// before (none before the first): the prefetch stages of a request can
    /// then see which PEs it will draw ([`Weights::foresee`]), as they see
    /// the head of an ordered pool.
    ahead: Option<[u64; AHEAD]>,
}

/// `u` (uniform over all 64-bit values) scaled to `0..total`: uniform up to
/// a relative error of `total / 2^64` (below 2^-20 for any pool).
pub(crate) const fn scale(u: u64, total: u64) -> u64 {
    ((u as u128 * total as u128) >> 64) as u64
}

/// The weight stored for `v` (weights are at most `0xFFFF_FFFF`).
fn narrow(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl Weights {
    /// How many slots.
    pub(crate) fn len(&self) -> usize {
        self.vals.len()
    }

    /// The weight of `slot` (0 past the end).
    pub(crate) fn get(&self, slot: usize) -> u64 {
        self.vals.get(slot).map_or(0, |&v| u64::from(v))
    }

    /// The sum of all weights.
    pub(crate) const fn total(&self) -> u64 {
        self.total
    }

    /// Appends a slot with weight `v`.
    pub(crate) fn push(&mut self, v: u64) {
        let v = narrow(v);
        self.vals.push(v);
        self.total += u64::from(v);
        let mut below = self.vals.len();
        let mut slot = below - 1;
        let mut level = 0;
        // Each level needs ceil(below / 16) sums while `below` is over 16.
        while below > W {
            let g = slot / W;
            if level == self.sums.len() {
                // A new top level: it sums what is already below.
                let sums = self.level_sums(level);
                self.sums.push(sums);
            } else if g == self.sums[level].len() {
                self.sums[level].push(u64::from(v));
            } else {
                self.sums[level][g] += u64::from(v);
            }
            below = self.sums[level].len();
            slot = g;
            level += 1;
        }
    }

    /// The sums of level `level` computed from the one below it.
    fn level_sums(&self, level: usize) -> Vec<u64> {
        if level == 0 {
            self.vals
                .chunks(W)
                .map(|c| c.iter().map(|&x| u64::from(x)).sum())
                .collect()
        } else {
            self.sums[level - 1]
                .chunks(W)
                .map(|c| c.iter().sum())
                .collect()
        }
    }

    /// Removes the last slot.
    pub(crate) fn pop(&mut self) {
        let Some(v) = self.vals.pop() else { return };
        let v = u64::from(v);
        self.total -= v;
        let mut below = self.vals.len();
        let mut slot = below;
        for level in 0..self.sums.len() {
            let g = slot / W;
            self.sums[level][g] -= v;
            let need = below.div_ceil(W);
            self.sums[level].truncate(need);
            below = need;
            slot = g;
        }
        // Levels over sixteen entries or fewer are dropped from the top.
        while let Some(level) = self.sums.len().checked_sub(1) {
            let below = if level == 0 {
                self.vals.len()
            } else {
                self.sums[level - 1].len()
            };
            if below > W {
                break;
            }
            self.sums.pop();
        }
    }

    /// Sets the weight of `slot` (nothing past the end).
    pub(crate) fn set(&mut self, slot: usize, v: u64) {
        let Some(old) = self.vals.get_mut(slot) else {
            return;
        };
        let (old_v, new_v) = (u64::from(*old), u64::from(narrow(v)));
        *old = narrow(v);
        self.total = self.total - old_v + new_v;
        let mut g = slot;
        for level in &mut self.sums {
            g /= W;
            level[g] = level[g] - old_v + new_v;
        }
    }

    /// The slot whose cumulative range holds `r` (`r < total()`; a larger
    /// `r` gives the last slot with a weight, or 0).
    pub(crate) fn find(&self, mut r: u64) -> usize {
        let g = self.leaf_group(&mut r);
        let end = self.vals.len().min(W * g + W);
        match self.vals.get(W * g..end) {
            Some(group) if !group.is_empty() => pick(group, &mut r, W * g, |&x| u64::from(x)),
            _ => 0,
        }
    }

    /// Walks the sums from the top: the group of weights (16 slots from
    /// `16 * g`) whose range holds `r`, and `r` made relative to it.
    fn leaf_group(&self, r: &mut u64) -> usize {
        // The top level is one group; each pick names a group below.
        let mut g = 0;
        for level in self.sums.iter().rev() {
            g = pick(&level[W * g..level.len().min(W * g + W)], r, W * g, |&x| x);
        }
        g
    }

    /// Draws `want` distinct slots (fewer if fewer have a weight), each in
    /// turn with probability proportional to its weight among those not
    /// drawn yet, and appends (weight as key, slot as index) to `drawn`.
    /// The draws are over all the weights, drawing again when a slot comes
    /// up twice (which is exactly a draw from the rest), so that the first
    /// ones can be decided in advance ([`Weights::ahead`], from which they
    /// are taken; new ones are decided at the end). After a few repeats in
    /// a row (one slot holds most of the weight), the drawn slots' weights
    /// are zeroed and the rest is drawn from what is left. Returns whether
    /// that happened: then the caller must give every drawn slot a weight
    /// again.
    pub(crate) fn draw(&mut self, want: usize, rng: &mut impl Rng, drawn: &mut Vec<Entry>) -> bool {
        const REPEATS: usize = 4;
        let total = self.total;
        let mut zeroed = false;
        let mut ahead = self.ahead.unwrap_or_else(|| rng.random()).into_iter();
        let is_new = |drawn: &[Entry], s: usize| !drawn.iter().any(|e| e.idx() as usize == s);
        while drawn.len() < want && total > 0 {
            let fresh = if zeroed {
                None
            } else {
                (0..REPEATS)
                    .map(|_| match ahead.next() {
                        Some(u) => self.find(scale(u, total)),
                        None => self.find(rng.random_range(0..total)),
                    })
                    .find(|&s| is_new(drawn, s))
            };
            let slot = match fresh {
                Some(s) => s,
                None => {
                    if !zeroed {
                        for e in drawn.iter() {
                            self.set(e.idx() as usize, 0);
                        }
                        zeroed = true;
                    }
                    if self.total == 0 {
                        break;
                    }
                    self.find(rng.random_range(0..self.total))
                }
            };
            drawn.push(Entry::new(self.get(slot), 0, slot as u32, 0));
            if zeroed {
                self.set(slot, 0);
            }
        }
        self.ahead = Some(rng.random());
        zeroed
    }

    /// The random numbers decided for the next selection's first draws.
    pub(crate) const fn ahead(&self) -> Option<[u64; AHEAD]> {
        self.ahead
    }

    /// Whether the pool is small enough ([`FLAT`]) to have no sums.
    pub(crate) fn flat(&self) -> bool {
        self.sums.is_empty()
    }

    /// Prefetches the line of weights that a draw of `r` ends in, walking
    /// the sums only (which [`Weights::prefetch`] asked for).
    pub(crate) fn prefetch_leaf(&self, mut r: u64) {
        let g = self.leaf_group(&mut r);
        if let Some(group) = self.vals.get(W * g..) {
            crate::prefetch::line(group.as_ptr());
        }
    }

    /// The slots the next selection's first draws will take if nothing
    /// changes before it (the draws redraw a slot that comes up twice, so
    /// each is a draw over all the weights); returns how many of `out` it
    /// filled (none if nothing was decided).
    pub(crate) fn foresee(&self, out: &mut [usize; AHEAD]) -> usize {
        let Some(ahead) = self.ahead.filter(|_| self.total > 0) else {
            return 0;
        };
        for (o, u) in out.iter_mut().zip(ahead) {
            *o = self.find(scale(u, self.total));
        }
        AHEAD.min(self.vals.len())
    }

    /// Prefetches the lines a draw starts with: the top level, the level
    /// below it (at most 256 sums, 2 KiB), and for a pool with no sums its
    /// line of weights.
    pub(crate) fn prefetch(&self) {
        match self.sums.len() {
            0 => crate::prefetch::span(self.vals.as_ptr(), 4 * self.vals.len()),
            n => {
                for level in &self.sums[n.saturating_sub(2)..] {
                    crate::prefetch::span(level.as_ptr(), 8 * level.len());
                }
            }
        }
    }
}

/// Within one group (starting at index `base` of its level), the index
/// whose range holds `r`; `r` becomes the offset within it. Past the end,
/// the last non-empty entry.
fn pick<T>(group: &[T], r: &mut u64, base: usize, val: impl Fn(&T) -> u64) -> usize {
    let mut last = 0;
    for (i, x) in group.iter().enumerate() {
        let v = val(x);
        if *r < v {
            return base + i;
        }
        if v > 0 {
            last = i;
        }
        *r -= v;
    }
    base + last
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(w: &Weights, plain: &[u64]) -> Result<(), TestCaseError> {
        let total: u64 = plain.iter().sum();
        prop_assert_eq!(w.total(), total);
        prop_assert_eq!(w.len(), plain.len());
        // The sums agree with a recomputation, level by level.
        for level in 0..w.sums.len() {
            prop_assert_eq!(&w.sums[level], &w.level_sums(level));
        }
        let top = w.sums.last().map_or(plain.len(), Vec::len);
        prop_assert!(top <= W);
        // Every r maps to the slot whose range holds it.
        let mut acc = 0;
        for (slot, &v) in plain.iter().enumerate() {
            if v > 0 {
                prop_assert_eq!(w.find(acc), slot);
                prop_assert_eq!(w.find(acc + v - 1), slot);
                prop_assert_eq!(w.get(slot), v);
            }
            acc += v;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn weights_match_a_plain_array(
            ops in proptest::collection::vec((0u8..5, 0usize..1000, 0u64..1000), 1..200),
            start in 0usize..700,
        ) {
            let mut w = Weights::default();
            let mut plain: Vec<u64> = Vec::new();
            for i in 0..start {
                let v = (i as u64 * 7919) % 1000;
                w.push(v);
                plain.push(v);
            }
            check(&w, &plain)?;
            for (op, i, v) in ops {
                match op {
                    0 | 1 => { w.push(v); plain.push(v); }
                    2 => { w.pop(); plain.pop(); }
                    _ if !plain.is_empty() => { let i = i % plain.len(); w.set(i, v); plain[i] = v; }
                    _ => {}
                }
                check(&w, &plain)?;
            }
        }
    }

    #[test]
    fn full_weights_do_not_overflow() {
        let mut w = Weights::default();
        for _ in 0..300 {
            w.push(u64::from(u32::MAX));
        }
        assert_eq!(w.total(), 300 * u64::from(u32::MAX));
        assert_eq!(w.find(w.total() - 1), 299);
        assert_eq!(w.find(u64::from(u32::MAX)), 1);
        w.set(1, 0);
        assert_eq!(w.find(u64::from(u32::MAX)), 2);
    }
}
