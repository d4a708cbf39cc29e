//! [`Slab`]: the records of one kind (PEs, pools), addressed by a `u32`
//! index, in fixed-size chunks instead of one growing array.
//!
//! A single `Vec` of 10^6 PE records (72 MB) must be copied whole whenever
//! it grows, stalling its shard for milliseconds, and carries up to a growth
//! step of unused capacity. Chunks of [`CHUNK`] records never move: growth
//! adds a chunk, and at most one chunk is partly unused. The first chunk
//! grows by doubling up to [`CHUNK`], so a small shard stays small. Finding
//! a record costs one more load (the chunk's address, from a small table
//! that stays in the caches: 62 entries at 10^6 records; with chunks of
//! 4096 the table outgrew the caches and single operations at 10^6 PEs ran
//! 10-17 % slower).

use std::ops::{Index, IndexMut};

/// Records per chunk (a power of two).
pub(crate) const CHUNK: usize = 1 << SHIFT;
const SHIFT: u32 = 14;
/// Capacity of the first chunk when the slab is created.
const FIRST: usize = 16;

/// Records of type `T` by index.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    /// Every chunk but the last is full.
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { chunks: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    /// Appends `v`; its index is the old [`Slab::len`].
    pub(crate) fn push(&mut self, v: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => {
                if last.len() == last.capacity() {
                    // Only the first chunk starts small: double it.
                    let cap = last.capacity();
                    last.reserve_exact(cap.min(CHUNK - cap));
                }
                last.push(v);
            }
            _ => {
                let cap = if self.chunks.is_empty() { FIRST } else { CHUNK };
                let mut c = Vec::with_capacity(cap);
                c.push(v);
                self.chunks.push(c);
            }
        }
    }

    /// Record `i`, if there is one.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> SHIFT)?.get(i & (CHUNK - 1))
    }

    /// Every record, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }
}

impl<T> Index<usize> for Slab<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> SHIFT][i & (CHUNK - 1)]
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> SHIFT][i & (CHUNK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_index_across_chunks() {
        let mut s = Slab::default();
        let n = 2 * CHUNK + 5;
        for i in 0..n {
            assert_eq!(s.len(), i);
            s.push(i * 3);
        }
        for i in [0, 1, FIRST, CHUNK - 1, CHUNK, 2 * CHUNK, n - 1] {
            assert_eq!(s[i], i * 3);
            assert_eq!(s.get(i), Some(&(i * 3)));
        }
        assert_eq!(s.get(n), None);
        s[CHUNK] = 7;
        s[1] = 8;
        assert_eq!((s[CHUNK], s[1]), (7, 8));
        assert_eq!(s.iter().count(), n);
        assert_eq!(s.iter().nth(CHUNK), Some(&7));
        // Full chunks are exactly full: no slack but in the last one.
        assert!(s.chunks[..2].iter().all(|c| c.capacity() == CHUNK));
    }
}
