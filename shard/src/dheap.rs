//! An eight-ary min-heap whose sibling groups are cache-line aligned.
//!
//! The children of a node are one group of eight 16-byte entries, 128
//! bytes aligned to 128: one pair of adjacent lines. A binary heap of 1000
//! entries is ten levels deep, and a sift through it reads a new line at
//! each level below the first few; this heap is four levels deep, so a sift
//! reads at most three groups below the root, and the path it will take
//! (the least child at each level) can be prefetched level by level
//! ([`DHeap::min_child`], [`DHeap::children`]).
//!
//! Layout: logical node `k` sits at position `k + 7`, so the root is the last
//! lane of group 0 and the children of node `k` (nodes `8k + 1` to `8k + 8`)
//! are exactly group `k + 1`.

/// Children per node.
const D: usize = 8;
/// Positions before the root (the unused lanes of group 0).
const OFFSET: usize = D - 1;

/// Eight entries on one aligned pair of cache lines.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(128))]
struct Group([u128; D]);

/// The heap (entries compare as plain `u128`s, least first).
#[derive(Debug, Default)]
pub(crate) struct DHeap {
    groups: Vec<Group>,
    len: usize,
}

impl DHeap {
    /// An empty heap with room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            groups: Vec::with_capacity(Self::groups_for(n)),
            len: 0,
        }
    }

    const fn groups_for(n: usize) -> usize {
        if n == 0 { 0 } else { (n + OFFSET).div_ceil(D) }
    }

    /// How many entries it holds.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    fn get(&self, k: usize) -> u128 {
        let p = k + OFFSET;
        self.groups[p / D].0[p % D]
    }

    fn set(&mut self, k: usize, v: u128) {
        let p = k + OFFSET;
        self.groups[p / D].0[p % D] = v;
    }

    /// The least entry.
    pub(crate) fn peek(&self) -> Option<u128> {
        (self.len > 0).then(|| self.get(0))
    }

    /// Adds an entry. Small heaps grow a group at a time, larger ones
    /// double.
    pub(crate) fn push(&mut self, v: u128, small: usize) {
        let need = Self::groups_for(self.len + 1);
        if need > self.groups.len() {
            if self.groups.len() == self.groups.capacity() && self.len < small {
                self.groups.reserve_exact(1);
            }
            self.groups.push(Group::default());
        }
        self.len += 1;
        let mut k = self.len - 1;
        while k > 0 {
            let parent = (k - 1) / D;
            let pv = self.get(parent);
            if pv <= v {
                break;
            }
            self.set(k, pv);
            k = parent;
        }
        self.set(k, v);
    }

    /// Removes and returns the least entry.
    pub(crate) fn pop(&mut self) -> Option<u128> {
        let top = self.peek()?;
        self.len -= 1;
        if self.len > 0 {
            let last = self.get(self.len);
            self.sift_down(0, last);
        }
        if Self::groups_for(self.len) < self.groups.len() {
            self.groups.pop();
        }
        Some(top)
    }

    /// Replaces the least entry with `v` (which goes as deep as it sorts).
    /// Nothing happens to an empty heap.
    pub(crate) fn replace_top(&mut self, v: u128) {
        if self.len > 0 {
            self.sift_down(0, v);
        }
    }

    /// The least child of node `k` and its node number, if it has children.
    pub(crate) fn min_child(&self, k: usize) -> Option<(u128, usize)> {
        let first = D * k + 1;
        if first >= self.len {
            return None;
        }
        let n = (self.len - first).min(D);
        let g = &self.groups.get(k + 1)?.0[..n];
        let mut best = (g[0], 0);
        for (i, &c) in g.iter().enumerate().skip(1) {
            if c < best.0 {
                best = (c, i);
            }
        }
        Some((best.0, first + best.1))
    }

    fn sift_down(&mut self, mut k: usize, v: u128) {
        while let Some((c, at)) = self.min_child(k) {
            if c >= v {
                break;
            }
            self.set(k, c);
            k = at;
        }
        self.set(k, v);
    }

    /// The children of node `k` (up to eight), in no particular order.
    pub(crate) fn children(&self, k: usize) -> &[u128] {
        let first = D * k + 1;
        if first >= self.len {
            return &[];
        }
        let n = (self.len - first).min(D);
        &self.groups[k + 1].0[..n]
    }

    /// The node number of a child returned by [`DHeap::children`]`(k)`.
    pub(crate) const fn child_node(k: usize, i: usize) -> usize {
        D * k + 1 + i
    }

    /// Every entry in heap order (root first).
    pub(crate) fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        (0..self.len).map(|k| self.get(k))
    }

    /// The address of the root (dangling when empty, which a prefetch may
    /// be).
    pub(crate) fn root_ptr(&self) -> *const u8 {
        self.groups.as_ptr().cast::<u8>().wrapping_add(16 * OFFSET)
    }

    /// The address of the group holding the last entry.
    pub(crate) fn last_ptr(&self) -> *const u8 {
        let p = (self.len + OFFSET).saturating_sub(1);
        self.groups.as_ptr().wrapping_add(p / D).cast()
    }

    /// Replaces every entry with `entries` (ascending order is a valid
    /// heap, so they are sorted).
    pub(crate) fn rebuild(&mut self, entries: impl Iterator<Item = u128>) {
        let mut v: Vec<u128> = entries.collect();
        v.sort_unstable();
        self.groups.clear();
        self.groups
            .resize(Self::groups_for(v.len()), Group::default());
        self.len = v.len();
        for (k, e) in v.into_iter().enumerate() {
            self.set(k, e);
        }
    }

    /// Keeps only the entries `keep` approves.
    pub(crate) fn retain(&mut self, keep: impl Fn(u128) -> bool) {
        let v: Vec<u128> = self.iter().filter(|&e| keep(e)).collect();
        self.rebuild(v.into_iter());
        self.groups.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    proptest! {
        /// Pushes, pops and top replacements agree with std's heap, and
        /// every parent stays at most its children.
        #[test]
        fn matches_std_heap(ops in proptest::collection::vec((0u8..4, 0u128..500), 1..400)) {
            let mut d = DHeap::default();
            let mut s = BinaryHeap::new();
            for (op, v) in ops {
                match op {
                    0 | 1 => { d.push(v, 16); s.push(Reverse(v)); }
                    2 => prop_assert_eq!(d.pop(), s.pop().map(|r| r.0)),
                    _ => {
                        d.replace_top(v);
                        if let Some(mut t) = s.peek_mut() { *t = Reverse(v); }
                    }
                }
                prop_assert_eq!(d.len(), s.len());
                prop_assert_eq!(d.peek(), s.peek().map(|r| r.0));
                for k in 0..d.len() {
                    for &c in d.children(k) {
                        prop_assert!(d.get(k) <= c);
                    }
                }
                prop_assert_eq!(d.groups.len(), DHeap::groups_for(d.len()));
            }
        }
    }

    #[test]
    fn children_are_one_aligned_group() {
        let mut d = DHeap::with_capacity(100);
        for v in 0..100 {
            d.push(v, 16);
        }
        assert_eq!(align_of::<Group>(), 128);
        for k in 0..12 {
            let c = d.children(k);
            assert_eq!(c.len(), 8);
            assert_eq!(c.as_ptr() as usize % 128, 0);
            let (m, at) = d.min_child(k).unwrap();
            assert_eq!(d.get(at), m);
            assert_eq!(
                at,
                DHeap::child_node(k, c.iter().position(|&x| x == m).unwrap())
            );
        }
        // The root sits just before its children.
        assert_eq!(d.root_ptr() as usize + 16, d.children(0).as_ptr() as usize);
        // Node 12 has children 97..=99 only.
        assert_eq!(d.children(12).len(), 3);
        assert!(d.children(13).is_empty());
        let mut sorted: Vec<u128> = d.iter().collect();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
