//! The two selection structures a pool can hold (see [`crate::policy`]).
//!
//! * [`Ordered`]: a binary min-heap of `(key, seq)` with lazy deletion: an
//!   entry whose key or sequence number no longer matches its PE's is stale
//!   and skipped.
//!   Taking the first `n` PEs pops `n` live entries (ascending order) and
//!   pushes them back, the first `max_increment` with their new keys: O(n log
//!   size). Stale entries are swept when they outnumber the live ones.
//! * [`Fenwick`]: a binary indexed tree of weights over the pool's member
//!   slots, so a weighted draw is O(log size); drawn slots are zeroed while a
//!   request draws (no replacement) and restored afterwards.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One heap entry (16 bytes): a PE's key and sequence number when it was
/// pushed, its slab index (24 bits) and the PE's stamp at that time (8
/// bits). It is live while the PE still has that sequence number and stamp;
/// every new entry for a PE changes its stamp, so older ones go stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    pub(crate) key: u64,
    pub(crate) seq: u32,
    tag: u32,
}

impl Entry {
    pub(crate) const fn new(key: u64, seq: u32, idx: u32, stamp: u8) -> Self {
        Self {
            key,
            seq,
            tag: (idx & 0x00ff_ffff) | ((stamp as u32) << 24),
        }
    }

    pub(crate) const fn idx(&self) -> u32 {
        self.tag & 0x00ff_ffff
    }

    pub(crate) const fn stamp(&self) -> u8 {
        (self.tag >> 24) as u8
    }
}

/// Ordered selection: the pool's PEs by ascending `(key, seq)`.
#[derive(Debug, Default)]
pub(crate) struct Ordered {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Ordered {
    /// An empty heap with room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(n),
        }
    }

    pub(crate) fn push(&mut self, e: Entry) {
        if self.heap.len() == self.heap.capacity() && self.heap.len() < crate::store::SMALL_POOL {
            // Most pools are small: grow one by one at first (16-byte
            // entries: cheap to copy), then double from 16.
            self.heap.reserve_exact(1);
        }
        self.heap.push(Reverse(e));
    }

    /// The heap's array: its first entries are the smallest (stale ones
    /// included), which is what a selection will look at first.
    pub(crate) fn head(&self) -> &[Reverse<Entry>] {
        self.heap.as_slice()
    }

    /// Pops live entries in order until `n` are found (or none are left).
    /// The caller pushes them back.
    pub(crate) fn take_first(
        &mut self,
        n: usize,
        live: impl Fn(&Entry) -> bool,
        out: &mut Vec<Entry>,
    ) {
        while out.len() < n {
            let Some(Reverse(e)) = self.heap.pop() else {
                break;
            };
            if live(&e) {
                out.push(e);
            }
        }
    }

    /// The first live entry, dropping stale ones on top.
    pub(crate) fn peek_live(&mut self, live: impl Fn(&Entry) -> bool) -> Option<Entry> {
        while let Some(Reverse(e)) = self.heap.peek() {
            if live(e) {
                return Some(*e);
            }
            self.heap.pop();
        }
        None
    }

    /// Rebuilds without stale entries once they dominate.
    pub(crate) fn maybe_sweep(&mut self, live_count: usize, live: impl Fn(&Entry) -> bool) {
        if self.heap.len() > 2 * live_count + 32 {
            let mut v = std::mem::take(&mut self.heap).into_vec();
            v.retain(|Reverse(e)| live(e));
            self.heap = BinaryHeap::from(v);
        }
    }

    /// Every entry, stale ones included, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.heap.iter().map(|r| r.0)
    }

    /// Rewrites every entry (used when WRR rounds are rebased).
    pub(crate) fn rebuild(&mut self, entries: impl Iterator<Item = Entry>) {
        self.heap = entries.map(Reverse).collect();
    }
}

/// Weighted selection over member slots `0..len`.
#[derive(Debug, Default)]
pub(crate) struct Fenwick {
    /// 1-based tree; `tree[0]` unused.
    tree: Vec<u64>,
    vals: Vec<u64>,
}

const fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    fn prefix(&self, mut i: usize) -> u64 {
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i -= lowbit(i);
        }
        s
    }

    /// Appends a slot with weight `v`.
    pub(crate) fn push(&mut self, v: u64) {
        if self.tree.is_empty() {
            self.tree.push(0);
        }
        let i = self.vals.len() + 1;
        let node = v + self.prefix(i - 1) - self.prefix(i - lowbit(i));
        self.tree.push(node);
        self.vals.push(v);
    }

    /// Removes the last slot.
    pub(crate) fn pop(&mut self) {
        if self.vals.pop().is_some() {
            self.tree.pop();
        }
    }

    pub(crate) fn get(&self, slot: usize) -> u64 {
        self.vals.get(slot).copied().unwrap_or(0)
    }

    pub(crate) fn set(&mut self, slot: usize, v: u64) {
        let Some(old) = self.vals.get_mut(slot) else {
            return;
        };
        let (add, sub) = if v >= *old {
            (v - *old, 0)
        } else {
            (0, *old - v)
        };
        *old = v;
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i] + add - sub;
            i += lowbit(i);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.prefix(self.vals.len())
    }

    /// The slot whose cumulative range contains `r` (`r < total()`).
    pub(crate) fn find(&self, mut r: u64) -> usize {
        let n = self.vals.len();
        let mut pos = 0;
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= r {
                pos = next;
                r -= self.tree[next];
            }
            step >>= 1;
        }
        pos.min(n.saturating_sub(1))
    }

    /// Prefetches the lines a draw starts with (the tree's upper levels
    /// and the first weights), at most a few lines.
    pub(crate) fn prefetch(&self) {
        crate::prefetch::span(self.tree.as_ptr(), (self.tree.len() * 8).min(256));
        crate::prefetch::span(self.vals.as_ptr(), (self.vals.len() * 8).min(128));
    }

    pub(crate) fn len(&self) -> usize {
        self.vals.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fenwick_matches_a_plain_array(ops in proptest::collection::vec((0u8..4, 0usize..40, 0u64..1000), 1..200)) {
            let mut f = Fenwick::default();
            let mut plain: Vec<u64> = Vec::new();
            for (op, i, v) in ops {
                match op {
                    0 => { f.push(v); plain.push(v); }
                    1 => { f.pop(); plain.pop(); }
                    _ if !plain.is_empty() => { let i = i % plain.len(); f.set(i, v); plain[i] = v; }
                    _ => {}
                }
                let total: u64 = plain.iter().sum();
                prop_assert_eq!(f.total(), total);
                prop_assert_eq!(f.len(), plain.len());
                // every r maps to the slot whose range holds it
                let mut acc = 0;
                for (slot, &w) in plain.iter().enumerate() {
                    if w > 0 {
                        prop_assert_eq!(f.find(acc), slot);
                        prop_assert_eq!(f.find(acc + w - 1), slot);
                    }
                    acc += w;
                }
            }
        }
    }

    #[test]
    fn ordered_skips_stale_and_keeps_order() {
        let mut o = Ordered::default();
        for (i, key) in [5u64, 1, 3, 1].into_iter().enumerate() {
            o.push(Entry::new(key, i as u32, i as u32, 0));
        }
        let mut out = Vec::new();
        // idx 1 is stale
        o.take_first(2, |e| e.idx() != 1, &mut out);
        assert_eq!(out.iter().map(Entry::idx).collect::<Vec<_>>(), vec![3, 2]);
    }
}
