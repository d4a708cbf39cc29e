//! The ordered selection structure a pool can hold (see [`crate::policy`];
//! the weighted family's is [`crate::weights`]).
//!
//! [`Ordered`] keeps `(key, seq)` entries with lazy deletion: an entry whose
//! key or sequence number no longer matches its PE's is stale and skipped;
//! stale entries are swept when they outnumber the live ones. Two shapes,
//! chosen by policy: a queue for round robin, an eight-ary heap
//! ([`crate::dheap`]) for every other ordered policy.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::dheap::DHeap;

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

    /// The entry as one number that orders like it.
    const fn bits(&self) -> u128 {
        ((self.key as u128) << 64) | ((self.seq as u128) << 32) | self.tag as u128
    }

    const fn from_bits(b: u128) -> Self {
        Self {
            key: (b >> 64) as u64,
            seq: (b >> 32) as u32,
            tag: b as u32,
        }
    }
}

/// Ordered selection: the pool's PEs by ascending `(key, seq)`, in one of
/// two shapes.
///
/// A selection reads the first `n` live entries and renews the first
/// `renewals` of them (new sequence number, advanced counters). Both shapes
/// do that touching a few cache lines, not `n` pops and pushes through the
/// whole structure (in a pool of 1000 at 10^6 PEs, those were 70 % of a
/// resolution's time, each level of a sift another line from memory).
#[derive(Debug)]
pub(crate) enum Ordered {
    /// Any key: an eight-ary min-heap ([`DHeap`]). The first `n` are found
    /// by a best-first walk from the root that moves nothing; a renewal
    /// replaces the root in place and sifts it down only as far as its new
    /// key goes (in a steady least-used pool, to the bottom: the prefetch
    /// stages follow that path, see [`Ordered::prefetch_path`]).
    Heap(DHeap),
    /// A key that never changes (round robin): a renewed entry takes the
    /// pool's next sequence number, the largest, so it goes to the back and
    /// the order is a queue. Selections take from the front and put back at
    /// both ends. An entry pushed out of order (never, for round robin) is
    /// inserted in place.
    Queue(VecDeque<Entry>),
}

impl Default for Ordered {
    fn default() -> Self {
        Self::Heap(DHeap::default())
    }
}

/// Whether `v` should grow by one entry: most pools are small, so they grow
/// one by one at first (16-byte entries: cheap to copy), then double.
fn grow_by_one(len: usize, cap: usize) -> bool {
    len == cap && len < crate::store::SMALL_POOL
}

fn heap_push(h: &mut DHeap, e: Entry) {
    h.push(e.bits(), crate::store::SMALL_POOL);
}

fn queue_push(q: &mut VecDeque<Entry>, e: Entry) {
    if grow_by_one(q.len(), q.capacity()) {
        q.reserve_exact(1);
    }
    // From the back: a renewed round-robin entry belongs there.
    let at = q.iter().rposition(|x| *x <= e).map_or(0, |i| i + 1);
    q.insert(at, e);
}

impl Ordered {
    /// An empty selection with room for `n` entries; a queue if the pool's
    /// keys never change (`fixed_key`).
    pub(crate) fn with_capacity(n: usize, fixed_key: bool) -> Self {
        if fixed_key {
            Self::Queue(VecDeque::with_capacity(n))
        } else {
            Self::Heap(DHeap::with_capacity(n))
        }
    }

    /// Adds an entry in its place.
    pub(crate) fn push(&mut self, e: Entry) {
        match self {
            Self::Heap(h) => heap_push(h, e),
            Self::Queue(q) => queue_push(q, e),
        }
    }

    /// Appends the first `n` live entries, in order, to `out` (which the
    /// caller cleared) and renews the first `renewals` of them: `renew`
    /// updates the PE behind an entry and returns its new entry. `live`
    /// and `renew` get `ctx`, the PE records. `frontier` is scratch space
    /// kept by the caller so that nothing is allocated per selection.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn select<C: ?Sized>(
        &mut self,
        ctx: &mut C,
        n: usize,
        renewals: usize,
        live: impl Fn(&C, &Entry) -> bool,
        mut renew: impl FnMut(&mut C, &Entry) -> Entry,
        out: &mut Vec<Entry>,
        frontier: &mut Vec<Reverse<(u128, u32)>>,
    ) {
        match self {
            Self::Queue(q) => {
                while out.len() < n {
                    let Some(e) = q.pop_front() else { break };
                    if live(ctx, &e) {
                        out.push(e);
                    }
                }
                let k = renewals.min(out.len());
                // The kept ones go back to the front first, so that a
                // renewed entry is inserted in order among all others.
                for e in out[k..].iter().rev() {
                    q.push_front(*e);
                }
                for e in &out[..k] {
                    let new = renew(ctx, e);
                    queue_push(q, new);
                }
            }
            Self::Heap(h) => {
                // Stale entries on top go; then the root is the first.
                while let Some(top) = h.peek() {
                    if live(ctx, &Entry::from_bits(top)) {
                        break;
                    }
                    h.pop();
                }
                if renewals > 1 && n > 1 {
                    // More than one renewal (an operator's choice): the
                    // renewed entries move, so pop and push them all.
                    while out.len() < n {
                        let Some(e) = h.pop().map(Entry::from_bits) else {
                            break;
                        };
                        if live(ctx, &e) {
                            out.push(e);
                        }
                    }
                    for (i, e) in out.iter().enumerate() {
                        let e = if i < renewals { renew(ctx, e) } else { *e };
                        heap_push(h, e);
                    }
                    return;
                }
                first_live(h, n, |e| live(ctx, e), out, frontier);
                if renewals >= 1
                    && let Some(first) = out.first()
                {
                    // `first` is the root (stale ones were dropped above).
                    h.replace_top(renew(ctx, first).bits());
                }
            }
        }
    }

    /// The first live entry, dropping stale ones in front.
    pub(crate) fn peek_live(&mut self, live: impl Fn(&Entry) -> bool) -> Option<Entry> {
        match self {
            Self::Heap(h) => {
                while let Some(e) = h.peek().map(Entry::from_bits) {
                    if live(&e) {
                        return Some(e);
                    }
                    h.pop();
                }
            }
            Self::Queue(q) => {
                while let Some(e) = q.front() {
                    if live(e) {
                        return Some(*e);
                    }
                    q.pop_front();
                }
            }
        }
        None
    }

    /// The slab index of the entry a selection will most likely start with
    /// (stale or not).
    pub(crate) fn first_idx(&self) -> Option<u32> {
        match self {
            Self::Heap(h) => h.peek().map(|e| Entry::from_bits(e).idx()),
            Self::Queue(q) => q.front().map(Entry::idx),
        }
    }

    /// Fills `out` with the slab indexes of the entries a selection will
    /// look at first (stale ones included); returns how many it filled.
    pub(crate) fn head_into(&self, out: &mut [u32]) -> usize {
        fn fill(out: &mut [u32], idx: impl Iterator<Item = u32>) -> usize {
            let mut n = 0;
            for (slot, i) in out.iter_mut().zip(idx) {
                *slot = i;
                n += 1;
            }
            n
        }
        match self {
            Self::Heap(h) => {
                // The root, then its two least children (the second and
                // probably the third of the order).
                let (mut a, mut b) = (u128::MAX, u128::MAX);
                for &c in h.children(0) {
                    if c < a {
                        (a, b) = (c, a);
                    } else if c < b {
                        b = c;
                    }
                }
                let first = h.peek().into_iter();
                let kids = [a, b].into_iter().filter(|&c| c != u128::MAX);
                fill(out, first.chain(kids).map(|e| Entry::from_bits(e).idx()))
            }
            Self::Queue(q) => fill(out, q.iter().map(Entry::idx)),
        }
    }

    /// Prefetches the lines a selection, or a push, starts with.
    pub(crate) fn prefetch(&self) {
        match self {
            Self::Heap(h) => {
                // The walk and a sift start at the root and its children (the
                // first two groups); a push sifts up from the end.
                crate::prefetch::line(h.root_ptr());
                let kids = h.children(0);
                crate::prefetch::span(kids.as_ptr(), size_of_val(kids));
                if h.len() > 9 {
                    crate::prefetch::line(h.last_ptr());
                }
            }
            Self::Queue(q) => {
                // The front entries, which may wrap around the ring's end
                // (then `b` starts with the rest), and the back.
                let (a, b) = q.as_slices();
                crate::prefetch::span(a.as_ptr(), size_of_val(a).min(128));
                if size_of_val(a) < 128 {
                    crate::prefetch::span(b.as_ptr(), size_of_val(b).min(128 - size_of_val(a)));
                }
                let back = if b.is_empty() { a } else { b };
                crate::prefetch::line(back.as_ptr().wrapping_add(back.len().saturating_sub(1)));
            }
        }
    }

    /// Prefetches, for a heap, the children of the node a sift-down from
    /// the root reaches after `level` steps down least children (the path
    /// a renewed root takes when its new key is the largest), reading the
    /// levels above, which earlier prefetch stages asked for.
    pub(crate) fn prefetch_path(&self, level: usize) {
        let Self::Heap(h) = self else { return };
        let mut k = 0;
        for _ in 0..level {
            match h.min_child(k) {
                Some((_, at)) => k = at,
                None => return,
            }
        }
        let kids = h.children(k);
        crate::prefetch::span(kids.as_ptr(), size_of_val(kids));
    }

    /// Rebuilds without stale entries once they dominate.
    pub(crate) fn maybe_sweep(&mut self, live_count: usize, live: impl Fn(&Entry) -> bool) {
        if self.len() <= 2 * live_count + 32 {
            return;
        }
        match self {
            Self::Heap(h) => h.retain(|e| live(&Entry::from_bits(e))),
            Self::Queue(q) => q.retain(|e| live(e)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Heap(h) => h.len(),
            Self::Queue(q) => q.len(),
        }
    }

    /// Every entry, stale ones included, in no particular order.
    pub(crate) fn entries(&self) -> Box<dyn Iterator<Item = Entry> + '_> {
        match self {
            Self::Heap(h) => Box::new(h.iter().map(Entry::from_bits)),
            Self::Queue(q) => Box::new(q.iter().copied()),
        }
    }

    /// Rewrites every entry (used when WRR rounds are rebased, or a pool is
    /// renumbered).
    pub(crate) fn rebuild(&mut self, entries: impl Iterator<Item = Entry>) {
        match self {
            Self::Heap(h) => h.rebuild(entries.map(|e| e.bits())),
            Self::Queue(q) => {
                let mut v: Vec<Entry> = entries.collect();
                v.sort_unstable();
                *q = v.into();
            }
        }
    }
}

/// Appends the first `n` live entries of `heap` to `out` in order, by a
/// best-first walk from the root: the next entry in order is the least of
/// the children of those taken so far. Stale entries are passed over but
/// their children are not. The frontier (entry and node) is scanned
/// linearly for the usual few answers, kept as a heap for many.
fn first_live(
    heap: &DHeap,
    n: usize,
    live: impl Fn(&Entry) -> bool,
    out: &mut Vec<Entry>,
    frontier: &mut Vec<Reverse<(u128, u32)>>,
) {
    const LINEAR: usize = 8;
    let Some(root) = heap.peek() else { return };
    if n == 1 && live(&Entry::from_bits(root)) {
        out.push(Entry::from_bits(root));
        return;
    }
    // Takes the entry `v` at node `at`: into `out` if live; its children
    // join the frontier.
    let take = |v: u128, at: u32, out: &mut Vec<Entry>| {
        let e = Entry::from_bits(v);
        if live(&e) {
            out.push(e);
        }
        let at = at as usize;
        let kids = heap.children(at).iter().enumerate();
        kids.map(move |(i, &c)| Reverse((c, DHeap::child_node(at, i) as u32)))
    };
    frontier.clear();
    if n <= LINEAR {
        frontier.push(Reverse((root, 0)));
        while out.len() < n && !frontier.is_empty() {
            let mut best = 0;
            for (i, f) in frontier.iter().enumerate().skip(1) {
                if f.0 < frontier[best].0 {
                    best = i;
                }
            }
            let Reverse((v, at)) = frontier.swap_remove(best);
            frontier.extend(take(v, at, out));
        }
        return;
    }
    let mut fr = BinaryHeap::from(std::mem::take(frontier));
    fr.push(Reverse((root, 0u32)));
    while out.len() < n {
        let Some(Reverse((v, at))) = fr.pop() else {
            break;
        };
        fr.extend(take(v, at, out));
    }
    *frontier = fr.into_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A model PE for the ordered tests: its current entry's fields.
    #[derive(Clone, Copy)]
    struct M {
        alive: bool,
        key: u64,
        seq: u32,
        stamp: u8,
    }

    fn entry(m: &[M], i: usize) -> Entry {
        Entry::new(m[i].key, m[i].seq, i as u32, m[i].stamp)
    }

    fn m_live(m: &[M], e: &Entry) -> bool {
        let x = m[e.idx() as usize];
        x.alive && x.seq == e.seq && x.stamp == e.stamp()
    }

    /// Runs `ops` on one shape (`queue` or heap) and on a plain sorted
    /// list; every selection must agree with the list. With `fixed_key`
    /// every key is 0 and a renewal keeps it (round robin), else keys move
    /// on renewal and re-registration.
    fn run_ordered(
        ops: &[(u8, usize, u64)],
        fixed_key: bool,
        queue: bool,
    ) -> Result<(), TestCaseError> {
        let mut o = Ordered::with_capacity(0, queue);
        prop_assert_eq!(matches!(o, Ordered::Queue(_)), queue);
        let mut m: Vec<M> = Vec::new();
        let mut next_seq = 0u32;
        let mut frontier = Vec::new();
        for &(op, x, v) in ops {
            let key = if fixed_key { 0 } else { v % 8 };
            match op {
                0..=2 => {
                    m.push(M {
                        alive: true,
                        key,
                        seq: next_seq,
                        stamp: 0,
                    });
                    next_seq += 1;
                    o.push(entry(&m, m.len() - 1));
                }
                3 if !m.is_empty() => {
                    let i = x % m.len();
                    m[i].alive = false;
                    o.maybe_sweep(m.iter().filter(|p| p.alive).count(), |e| m_live(&m, e));
                }
                4 if !m.is_empty() && !fixed_key => {
                    // A re-registration that moves the key: a new stamp.
                    let i = x % m.len();
                    if m[i].alive {
                        m[i].key = key;
                        m[i].stamp += 1;
                        o.push(entry(&m, i));
                    }
                }
                _ => {
                    let (n, renewals) = (1 + x % 12, (v as usize) % 3);
                    let mut want: Vec<(u64, u32, usize)> = m
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.alive)
                        .map(|(i, p)| (p.key, p.seq, i))
                        .collect();
                    want.sort_unstable();
                    want.truncate(n);
                    let mut out = Vec::new();
                    let mut seq = next_seq;
                    let mut renewed = Vec::new();
                    o.select(
                        m.as_mut_slice(),
                        n,
                        renewals,
                        m_live,
                        |m, e| {
                            renewed.push(e.idx() as usize);
                            let p = &mut m[e.idx() as usize];
                            p.seq = seq;
                            seq += 1;
                            p.stamp += 1;
                            if !fixed_key {
                                p.key = (p.key + 3) % 11;
                            }
                            entry(m, e.idx() as usize)
                        },
                        &mut out,
                        &mut frontier,
                    );
                    next_seq = seq;
                    let got: Vec<usize> = out.iter().map(|e| e.idx() as usize).collect();
                    let want: Vec<usize> = want.iter().map(|w| w.2).collect();
                    // The first `renewals` of the answer, in order, were
                    // renewed, and no others.
                    prop_assert_eq!(&renewed[..], &want[..renewals.min(want.len())]);
                    prop_assert_eq!(got, want);
                }
            }
            // Exactly one live entry per live PE.
            let mut seen: Vec<u32> = o
                .entries()
                .filter(|e| m_live(&m, e))
                .map(|e| e.idx())
                .collect();
            seen.sort_unstable();
            let alive: Vec<u32> = (0..m.len() as u32)
                .filter(|&i| m[i as usize].alive)
                .collect();
            prop_assert_eq!(seen, alive);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn heap_selects_like_a_sorted_list(ops in proptest::collection::vec((0u8..7, 0usize..64, 0u64..64), 1..150)) {
            run_ordered(&ops, false, false)?;
        }

        /// The queue is built for fixed keys but stays correct (only
        /// slower) when they move.
        #[test]
        fn queue_selects_like_a_sorted_list(ops in proptest::collection::vec((0u8..7, 0usize..64, 0u64..64), 1..150)) {
            run_ordered(&ops, false, true)?;
        }

        #[test]
        fn queue_and_heap_select_like_a_sorted_list_with_fixed_keys(ops in proptest::collection::vec((0u8..7, 0usize..64, 0u64..64), 1..150)) {
            run_ordered(&ops, true, true)?;
            run_ordered(&ops, true, false)?;
        }
    }

    #[test]
    fn ordered_skips_stale_and_keeps_order() {
        let mut m = vec![
            M {
                alive: true,
                key: 5,
                seq: 0,
                stamp: 0,
            },
            M {
                alive: false,
                key: 1,
                seq: 1,
                stamp: 0,
            },
            M {
                alive: true,
                key: 3,
                seq: 2,
                stamp: 0,
            },
            M {
                alive: true,
                key: 1,
                seq: 3,
                stamp: 0,
            },
        ];
        for queue in [false, true] {
            let mut o = Ordered::with_capacity(4, queue);
            for i in 0..4 {
                o.push(entry(&m, i));
            }
            let mut out = Vec::new();
            o.select(
                m.as_mut_slice(),
                2,
                0,
                m_live,
                |m, e| entry(m, e.idx() as usize),
                &mut out,
                &mut Vec::new(),
            );
            let got: Vec<u32> = out.iter().map(Entry::idx).collect();
            assert_eq!(got, vec![3, 2], "queue: {queue}");
        }
    }
}
