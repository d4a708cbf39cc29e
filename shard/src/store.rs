//! The handlespace data of one shard: pools, PEs and their indexes. No
//! protocol logic lives here, only bookkeeping that keeps the indexes
//! consistent with each other (checked by `Store::check`).
//!
//! Layout: PEs and pools live in slabs (chunked, [`Slab`], plus free lists) and refer to
//! each other by `u32` index. A pool lists its members densely (swap-remove
//! on deletion, each PE knows its slot) in one allocation with their encoded
//! bytes, and keeps the selection structure its policy family needs. Two hash indexes find a pool by handle
//! and a PE by (pool, PE id).

use ahash::RandomState;
use rand::Rng;
use rserpool_wire::{PolicyType, TransportKind, TransportUse};

use crate::checksum;
use crate::index::{MAX_INDEX, PoolIndex};
use crate::pipeline::Prefetch;
use crate::policy::{Compat, Family, Kind, PolicyState};
use crate::prefetch;
use crate::select::{Entry, Ordered};
use crate::slab::Slab;
use crate::weights::{self, Weights};

/// "No index" in intrusive links.
pub(crate) const NIL: u32 = u32::MAX;

/// Pools up to this size grow their member arrays by a quarter (at least
/// one member) and their heaps one entry at a time; larger ones by an
/// eighth, their heaps by doubling.
pub(crate) const SMALL_POOL: usize = 16;

/// Pools up to this size find a member by its PE id by reading the ids in
/// their stored bytes (next to the handle, in lines a lookup has fetched
/// anyway) and keep no entries in the PE index: most pools are this small,
/// and the index would cost them 8 bytes and a cache miss per PE.
pub(crate) const SCAN_POOL: usize = 4;

/// An expiry that never comes.
pub(crate) const NEVER_SECS: u32 = u32::MAX;

/// One PE (64 bytes).
#[derive(Debug)]
pub(crate) struct Pe {
    /// Offset of the ASAP transport inside the PE's bytes (their length if
    /// none): a Handle Resolution Response sends the bytes up to it, with the
    /// length patched. The bytes themselves live in the pool's arena.
    pub(crate) asap_off: u16,
    pub(crate) pool: u32,
    /// Position in the pool's member list. (The PE id and its home ENRP
    /// server are read from the stored bytes: [`Store::pe_id`],
    /// [`Store::pe_home`].)
    pub(crate) slot: u32,
    /// Bit 7: waiting for a keep-alive ack. Bits 0-6: Endpoint Unreachable
    /// reports since the last registration (saturating at 127).
    pub(crate) status: u8,
    /// Changes whenever the PE's selection entry is superseded; heap entries
    /// carry the stamp they were pushed with (see [`crate::select::Entry`]).
    pub(crate) stamp: u8,
    pub(crate) st: PolicyState,
    /// The association the PE registered on (owned PEs; 0 = none).
    pub(crate) assoc: u64,
    /// When the PE's timer fires next, in wheel ticks (wrapping; see
    /// [`crate::timer::Tick`]); [`crate::timer::NO_TICK`] = no timer.
    pub(crate) due: u32,
    /// When the registration expires, in whole seconds since the epoch
    /// ([`NEVER_SECS`] = never).
    pub(crate) expires: u32,
    /// Ownership list links and position (see [`crate::owners`]).
    pub(crate) owner_prev: u32,
    pub(crate) owner_next: u32,
    pub(crate) oseq: u32,
    /// Next PE registered on the same association (singly linked: lists
    /// are short, usually one PE).
    pub(crate) assoc_next: u32,
}

const _: () = assert!(size_of::<Pe>() == 64);

/// The selection structure of a pool with more than one member (an ordered
/// pool of one keeps none: its sole member is always the answer).
#[derive(Debug)]
pub(crate) enum Selector {
    Ordered(Ordered),
    Weighted(Weights),
}

/// One pool (40 bytes; the selection structure, which a pool of one PE does
/// not need, is boxed).
#[derive(Debug)]
pub(crate) struct Pool {
    /// One allocation: the handle (`handle_len` bytes), then `cap` slots of `stride` bytes with
    /// the members' encoded Pool Element parameters (as sent in ENRP
    /// messages: home id and ASAP transport included, padded), and last the
    /// members' slab indexes (4 bytes each, native order), slot 0 at the very
    /// end. A lookup compares the handle and goes on to the bytes in the same
    /// lines; a pool of one PE holds handle, bytes and member side by side.
    /// The capacity follows from the length, so no field keeps it.
    data: Box<[u8]>,
    sel: Option<Box<Selector>>,
    pub(crate) kind: Kind,
    pub(crate) next_seq: u32,
    /// Members (slots `0..len` are in use).
    len: u32,
    stride: u16,
    handle_len: u8,
    pub(crate) transport: TransportKind,
}

const _: () = assert!(size_of::<Pool>() == 40);

/// Member `slot` of a pool's `data` (slot 0 in the last 4 bytes).
fn member_at(data: &[u8], slot: usize) -> u32 {
    let end = data.len() - 4 * slot;
    let b = &data[end - 4..end];
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// The first `len` members of a pool's `data`, in slot order.
fn members_of(data: &[u8], len: u32) -> impl ExactSizeIterator<Item = u32> + '_ {
    (0..len as usize).map(move |slot| member_at(data, slot))
}

impl Pool {
    pub(crate) fn handle(&self) -> &[u8] {
        &self.data[..usize::from(self.handle_len)]
    }

    /// The Transport Use every member registered with (registration keeps
    /// it consistent), read from the first member's stored bytes: its user
    /// transport parameter starts 16 bytes in, with the Transport Use 6
    /// bytes into that. `None` without members (and meaningless for
    /// transports other than SCTP and TCP, which have none).
    pub(crate) fn transport_use(&self) -> Option<TransportUse> {
        if self.len == 0 {
            return None;
        }
        let at = self.bytes_at(0) + 16 + 6;
        let b = self.data.get(at..at + 2)?;
        Some(TransportUse(u16::from_be_bytes([b[0], b[1]])))
    }

    /// Word sum of the handle for the checksum (at most 16 words: fits).
    pub(crate) fn handle_sum(&self) -> u32 {
        checksum::word_sum(self.handle()) as u32
    }

    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Member slots the allocation has room for.
    fn cap(&self) -> usize {
        (self.data.len() - usize::from(self.handle_len)) / (4 + usize::from(self.stride))
    }

    /// The members' slab indexes in slot order.
    pub(crate) fn members(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        members_of(&self.data, self.len)
    }

    fn set_member(&mut self, slot: usize, idx: u32) {
        let end = self.data.len() - 4 * slot;
        self.data[end - 4..end].copy_from_slice(&idx.to_ne_bytes());
    }

    /// Where slot `slot`'s bytes start in `data`.
    fn bytes_at(&self, slot: usize) -> usize {
        usize::from(self.handle_len) + slot * usize::from(self.stride)
    }

    /// The `stride` bytes of slot `slot`.
    fn slot_bytes(&self, slot: usize) -> &[u8] {
        let at = self.bytes_at(slot);
        &self.data[at..at + usize::from(self.stride)]
    }

    fn slot_bytes_mut(&mut self, slot: usize) -> &mut [u8] {
        let at = self.bytes_at(slot);
        let stride = usize::from(self.stride);
        &mut self.data[at..at + stride]
    }

    /// Moves the members and their bytes to a new allocation of `cap` slots
    /// of `stride` bytes (neither smaller than now).
    fn realloc(&mut self, cap: usize, stride: u16) {
        let head = usize::from(self.handle_len);
        let (old, new) = (usize::from(self.stride), usize::from(stride));
        let mut data = vec![0u8; head + cap * (4 + new)].into_boxed_slice();
        data[..head].copy_from_slice(&self.data[..head]);
        for s in 0..self.len() {
            let from = head + s * old;
            let to = head + s * new;
            data[to..to + old].copy_from_slice(&self.data[from..from + old]);
            let m = member_at(&self.data, s);
            let end = data.len() - 4 * s;
            data[end - 4..end].copy_from_slice(&m.to_ne_bytes());
        }
        self.data = data;
        self.stride = stride;
    }

    /// Appends member `idx` with its bytes; returns its slot.
    fn push(&mut self, idx: u32, bytes: &[u8]) -> usize {
        let len = self.len();
        let cap = self.cap();
        let stride = self.stride.max(stride_for(bytes));
        if len == cap || stride > self.stride {
            let cap = if len < cap {
                cap
            } else if len < SMALL_POOL {
                // Small pools are common: little slack at first (one by
                // one up to four), but not a copy of the pool per member.
                len + (len / 4).max(1)
            } else {
                // Then by an eighth: little slack in big pools, no doubling.
                len + len / 8
            };
            self.realloc(cap, stride);
        }
        self.len += 1;
        self.set_member(len, idx);
        self.put(len, bytes);
        len
    }

    /// Stores `bytes` (a padded Pool Element parameter) in `slot`, widening
    /// every slot first if they are too narrow for it.
    fn put(&mut self, slot: usize, bytes: &[u8]) {
        let stride = stride_for(bytes);
        if stride > self.stride {
            self.realloc(self.cap(), stride);
        }
        let b = self.slot_bytes_mut(slot);
        b[..bytes.len()].copy_from_slice(bytes);
        b[bytes.len()..].fill(0);
    }

    /// Removes the member in `slot`, moving the last one (and its bytes)
    /// there; returns the moved member, if any.
    fn swap_remove(&mut self, slot: usize) -> Option<u32> {
        let last = self.len() - 1;
        self.len -= 1;
        if slot == last {
            return None;
        }
        let moved = member_at(&self.data, last);
        self.set_member(slot, moved);
        let (from, to) = (self.bytes_at(last), self.bytes_at(slot));
        self.data
            .copy_within(from..from + usize::from(self.stride), to);
        Some(moved)
    }

    pub(crate) fn policy_type(&self) -> PolicyType {
        self.kind.0
    }

    /// The PE id in slot `slot`'s stored bytes.
    fn id_at(&self, slot: usize) -> u32 {
        self.word_at(slot, 4)
    }

    /// The home ENRP server id in slot `slot`'s stored bytes.
    fn home_at(&self, slot: usize) -> u32 {
        self.word_at(slot, 8)
    }

    /// The big-endian word at `off` in slot `slot`'s bytes.
    fn word_at(&self, slot: usize, off: usize) -> u32 {
        let at = self.bytes_at(slot) + off;
        let b = &self.data[at..at + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Whether the pool's members are in the PE index (see [`SCAN_POOL`]).
    fn indexed(&self) -> bool {
        self.len() > SCAN_POOL
    }

    /// The ordered heap, if the pool keeps one.
    fn ordered_mut(&mut self) -> Option<&mut Ordered> {
        match self.sel.as_deref_mut() {
            Some(Selector::Ordered(o)) => Some(o),
            _ => None,
        }
    }
}

/// The slot width `bytes` need. The shard stores only parameters shorter
/// than 64 KiB (`encode_pe` refuses others), so the clamp never acts.
fn stride_for(bytes: &[u8]) -> u16 {
    u16::try_from(bytes.len()).unwrap_or(u16::MAX)
}

/// Pools and PEs of one shard.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) pes: Slab<Pe>,
    free_pes: Vec<u32>,
    pub(crate) pools: Slab<Pool>,
    free_pools: Vec<u32>,
    pool_index: PoolIndex,
    /// PE index by (pool, PE id), for the members of pools of more than
    /// [`SCAN_POOL`]; the table holds slab indexes only.
    pe_index: PoolIndex,
    pe_count: usize,
    hasher: RandomState,
    pub(crate) pool_count: usize,
    scratch: Vec<Entry>,
    /// The ordered heap's walk (see [`Ordered::select`]).
    frontier: Vec<std::cmp::Reverse<(u128, u32)>>,
    pub(crate) compat: Compat,
}

impl Default for Store {
    fn default() -> Self {
        // Fixed seeds: hashing is internal (never observable), and fixed seeds
        // keep memory and timing reproducible between runs.
        let hasher = RandomState::with_seeds(0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004);
        Self {
            pes: Slab::default(),
            free_pes: Vec::new(),
            pools: Slab::default(),
            free_pools: Vec::new(),
            pool_index: PoolIndex::default(),
            pe_index: PoolIndex::default(),
            pe_count: 0,
            hasher,
            pool_count: 0,
            scratch: Vec::new(),
            frontier: Vec::new(),
            compat: Compat::Rfc,
        }
    }
}

/// Whether a heap entry of `pool` is still its PE's current entry.
fn live(pes: &Slab<Pe>, pool: u32, e: &Entry) -> bool {
    let pe = &pes[e.idx() as usize];
    pe.pool == pool && pe.st.seq == e.seq && pe.stamp == e.stamp()
}

/// The PE index's hash of a PE id in the pool whose handle hashes to
/// `pool_hash` (known from the request's handle alone, so a PE lookup can be
/// prefetched as early as the pool's).
fn pe_hash(hasher: &RandomState, pool_hash: u64, id: u32) -> u64 {
    hasher.hash_one((pool_hash, id))
}

/// [`pe_hash`] of PE `id` in `pool`, from the pool's stored handle (where
/// the request's handle is not at hand).
fn pe_hash_of(hasher: &RandomState, pool: &Pool, id: u32) -> u64 {
    pe_hash(hasher, hasher.hash_one(pool.handle()), id)
}

impl Pe {
    const WAITING: u8 = 0x80;

    pub(crate) fn ka_waiting(&self) -> bool {
        self.status & Self::WAITING != 0
    }

    pub(crate) fn set_ka_waiting(&mut self, waiting: bool) {
        self.status = (self.status & !Self::WAITING) | if waiting { Self::WAITING } else { 0 };
    }

    pub(crate) fn bad_reports(&self) -> u8 {
        self.status & !Self::WAITING
    }

    pub(crate) fn add_bad_report(&mut self) {
        if self.bad_reports() < 0x7f {
            self.status += 1;
        }
    }

    pub(crate) fn clear_bad_reports(&mut self) {
        self.status &= Self::WAITING;
    }
}

/// Stages of [`Store::prefetch`].
pub(crate) const PREFETCH_STAGES: usize = 6;

/// PEs at the head of a pool's selection that [`Store::prefetch`] fetches.
const PREFETCH_HEAD: usize = 4;

/// Most PEs one shard can hold: heap entries keep the slab index in 24 bits,
/// and the pool index keeps pool indexes (never more pools than PEs) in 24
/// bits minus two markers.
pub(crate) const MAX_PES: usize = MAX_INDEX as usize + 1;

impl Store {
    pub(crate) fn pe_count(&self) -> usize {
        self.pe_count
    }

    pub(crate) fn find_pool(&self, handle: &[u8]) -> Option<u32> {
        self.find_pool_hashed(handle, self.hasher.hash_one(handle))
    }

    /// The pool with `handle` and its PE `id`. One hash of the handle serves
    /// both lookups, so the PE index's slot is asked for before the pool's
    /// handle has been compared (a lookup by the pool's own fields would
    /// have to wait for its record and handle first).
    pub(crate) fn find_pool_pe(&self, handle: &[u8], id: u32) -> (Option<u32>, Option<u32>) {
        let h = self.hasher.hash_one(handle);
        let pe_h = pe_hash(&self.hasher, h, id);
        if let Some(slot) = self.pe_index.home(pe_h) {
            prefetch::line(slot);
        }
        let pool = self.find_pool_hashed(handle, h);
        (pool, pool.and_then(|p| self.find_pe_hashed(p, pe_h, id)))
    }

    /// The first two pools the pool index names for hash `h` (`NIL` where
    /// there are fewer), which stage 1 of [`Store::prefetch`] fetches.
    fn first_candidates(&self, h: u64) -> [u32; 2] {
        let mut cand = [NIL; 2];
        for (slot, c) in cand.iter_mut().zip(self.pool_index.candidates(h)) {
            *slot = c;
        }
        cand
    }

    fn find_pool_hashed(&self, handle: &[u8], h: u64) -> Option<u32> {
        self.pool_index.find(h, |i| {
            let p = &self.pools[i as usize];
            // Whatever the request is, it goes on to the selection
            // structure: ask for its box while the handle is compared.
            if let Some(sel) = &p.sel {
                prefetch::line(&**sel);
            }
            p.handle() == handle
        })
    }

    /// Prefetch stage `stage` (0 to [`PREFETCH_STAGES`] - 1) for a request on
    /// pool `handle`, whose earlier stages left their findings in `ahead`
    /// (a fresh [`Prefetch`] for stage 0): stage *k* reads what stage *k* - 1
    /// fetched and asks for the next level (0: the index slot; 1: the pool
    /// record; 2: its handle and first members (a pool of one: all of its
    /// data); 3: its selection array; 4: the PEs an ordered pool, or a pool
    /// of one, would answer with first, or that a weighted pool's decided
    /// draws will take; 5: their stored bytes; 4 and 5 also follow an
    /// ordered heap's sift-down path a level each).
    pub(crate) fn prefetch(&self, handle: &[u8], ahead: &mut Prefetch, stage: usize) {
        match stage {
            0 => {
                ahead.hash = self.hasher.hash_one(handle);
                if let Some(slot) = self.pool_index.home(ahead.hash) {
                    prefetch::line(slot);
                }
            }
            1 => {
                ahead.cand = self.first_candidates(ahead.hash);
                for c in ahead.cand {
                    if let Some(p) = self.pools.get(c as usize) {
                        prefetch::span(p, size_of::<Pool>());
                    }
                }
            }
            2 => {
                for c in ahead.cand {
                    if let Some(p) = self.pools.get(c as usize) {
                        // A small pool: all of its data (a lookup of a PE
                        // reads the ids in it). Else the handle and the
                        // first members (at the end).
                        if p.len() <= SCAN_POOL {
                            prefetch::span(p.data.as_ptr(), p.data.len());
                        } else {
                            prefetch::line(p.data.as_ptr());
                            // (A weighted pool with no sums: all of them, as
                            // its draws can be any. The family is in the
                            // record; the box is not fetched yet.)
                            let head = match p.kind.family() {
                                Family::Weighted => weights::FLAT,
                                Family::Ordered => PREFETCH_HEAD,
                            };
                            let members = 4 * head.min(p.len());
                            let tail = p.data.len() - members;
                            prefetch::span(p.data[tail..].as_ptr(), members);
                        }
                        // And the selection structure's box, which stage 3
                        // opens.
                        if let Some(sel) = &p.sel {
                            prefetch::span(&**sel, size_of::<Selector>());
                        }
                    }
                }
            }
            3 => {
                // The candidates stage 1 saw (earlier requests of the batch
                // may have changed the index since: then this is only a
                // worse guess); the index again only if there were more.
                let seen = ahead.cand.into_iter().find(|&c| {
                    self.pools
                        .get(c as usize)
                        .is_some_and(|p| p.len() > 0 && p.handle() == handle)
                });
                let found = match seen {
                    None if ahead.cand[1] != NIL => self.find_pool_hashed(handle, ahead.hash),
                    hit => hit,
                };
                let Some(pool) = found else {
                    ahead.pool = NIL;
                    return;
                };
                ahead.pool = pool;
                match self.pools[pool as usize].sel.as_deref() {
                    None => {}
                    Some(Selector::Ordered(o)) => o.prefetch(),
                    Some(Selector::Weighted(f)) => f.prefetch(),
                }
            }
            _ => {
                let Some(p) = self.pools.get(ahead.pool as usize) else {
                    return;
                };
                // An ordered heap: one more level of the path its renewed
                // root sifts down. A weighted pool: the PEs its decided
                // draws take, instead of a head.
                match p.sel.as_deref() {
                    Some(Selector::Ordered(o)) => o.prefetch_path(stage - 3),
                    Some(Selector::Weighted(f)) if p.len() > 1 => {
                        self.prefetch_draws(p, f, stage);
                        return;
                    }
                    _ => {}
                }
                let mut head = [0; PREFETCH_HEAD];
                let n = Self::head(p, &mut head);
                for &idx in &head[..n] {
                    let Some(pe) = self.pes.get(idx as usize) else {
                        continue;
                    };
                    if stage == 4 {
                        prefetch::span(pe, size_of::<Pe>());
                    } else if p.len() > 1 {
                        let at = p.bytes_at(pe.slot as usize);
                        if let Some(b) = p.data.get(at..) {
                            prefetch::span(b.as_ptr(), (p.stride as usize).min(b.len()));
                        }
                    }
                }
            }
        }
    }

    /// Stage 4 or 5 for a weighted pool `p`: the PEs its next selection's
    /// first draws will take ([`Weights::foresee`]). A pool with no sums
    /// (up to 16 members; its weights came in stage 3) gets their records
    /// in stage 4 and their bytes in 5; a larger one the lines of weights
    /// the draws end in, then records and bytes together.
    fn prefetch_draws(&self, p: &Pool, f: &Weights, stage: usize) {
        if !f.flat() && stage == 4 {
            for u in f.ahead().into_iter().flatten() {
                f.prefetch_leaf(weights::scale(u, f.total()));
            }
            return;
        }
        let mut slots = [0; weights::AHEAD];
        let n = f.foresee(&mut slots);
        for &slot in &slots[..n] {
            if slot >= p.len() {
                continue;
            }
            if stage == 4 || !f.flat() {
                let pe = member_at(&p.data, slot);
                if let Some(pe) = self.pes.get(pe as usize) {
                    prefetch::span(pe, size_of::<Pe>());
                }
            }
            if stage == 5
                && let Some(b) = p.data.get(p.bytes_at(slot)..)
            {
                prefetch::span(b.as_ptr(), usize::from(p.stride).min(b.len()));
            }
        }
    }

    /// The further prefetches of a request about PE `id` of the pool whose
    /// handle hashes to `ahead.hash` (stage 0 of [`Store::prefetch`] runs
    /// first). The PE index is keyed by that hash and the id, so its chain
    /// starts at once, beside the pool's: stage 0 asks for the PE index
    /// slot, 1 for the PE records it names, 2 for their stored bytes (where
    /// the id is compared) and their neighbours in their owner's list (a
    /// registration or deregistration relinks them). For a pool of at most
    /// [`SCAN_POOL`], found by stage 3, stage 3 scans the bytes stage 2 of
    /// [`Store::prefetch`] fetched, and asks for the PE's neighbours, or (a
    /// new PE) for the free slab record it will take; stage 4, for a new
    /// PE, asks for the record of the PE at the top of the pool's selection,
    /// whose round the new one starts in. For a removal (`removes`), stage 3
    /// asks for the pool's last member's index and stored bytes, which move
    /// into the leaving PE's slot, and stage 4 for that member's record.
    pub(crate) fn prefetch_pe(&self, id: u32, removes: bool, ahead: &mut Prefetch, stage: usize) {
        if removes && stage >= 3 {
            self.prefetch_last_member(ahead.pool, stage);
        }
        match stage {
            0 => {
                ahead.pe_hash = pe_hash(&self.hasher, ahead.hash, id);
                if let Some(slot) = self.pe_index.home(ahead.pe_hash) {
                    prefetch::line(slot);
                }
            }
            1 => {
                for c in self.pe_index.candidates(ahead.pe_hash).take(2) {
                    if let Some(pe) = self.pes.get(c as usize) {
                        prefetch::span(pe, size_of::<Pe>());
                    }
                }
            }
            2 => {
                for c in self.pe_index.candidates(ahead.pe_hash).take(2) {
                    if let Some(pe) = self.pes.get(c as usize) {
                        self.prefetch_pe_links(pe);
                    }
                }
            }
            3 => {
                let Some(p) = self.pools.get(ahead.pool as usize) else {
                    return;
                };
                let found = if p.indexed() {
                    // Its stages were 0-2; a new PE has no candidate in
                    // this pool (their records are cached by now).
                    self.pe_index.candidates(ahead.pe_hash).take(2).any(|c| {
                        self.pes
                            .get(c as usize)
                            .is_some_and(|pe| pe.pool == ahead.pool)
                    })
                } else {
                    match self.find_pe(ahead.pool, id) {
                        Some(idx) => {
                            if let Some(pe) = self.pes.get(idx as usize) {
                                self.prefetch_pe_links(pe);
                            }
                            true
                        }
                        None => false,
                    }
                };
                ahead.new_pe = !found;
                if !found
                    && let Some(pe) = self.free_pes.last().and_then(|&i| self.pes.get(i as usize))
                {
                    prefetch::span(pe, size_of::<Pe>());
                }
            }
            4 if ahead.new_pe => {
                // A new member starts in the round of the PE at the top of
                // the pool's selection (`current_round`): that PE's record.
                // (In a pool of one, at 10^6 PEs, that load was a quarter of
                // a batched registration's time.)
                let Some(p) = self.pools.get(ahead.pool as usize) else {
                    return;
                };
                let top = match p.sel.as_deref() {
                    None if p.len() == 1 => Some(member_at(&p.data, 0)),
                    Some(Selector::Ordered(o)) => o.first_idx(),
                    _ => None,
                };
                if let Some(pe) = top.and_then(|i| self.pes.get(i as usize)) {
                    prefetch::span(pe, size_of::<Pe>());
                }
            }
            _ => {}
        }
    }

    /// Stage 3 or 4 of a removal from `pool`: see [`Store::prefetch_pe`].
    fn prefetch_last_member(&self, pool: u32, stage: usize) {
        let Some(p) = self.pools.get(pool as usize) else {
            return;
        };
        let Some(last) = p.len().checked_sub(1).filter(|&l| l > 0) else {
            return; // a pool of one: nothing moves
        };
        if stage == 3 {
            let end = p.data.len() - 4 * last;
            if let Some(m) = p.data.get(end.saturating_sub(4)..end) {
                prefetch::line(m.as_ptr());
            }
            if let Some(b) = p.data.get(p.bytes_at(last)..) {
                prefetch::span(b.as_ptr(), usize::from(p.stride).min(b.len()));
            }
        } else if stage == 4
            && let Some(pe) = self.pes.get(member_at(&p.data, last) as usize)
        {
            prefetch::span(pe, size_of::<Pe>());
        }
    }

    /// Prefetches what a change to `pe` touches besides its record: its
    /// owner-list neighbours and (in a pool of more than [`SCAN_POOL`],
    /// whose other lines no lookup fetched) its stored bytes.
    fn prefetch_pe_links(&self, pe: &Pe) {
        for n in [pe.owner_prev, pe.owner_next] {
            if let Some(q) = self.pes.get(n as usize) {
                prefetch::span(q, size_of::<Pe>());
            }
        }
        if let Some(p) = self.pools.get(pe.pool as usize)
            && p.indexed()
            && let Some(b) = p.data.get(p.bytes_at(pe.slot as usize)..)
        {
            prefetch::span(b.as_ptr(), usize::from(p.stride).min(b.len()));
        }
    }

    /// Prefetches the handle of `pe`'s pool and the PE's id and home in its
    /// stored bytes (their pool record must be cached by now to gain).
    pub(crate) fn prefetch_head_and_ids(&self, pe: &Pe) {
        let Some(p) = self.pools.get(pe.pool as usize) else {
            return;
        };
        prefetch::line(p.data.as_ptr());
        if let Some(b) = p.data.get(p.bytes_at(pe.slot as usize) + 4..) {
            prefetch::line(b.as_ptr());
        }
    }

    /// What stages before `stage` of [`Store::prefetch`] and
    /// [`Store::prefetch_pe`] (for PE `id`) would have found, but the
    /// association's hash.
    pub(crate) fn ahead(&self, handle: &[u8], id: u32, stage: usize) -> Prefetch {
        let mut ahead = Prefetch {
            hash: self.hasher.hash_one(handle),
            ..Prefetch::default()
        };
        if stage > 1 {
            ahead.cand = self.first_candidates(ahead.hash);
        }
        if stage > 3 {
            ahead.pool = self.find_pool_hashed(handle, ahead.hash).unwrap_or(NIL);
        }
        if stage > 0 {
            ahead.pe_hash = pe_hash(&self.hasher, ahead.hash, id);
        }
        ahead
    }

    /// The PEs a selection in ordered pool `p` will most likely start with:
    /// the top of its selection (stale entries included), or its sole
    /// member (weighted pools: [`Store::prefetch_draws`]). Returns how many
    /// of `out` it filled.
    fn head(p: &Pool, out: &mut [u32; PREFETCH_HEAD]) -> usize {
        let mut n = 0;
        match p.sel.as_deref() {
            _ if p.len() == 1 => {
                out[0] = member_at(&p.data, 0);
                n = 1;
            }
            None => {}
            Some(Selector::Ordered(o)) => n = o.head_into(out),
            Some(Selector::Weighted(_)) => {}
        }
        n
    }

    pub(crate) fn find_pe(&self, pool: u32, id: u32) -> Option<u32> {
        let p = self.pools.get(pool as usize)?;
        let h = if p.indexed() {
            pe_hash_of(&self.hasher, p, id)
        } else {
            0
        };
        self.find_pe_hashed(pool, h, id)
    }

    /// [`Store::find_pe`] with the PE index's hash known (`h`; unused for a
    /// pool of at most [`SCAN_POOL`]).
    fn find_pe_hashed(&self, pool: u32, h: u64, id: u32) -> Option<u32> {
        let p = self.pools.get(pool as usize)?;
        if !p.indexed() {
            return (0..p.len())
                .find(|&slot| p.id_at(slot) == id)
                .map(|slot| member_at(&p.data, slot));
        }
        self.pe_index.find(h, |i| {
            let pe = &self.pes[i as usize];
            pe.pool == pool && p.id_at(pe.slot as usize) == id
        })
    }

    /// A PE's id (read from its stored bytes).
    pub(crate) fn pe_id(&self, idx: u32) -> u32 {
        let pe = &self.pes[idx as usize];
        self.pools[pe.pool as usize].id_at(pe.slot as usize)
    }

    /// A PE's home ENRP server, its owner (read from its stored bytes).
    pub(crate) fn pe_home(&self, idx: u32) -> u32 {
        let pe = &self.pes[idx as usize];
        self.pools[pe.pool as usize].home_at(pe.slot as usize)
    }

    /// Adds (`add`) or removes the members of `pool` in slots `slots` to or
    /// from the PE index.
    fn index_members(&mut self, pool: u32, slots: std::ops::Range<usize>, add: bool) {
        let Self {
            pe_index,
            pes,
            pools,
            hasher,
            ..
        } = self;
        let p = &pools[pool as usize];
        let pool_hash = hasher.hash_one(p.handle());
        for slot in slots {
            let (idx, h) = (
                member_at(&p.data, slot),
                pe_hash(hasher, pool_hash, p.id_at(slot)),
            );
            if add {
                pe_index.insert(h, idx, |i| {
                    let pe = &pes[i as usize];
                    let q = &pools[pe.pool as usize];
                    pe_hash_of(hasher, q, q.id_at(pe.slot as usize))
                });
            } else {
                pe_index.remove(h, idx);
            }
        }
    }

    pub(crate) fn create_pool(
        &mut self,
        handle: &[u8],
        policy: PolicyType,
        transport: TransportKind,
    ) -> u32 {
        let mut h = [0u8; 32];
        let len = handle.len().min(32);
        h[..len].copy_from_slice(&handle[..len]);
        let kind = Kind(policy);
        let sel = match kind.family() {
            Family::Ordered => None,
            Family::Weighted => Some(Box::new(Selector::Weighted(Weights::default()))),
        };
        let pool = Pool {
            data: h[..len].into(),
            sel,
            kind,
            next_seq: 0,
            len: 0,
            stride: 0,
            handle_len: len as u8,
            transport,
        };
        let idx = match self.free_pools.pop() {
            Some(i) => {
                self.pools[i as usize] = pool;
                i
            }
            None => {
                self.pools.push(pool);
                (self.pools.len() - 1) as u32
            }
        };
        let hash = self.hasher.hash_one(&h[..len]);
        let pools = &self.pools;
        let hasher = &self.hasher;
        self.pool_index
            .insert(hash, idx, |i| hasher.hash_one(pools[i as usize].handle()));
        self.pool_count += 1;
        idx
    }

    fn drop_pool(&mut self, pool: u32) {
        let hash = self.hasher.hash_one(self.pools[pool as usize].handle());
        self.pool_index.remove(hash, pool);
        let p = &mut self.pools[pool as usize];
        p.data = Box::default();
        p.handle_len = 0;
        p.len = 0;
        p.stride = 0;
        p.sel = None;
        self.free_pools.push(pool);
        self.pool_count -= 1;
    }

    fn current_round(&mut self, pool: u32) -> u32 {
        let Self { pools, pes, .. } = self;
        let p = &mut pools[pool as usize];
        match p.sel.as_deref_mut() {
            None if p.len == 1 => pes[member_at(&p.data, 0) as usize].st.round(),
            None => 0,
            Some(Selector::Ordered(o)) => o
                .peek_live(|e| live(pes, pool, e))
                .map_or(0, |e| pes[e.idx() as usize].st.round()),
            Some(Selector::Weighted(_)) => 0,
        }
    }

    /// The next sequence number of `pool`. When the 32-bit counter is about
    /// to wrap, the pool is renumbered 0, 1, 2... in its current order first
    /// (RSPLIB does the same), which never changes the order.
    fn take_seq(&mut self, pool: u32) -> u32 {
        if self.pools[pool as usize].next_seq == u32::MAX {
            self.resequence(pool);
        }
        let p = &mut self.pools[pool as usize];
        p.next_seq += 1;
        p.next_seq - 1
    }

    fn resequence(&mut self, pool: u32) {
        let Self { pools, pes, .. } = self;
        let p = &mut pools[pool as usize];
        let kind = p.kind;
        let mut order: Vec<(u64, u32, u32)> = p
            .members()
            .map(|i| (kind.key(&pes[i as usize].st), pes[i as usize].st.seq, i))
            .collect();
        order.sort_unstable();
        for (n, &(_, _, i)) in order.iter().enumerate() {
            pes[i as usize].st.seq = n as u32;
        }
        p.next_seq = order.len() as u32;
        if let Some(o) = p.ordered_mut()
            && order.len() > 1
        {
            o.rebuild(order.iter().map(|&(key, _, i)| {
                let pe = &pes[i as usize];
                Entry::new(key, pe.st.seq, i, pe.stamp)
            }));
        }
    }

    /// Test hook: the members a weighted pool's next selection will draw
    /// first, as the prefetch stages see them.
    #[cfg(test)]
    pub(crate) fn foreseen(&self, pool: u32) -> Vec<u32> {
        let p = &self.pools[pool as usize];
        let Some(Selector::Weighted(f)) = p.sel.as_deref() else {
            return Vec::new();
        };
        let mut slots = [0; weights::AHEAD];
        let n = f.foresee(&mut slots);
        slots[..n].iter().map(|&s| member_at(&p.data, s)).collect()
    }

    /// Test hook: jumps a pool's sequence counter (to exercise renumbering).
    #[cfg(test)]
    pub(crate) fn set_next_seq(&mut self, pool: u32, seq: u32) {
        self.pools[pool as usize].next_seq = seq;
    }

    /// A PE's encoded Pool Element parameter (padded).
    pub(crate) fn pe_bytes(&self, idx: u32) -> &[u8] {
        let pe = &self.pes[idx as usize];
        let b = self.pools[pe.pool as usize].slot_bytes(pe.slot as usize);
        &b[..crate::tlv_len(b)]
    }

    /// The same, writable (to patch the home id in place).
    pub(crate) fn pe_bytes_mut(&mut self, idx: u32) -> &mut [u8] {
        let pe = &self.pes[idx as usize];
        let b = self.pools[pe.pool as usize].slot_bytes_mut(pe.slot as usize);
        let len = crate::tlv_len(b);
        &mut b[..len]
    }

    /// Replaces a PE's bytes (re-registration, update from a peer).
    pub(crate) fn set_bytes(&mut self, idx: u32, bytes: &[u8]) {
        let pe = &self.pes[idx as usize];
        self.pools[pe.pool as usize].put(pe.slot as usize, bytes);
    }

    /// Adds a new PE (not yet in the pool) with its encoded bytes and links
    /// it into selection.
    pub(crate) fn insert_pe(&mut self, mut pe: Pe, vals: [u32; 4], bytes: &[u8]) -> u32 {
        let pool = pe.pool;
        let round = self.current_round(pool);
        let seq = self.take_seq(pool);
        let p = &mut self.pools[pool as usize];
        pe.st = p.kind.init(vals, seq, round);
        p.kind.on_linked(&mut pe.st, self.compat);
        pe.slot = p.len() as u32;
        let idx = match self.free_pes.pop() {
            Some(i) => {
                self.pes[i as usize] = pe;
                i
            }
            None => {
                self.pes.push(pe);
                (self.pes.len() - 1) as u32
            }
        };
        let slot = self.pools[pool as usize].push(idx, bytes);
        self.pe_count += 1;
        // Past the scanning size, the pool's members go into the PE index:
        // all of them when it just got there, else the new one.
        match slot + 1 {
            n if n == SCAN_POOL + 1 => self.index_members(pool, 0..n, true),
            n if n > SCAN_POOL + 1 => self.index_members(pool, slot..n, true),
            _ => {}
        }
        self.link(idx);
        idx
    }

    /// Puts a PE's current key into its pool's selection structure,
    /// superseding any earlier entry (new stamp). When the 8-bit stamp wraps,
    /// the pool is swept so that no entry with a reused stamp can survive.
    fn link(&mut self, idx: u32) {
        let pe = &mut self.pes[idx as usize];
        let p = &mut self.pools[pe.pool as usize];
        match p.sel.as_deref_mut() {
            None | Some(Selector::Ordered(_)) => {
                // A pool of one member keeps no heap: the sole member is the
                // answer. The second member brings the heap, and the first
                // one's entry, in.
                if p.len <= 1 {
                    return;
                }
                let first = p.sel.is_none();
                let len = p.len as usize;
                let sel = p.sel.get_or_insert_with(|| {
                    Box::new(Selector::Ordered(Ordered::with_capacity(
                        len,
                        p.kind.fixed_key(),
                    )))
                });
                let Selector::Ordered(o) = &mut **sel else {
                    return;
                };
                pe.stamp = pe.stamp.wrapping_add(1);
                o.push(Entry::new(p.kind.key(&pe.st), pe.st.seq, idx, pe.stamp));
                let (pool, wrapped) = (pe.pool, pe.stamp == 0);
                let Self { pes, .. } = self;
                if first {
                    for m in members_of(&p.data, p.len).filter(|&m| m != idx) {
                        let other = &pes[m as usize];
                        o.push(Entry::new(
                            p.kind.key(&other.st),
                            other.st.seq,
                            m,
                            other.stamp,
                        ));
                    }
                }
                if wrapped {
                    o.maybe_sweep(0, |e| live(pes, pool, e));
                }
            }
            Some(Selector::Weighted(f)) => {
                let w = p.kind.weight(&pe.st);
                if pe.slot as usize == f.len() {
                    f.push(w);
                } else {
                    f.set(pe.slot as usize, w);
                }
            }
        }
    }

    /// New policy values from a re-registration.
    pub(crate) fn update_values(&mut self, idx: u32, vals: [u32; 4]) {
        let pe = &mut self.pes[idx as usize];
        let kind = self.pools[pe.pool as usize].kind;
        let old_key = kind.key(&pe.st);
        if kind.update_values(&mut pe.st, vals) {
            kind.on_linked(&mut pe.st, self.compat);
            // An ordered entry is identified by (key, seq): re-push only if the
            // key moved, or the PE would be listed twice. Weighted pools just
            // take the new weight.
            let moved = kind.key(&self.pes[idx as usize].st) != old_key;
            if moved || kind.family() == Family::Weighted {
                self.link(idx);
                self.sweep(self.pes[idx as usize].pool);
            }
        }
    }

    fn sweep(&mut self, pool: u32) {
        let Self { pools, pes, .. } = self;
        let p = &mut pools[pool as usize];
        let len = p.len as usize;
        if let Some(o) = p.ordered_mut() {
            o.maybe_sweep(len, |e| live(pes, pool, e));
        }
    }

    /// Removes a PE from its pool and the indexes; drops the pool when it
    /// was the last member. Returns whether the pool is gone.
    pub(crate) fn remove_pe(&mut self, idx: u32) -> bool {
        let (pool, slot) = {
            let pe = &self.pes[idx as usize];
            (pe.pool, pe.slot as usize)
        };
        // Back at the scanning size, the pool leaves the PE index.
        match self.pools[pool as usize].len() {
            n if n == SCAN_POOL + 1 => self.index_members(pool, 0..n, false),
            n if n > SCAN_POOL + 1 => self.index_members(pool, slot..slot + 1, false),
            _ => {}
        }
        self.pe_count -= 1;
        let p = &mut self.pools[pool as usize];
        let moved = p.swap_remove(slot);
        match p.sel.as_deref_mut() {
            Some(Selector::Weighted(f)) => {
                let last = f.len() - 1;
                let moved = f.get(last);
                f.set(slot, moved);
                f.pop();
            }
            // Down to one member: no heap (see `link`).
            Some(Selector::Ordered(_)) if p.len == 1 => p.sel = None,
            None | Some(Selector::Ordered(_)) => {}
        }
        if let Some(moved) = moved {
            self.pes[moved as usize].slot = slot as u32;
        }
        let pe = &mut self.pes[idx as usize];
        pe.pool = NIL;
        pe.due = crate::timer::NO_TICK;
        self.free_pes.push(idx);
        if self.pools[pool as usize].len == 0 {
            self.drop_pool(pool);
            true
        } else {
            self.sweep(pool);
            false
        }
    }

    /// Selects up to `n` PEs of `pool` by its policy; appends their indexes
    /// to `out` in answer order and advances the state of the first
    /// `max_increment` of them.
    pub(crate) fn select(
        &mut self,
        pool: u32,
        n: usize,
        max_increment: usize,
        rng: &mut impl Rng,
        out: &mut Vec<u32>,
    ) {
        // Renumber first if this request could wrap the sequence counter.
        if self.pools[pool as usize].next_seq > u32::MAX - max_increment.min(n) as u32 {
            self.resequence(pool);
        }
        let Self {
            pools,
            pes,
            scratch,
            frontier,
            compat,
            ..
        } = self;
        let compat = *compat;
        let p = &mut pools[pool as usize];
        let kind = p.kind;
        match p.sel.as_deref_mut() {
            None if p.len == 0 => {}
            None => {
                // The sole member (no heap: see `link`).
                let m = member_at(&p.data, 0);
                if n > 0 {
                    out.push(m);
                    if max_increment > 0 {
                        kind.on_selected(&mut pes[m as usize].st, p.next_seq, compat);
                        p.next_seq += 1;
                    }
                }
                if kind.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
                    Self::rebase_rounds(pool, p, pes);
                }
            }
            Some(Selector::Ordered(o)) => {
                scratch.clear();
                let mut wrapped = false;
                let next_seq = &mut p.next_seq;
                o.select(
                    pes,
                    n,
                    max_increment,
                    |pes, e| live(pes, pool, e),
                    |pes, e| {
                        let pe = &mut pes[e.idx() as usize];
                        kind.on_selected(&mut pe.st, *next_seq, compat);
                        *next_seq += 1;
                        pe.stamp = pe.stamp.wrapping_add(1);
                        wrapped |= pe.stamp == 0;
                        Entry::new(kind.key(&pe.st), pe.st.seq, e.idx(), pe.stamp)
                    },
                    scratch,
                    frontier,
                );
                out.extend(scratch.iter().map(Entry::idx));
                if wrapped {
                    o.maybe_sweep(0, |e| live(pes, pool, e));
                }
                if kind.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
                    Self::rebase_rounds(pool, p, pes);
                }
            }
            Some(Selector::Weighted(f)) => {
                // Draws without replacement (`Weights::draw`; `scratch`
                // gets weight as key, slot as index); then the renewed PEs
                // take their new weights and zeroed ones their old.
                let start = out.len();
                scratch.clear();
                let zeroed = f.draw(n.min(p.len as usize), rng, scratch);
                out.extend(scratch.iter().map(|e| member_at(&p.data, e.idx() as usize)));
                for (i, e) in scratch.iter().enumerate() {
                    let pe = &mut pes[out[start + i] as usize];
                    if i < max_increment {
                        kind.on_selected(&mut pe.st, p.next_seq, compat);
                        p.next_seq += 1;
                        f.set(e.idx() as usize, kind.weight(&pe.st));
                    } else if zeroed {
                        f.set(e.idx() as usize, e.key);
                    }
                }
            }
        }
    }

    /// Keeps WRR round counters far from overflow: once the lowest round is
    /// past 2^31, every PE's round is lowered by it (RSPLIB resets its
    /// counters the same way).
    fn rebase_rounds(pool: u32, p: &mut Pool, pes: &mut Slab<Pe>) {
        let Some(min) = p.members().map(|i| pes[i as usize].st.round()).min() else {
            return;
        };
        if min < 1 << 31 {
            return;
        }
        for i in p.members() {
            pes[i as usize].st.c0 -= min;
        }
        let kind = p.kind;
        if let Some(Selector::Ordered(o)) = p.sel.as_deref_mut()
            && p.len > 1
        {
            o.rebuild(members_of(&p.data, p.len).map(|i| {
                let pe = &pes[i as usize];
                Entry::new(kind.key(&pe.st), pe.st.seq, i, pe.stamp)
            }));
        }
        let _ = pool;
    }

    /// Iterates the live PEs of a pool in member order.
    pub(crate) fn members(&self, pool: u32) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.pools[pool as usize].members()
    }

    /// Verifies that every index agrees with the slabs (tests only; O(size)).
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut seen = 0;
        for (pi, p) in self.pools.iter().enumerate() {
            if p.len == 0 {
                continue;
            }
            if self.find_pool(p.handle()) != Some(pi as u32) {
                return Err(format!("pool {pi} not indexed"));
            }
            let h = usize::from(p.handle_len);
            if p.len() > p.cap() || (p.data.len() - h) % (4 + usize::from(p.stride)) != 0 {
                return Err(format!(
                    "pool {pi}: arena of {} bytes for {} members in {} slots of {}",
                    p.data.len(),
                    p.len,
                    p.cap(),
                    p.stride
                ));
            }
            for (slot, m) in p.members().enumerate() {
                let pe = &self.pes[m as usize];
                let bytes = p.slot_bytes(slot);
                let id = bytes
                    .get(4..8)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let Some(id) = id.filter(|_| bytes.get(..2) == Some(&[0, 0x0a][..])) else {
                    return Err(format!("pool {pi} slot {slot}: stored bytes are no PE"));
                };
                if pe.pool != pi as u32 || pe.slot as usize != slot {
                    return Err(format!(
                        "pe {m} has pool {} slot {}, expected {pi} {slot}",
                        pe.pool, pe.slot
                    ));
                }
                if self.find_pe(pi as u32, id) != Some(m) {
                    return Err(format!("pe {m} not indexed"));
                }
                seen += 1;
            }
            match (p.sel.as_deref(), p.kind.family()) {
                (Some(Selector::Weighted(f)), Family::Weighted) => {
                    if f.len() != p.len() {
                        return Err(format!(
                            "pool {pi}: the weights have {} slots for {} members",
                            f.len(),
                            p.len
                        ));
                    }
                }
                (None, Family::Ordered) if p.len == 1 => {}
                (_, Family::Ordered) if p.len <= 1 => {
                    return Err(format!("pool {pi}: one member, but a heap"));
                }
                (Some(Selector::Ordered(o)), Family::Ordered) => {
                    // Exactly one live entry per member.
                    let mut live_idx: Vec<u32> = o
                        .entries()
                        .filter(|e| live(&self.pes, pi as u32, e))
                        .map(|e| e.idx())
                        .collect();
                    live_idx.sort_unstable();
                    let mut members: Vec<u32> = p.members().collect();
                    members.sort_unstable();
                    if live_idx != members {
                        return Err(format!(
                            "pool {pi}: live heap entries {live_idx:?} != members {members:?}"
                        ));
                    }
                }
                (sel, family) => {
                    return Err(format!(
                        "pool {pi}: {family:?} policy with {} members has selector {sel:?}",
                        p.len
                    ));
                }
            }
        }
        let in_index: usize = self
            .pools
            .iter()
            .filter(|p| p.indexed())
            .map(Pool::len)
            .sum();
        if seen != self.pe_count
            || in_index != self.pe_index.len()
            || self.pool_index.len() != self.pool_count
        {
            return Err(format!(
                "{seen} members ({} counted), {} indexed PEs of {in_index} in large pools, {} pools",
                self.pe_count,
                self.pe_index.len(),
                self.pool_count
            ));
        }
        Ok(())
    }
}
