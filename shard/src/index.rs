//! [`PoolIndex`]: pools by handle, as an open-addressing table whose slot
//! for a handle is known from its hash alone, so that the slot can be
//! prefetched before it is read (see [`crate::prefetch`]). The same table
//! also indexes PEs by (pool, PE id) and association lists by association
//! id: it holds any 24-bit slab index under a caller's hash.
//!
//! Each slot is one `u32`: the top 8 bits of the key's hash (a tag that
//! rules out most non-matching slots without touching the pool) and the
//! pool's 24-bit slab index, or [`EMPTY`] / [`GONE`] (a tombstone). Linear
//! probing keeps a probe sequence inside one or two cache lines (16 slots a
//! line). The table is rebuilt, without tombstones, when live entries and
//! tombstones together would pass three quarters of it, and doubles in that
//! rebuild if the live entries alone pass half: the live load stays between
//! 3/8 and 3/4.
//!
//! At 10^6 pools this is 2^21 slots of 4 bytes (8 MiB), against 10.5 MiB
//! for a `hashbrown` table of `u32` (one control byte more per slot); the
//! same holds for the PE and association indexes at 10^6 PEs.

/// A slot that was never used: ends a probe sequence.
const EMPTY: u32 = u32::MAX;
/// A slot whose entry was removed: probes go on past it.
const GONE: u32 = u32::MAX - 1;
/// The index bits of a slot.
const IDX: u32 = 0x00ff_ffff;
/// Slots of a new table.
const MIN_SLOTS: usize = 16;

/// Largest pool index a slot can hold (24 bits, minus the two markers'
/// index values).
pub(crate) const MAX_INDEX: u32 = IDX - 2;

fn tag(hash: u64) -> u32 {
    ((hash >> 56) as u32) << 24
}

/// Pools by the hash of their handle. The table holds no keys: the caller
/// compares candidates (`eq`) and rehashes entries on growth (`hash_of`).
#[derive(Debug, Default)]
pub(crate) struct PoolIndex {
    slots: Vec<u32>,
    live: usize,
    gone: usize,
}

impl PoolIndex {
    /// Live entries.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a probe for `hash` starts at (for prefetching; `None` while
    /// the table is empty).
    pub(crate) fn home(&self, hash: u64) -> Option<&u32> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots.get(hash as usize & self.mask())
    }

    /// Pool indexes whose tag matches `hash`, in probe order, up to the
    /// first empty slot.
    pub(crate) fn candidates(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let start = hash as usize & mask;
        let t = tag(hash);
        let n = if self.slots.is_empty() {
            0
        } else {
            self.slots.len()
        };
        (0..n)
            .map(move |k| self.slots[(start + k) & mask])
            .take_while(|&s| s != EMPTY)
            .filter(move |&s| s != GONE && s & !IDX == t)
            .map(|s| s & IDX)
    }

    /// The pool for `hash` that `eq` accepts.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.candidates(hash).find(|&i| eq(i))
    }

    /// Adds `idx` (not present) under `hash`; `hash_of` gives the hash of
    /// any indexed pool, for a rebuild.
    pub(crate) fn insert(&mut self, hash: u64, idx: u32, hash_of: impl Fn(u32) -> u64) {
        debug_assert!(idx <= MAX_INDEX);
        if (self.live + self.gone + 1) * 4 > self.slots.len() * 3 {
            let want = if (self.live + 1) * 2 > self.slots.len() {
                (self.slots.len() * 2).max(MIN_SLOTS)
            } else {
                self.slots.len()
            };
            self.rebuild(want, &hash_of);
        }
        self.place(hash, idx);
        self.live += 1;
    }

    fn place(&mut self, hash: u64, idx: u32) {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        loop {
            let s = self.slots[at];
            if s == EMPTY || s == GONE {
                if s == GONE {
                    self.gone -= 1;
                }
                self.slots[at] = tag(hash) | idx;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    fn rebuild(&mut self, slots: usize, hash_of: &impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        self.gone = 0;
        for s in old {
            if s != EMPTY && s != GONE {
                self.place(hash_of(s & IDX), s & IDX);
            }
        }
    }

    /// Every indexed slab index, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .filter(|&&s| s != EMPTY && s != GONE)
            .map(|&s| s & IDX)
    }

    /// Puts `new` in the place of `old`, indexed under `hash` (whose entry
    /// `new` takes over). Returns whether `old` was there.
    pub(crate) fn replace(&mut self, hash: u64, old: u32, new: u32) -> bool {
        debug_assert!(new <= MAX_INDEX);
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let want = tag(hash) | old;
        for _ in 0..self.slots.len() {
            match self.slots[at] {
                EMPTY => return false,
                s if s == want => {
                    self.slots[at] = tag(hash) | new;
                    return true;
                }
                _ => at = (at + 1) & mask,
            }
        }
        false
    }

    /// Removes `idx`, indexed under `hash`. Returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, idx: u32) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let want = tag(hash) | idx;
        for _ in 0..self.slots.len() {
            match self.slots[at] {
                EMPTY => return false,
                s if s == want => {
                    // A tombstone is only needed if a probe could run past
                    // this slot.
                    if self.slots[(at + 1) & mask] == EMPTY {
                        self.slots[at] = EMPTY;
                    } else {
                        self.slots[at] = GONE;
                        self.gone += 1;
                    }
                    self.live -= 1;
                    return true;
                }
                _ => at = (at + 1) & mask,
            }
        }
        false
    }

    /// Bytes held (for the memory figures).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Keys are small integers; their "hash" is chosen by the test so that
    /// collisions, shared tags and wrap-around all happen.
    fn h(key: u32, spread: u32) -> u64 {
        let low = u64::from(key % spread.max(1));
        (u64::from(key.wrapping_mul(0x9e37_79b9)) << 32) ^ low
    }

    #[test]
    fn replace_takes_over_the_entry_and_iter_lists_the_live_ones() {
        let mut t = PoolIndex::default();
        let hash_of = |i: u32| h(i, 3);
        for i in 0..40 {
            t.insert(hash_of(i), i, hash_of);
        }
        assert!(t.remove(hash_of(7), 7));
        // 100 takes 5's place under 5's hash.
        assert!(t.replace(hash_of(5), 5, 100));
        assert!(!t.replace(hash_of(7), 7, 101));
        assert_eq!(t.find(hash_of(5), |i| i == 100), Some(100));
        assert_eq!(t.find(hash_of(5), |i| i == 5), None);
        let mut all: Vec<u32> = t.iter().collect();
        all.sort_unstable();
        let want: Vec<u32> = (0..40).filter(|&i| i != 5 && i != 7).chain([100]).collect();
        assert_eq!(all, want);
        assert_eq!(t.len(), 39);
    }

    #[test]
    fn empty_table_finds_nothing_and_removes_nothing() {
        let mut t = PoolIndex::default();
        assert_eq!(t.find(7, |_| true), None);
        assert!(!t.remove(7, 1));
        assert!(t.home(7).is_none());
    }

    #[test]
    fn colliding_keys_are_told_apart_by_the_caller() {
        let mut t = PoolIndex::default();
        // Same hash for all three: same home slot and tag.
        for i in 0..3 {
            t.insert(42, i, |_| 42);
        }
        for i in 0..3 {
            assert_eq!(t.find(42, |c| c == i), Some(i));
        }
        assert!(t.remove(42, 1));
        assert_eq!(t.find(42, |c| c == 1), None);
        assert_eq!(
            t.find(42, |c| c == 2),
            Some(2),
            "probe runs past the tombstone"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn churn_does_not_grow_the_table_forever() {
        let mut t = PoolIndex::default();
        let hash_of = |i: u32| h(i, 1 << 20);
        for i in 0..100 {
            t.insert(hash_of(i), i, hash_of);
        }
        let size = t.slots();
        for round in 0..1000u32 {
            let i = round % 100;
            assert!(t.remove(hash_of(i), i));
            t.insert(hash_of(i), i, hash_of);
        }
        assert_eq!(t.slots(), size, "tombstones are reclaimed by rebuilds");
        for i in 0..100 {
            assert_eq!(t.find(hash_of(i), |c| c == i), Some(i));
        }
    }

    proptest! {
        /// Against a HashMap model: inserts and removes in any order, with
        /// hashes forced to collide (`spread` home slots), find what the
        /// model holds and nothing else.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u32..64, any::<bool>()), 1..400),
                             spread in 1u32..40) {
            let mut t = PoolIndex::default();
            let mut model: HashMap<u32, ()> = HashMap::new();
            let hash_of = |i: u32| h(i, spread);
            for (key, add) in ops {
                if add && !model.contains_key(&key) {
                    t.insert(hash_of(key), key, hash_of);
                    model.insert(key, ());
                } else if !add {
                    prop_assert_eq!(t.remove(hash_of(key), key), model.remove(&key).is_some());
                }
                prop_assert_eq!(t.len(), model.len());
            }
            for key in 0..64 {
                let found = t.find(hash_of(key), |c| c == key);
                prop_assert_eq!(found.is_some(), model.contains_key(&key));
            }
        }
    }
}
