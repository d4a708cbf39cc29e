//! The handlespace data of one shard: pools, PEs and their indexes. No
//! protocol logic lives here, only bookkeeping that keeps the indexes
//! consistent with each other (checked by `Store::check`).
//!
//! Layout: PEs and pools live in slabs (`Vec` plus free list) and refer to
//! each other by `u32` index. A pool lists its members densely (`members`,
//! swap-remove on deletion, each PE knows its slot), and keeps the selection
//! structure its policy family needs. Two hash indexes find a pool by handle
//! and a PE by (pool, PE id).

use ahash::RandomState;
use hashbrown::{HashMap, HashTable};
use rand::Rng;
use rserpool_wire::{PolicyType, TransportKind, TransportUse};

use crate::checksum;
use crate::policy::{Compat, Family, Kind, PolicyState};
use crate::select::{Entry, Fenwick, Ordered};
use crate::time::Time;

/// "No index" in intrusive links.
pub(crate) const NIL: u32 = u32::MAX;

/// One PE.
#[derive(Debug)]
pub(crate) struct Pe {
    /// The complete Pool Element parameter as this server sends it in ENRP
    /// messages (home id, ASAP transport included), padded to 4 bytes.
    pub(crate) enc: Box<[u8]>,
    /// Offset of the ASAP transport inside `enc` (`enc.len()` if none): a
    /// Handle Resolution Response sends `enc[..asap_off]` with its length
    /// patched.
    pub(crate) asap_off: u16,
    pub(crate) pool: u32,
    pub(crate) id: u32,
    /// Home ENRP server (owner).
    pub(crate) home: u32,
    /// Position in the pool's `members`.
    pub(crate) slot: u32,
    /// Bumped whenever the PE's selection entry or timer entry is superseded.
    pub(crate) stamp: u32,
    /// Endpoint Unreachable reports since the last registration.
    pub(crate) bad_reports: u8,
    /// Keep-alive state, see [`crate::shard`].
    pub(crate) ka_state: u8,
    pub(crate) st: PolicyState,
    /// The association the PE registered on (owned PEs; 0 = none).
    pub(crate) assoc: u64,
    /// When the PE's timer fires next ([`Time::NEVER`] = no timer).
    pub(crate) due: Time,
    /// When the registration expires ([`Time::NEVER`] = never).
    pub(crate) expires: Time,
    /// Ownership list links and position (see [`crate::owners`]).
    pub(crate) owner_prev: u32,
    pub(crate) owner_next: u32,
    pub(crate) oseq: u64,
    /// Association list links.
    pub(crate) assoc_prev: u32,
    pub(crate) assoc_next: u32,
}

/// The selection structure of a pool.
#[derive(Debug)]
pub(crate) enum Selector {
    Ordered(Ordered),
    Weighted(Fenwick),
}

/// One pool.
#[derive(Debug)]
pub(crate) struct Pool {
    handle: [u8; 32],
    handle_len: u8,
    /// Word sum of the handle for the checksum.
    pub(crate) handle_sum: u64,
    pub(crate) kind: Kind,
    pub(crate) transport: TransportKind,
    pub(crate) transport_use: TransportUse,
    pub(crate) members: Vec<u32>,
    pub(crate) next_seq: u64,
    pub(crate) sel: Selector,
}

impl Pool {
    pub(crate) fn handle(&self) -> &[u8] {
        &self.handle[..usize::from(self.handle_len)]
    }

    pub(crate) fn policy_type(&self) -> PolicyType {
        self.kind.0
    }
}

/// Pools and PEs of one shard.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) pes: Vec<Pe>,
    free_pes: Vec<u32>,
    pub(crate) pools: Vec<Pool>,
    free_pools: Vec<u32>,
    pool_index: HashTable<u32>,
    pe_index: HashMap<(u32, u32), u32, RandomState>,
    hasher: RandomState,
    pub(crate) pool_count: usize,
    scratch: Vec<Entry>,
    pub(crate) compat: Compat,
}

impl Default for Store {
    fn default() -> Self {
        // Fixed seeds: hashing is internal (never observable), and fixed seeds
        // keep memory and timing reproducible between runs.
        let hasher = RandomState::with_seeds(0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004);
        Self {
            pes: Vec::new(),
            free_pes: Vec::new(),
            pools: Vec::new(),
            free_pools: Vec::new(),
            pool_index: HashTable::new(),
            pe_index: HashMap::with_hasher(hasher.clone()),
            hasher,
            pool_count: 0,
            scratch: Vec::new(),
            compat: Compat::Rfc,
        }
    }
}

impl Store {
    pub(crate) fn pe_count(&self) -> usize {
        self.pe_index.len()
    }

    pub(crate) fn find_pool(&self, handle: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(handle);
        self.pool_index
            .find(h, |&i| self.pools[i as usize].handle() == handle)
            .copied()
    }

    pub(crate) fn find_pe(&self, pool: u32, id: u32) -> Option<u32> {
        self.pe_index.get(&(pool, id)).copied()
    }

    pub(crate) fn create_pool(
        &mut self,
        handle: &[u8],
        policy: PolicyType,
        transport: TransportKind,
        transport_use: TransportUse,
    ) -> u32 {
        let mut h = [0u8; 32];
        let len = handle.len().min(32);
        h[..len].copy_from_slice(&handle[..len]);
        let kind = Kind(policy);
        let sel = match kind.family() {
            Family::Ordered => Selector::Ordered(Ordered::default()),
            Family::Weighted => Selector::Weighted(Fenwick::default()),
        };
        let pool = Pool {
            handle: h,
            handle_len: len as u8,
            handle_sum: checksum::word_sum(&h[..len]),
            kind,
            transport,
            transport_use,
            members: Vec::new(),
            next_seq: 0,
            sel,
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
            .insert_unique(hash, idx, |&i| hasher.hash_one(pools[i as usize].handle()));
        self.pool_count += 1;
        idx
    }

    fn drop_pool(&mut self, pool: u32) {
        let hash = self.hasher.hash_one(self.pools[pool as usize].handle());
        if let Ok(entry) = self.pool_index.find_entry(hash, |&i| i == pool) {
            entry.remove();
        }
        let p = &mut self.pools[pool as usize];
        p.members = Vec::new();
        p.sel = Selector::Ordered(Ordered::default());
        self.free_pools.push(pool);
        self.pool_count -= 1;
    }

    fn current_round(&mut self, pool: u32) -> u32 {
        let Self { pools, pes, .. } = self;
        match &mut pools[pool as usize].sel {
            Selector::Ordered(o) => o
                .peek_live(|e| pes[e.idx as usize].stamp == e.stamp)
                .map_or(0, |e| pes[e.idx as usize].st.round),
            Selector::Weighted(_) => 0,
        }
    }

    /// Adds a new PE (not yet in the pool) and links it into selection.
    pub(crate) fn insert_pe(&mut self, mut pe: Pe, vals: [u32; 4]) -> u32 {
        let pool = pe.pool;
        let round = self.current_round(pool);
        let p = &mut self.pools[pool as usize];
        pe.st = p.kind.init(vals, p.next_seq, round);
        p.kind.on_linked(&mut pe.st, self.compat);
        p.next_seq += 1;
        pe.slot = p.members.len() as u32;
        let id = pe.id;
        let idx = match self.free_pes.pop() {
            Some(i) => {
                pe.stamp = self.pes[i as usize].stamp.wrapping_add(1);
                self.pes[i as usize] = pe;
                i
            }
            None => {
                self.pes.push(pe);
                (self.pes.len() - 1) as u32
            }
        };
        self.pools[pool as usize].members.push(idx);
        self.pe_index.insert((pool, id), idx);
        self.link(idx);
        idx
    }

    /// Puts a PE's current key into its pool's selection structure.
    fn link(&mut self, idx: u32) {
        let pe = &self.pes[idx as usize];
        let p = &mut self.pools[pe.pool as usize];
        match &mut p.sel {
            Selector::Ordered(o) => o.push(Entry {
                key: p.kind.key(&pe.st),
                seq: pe.st.seq,
                idx,
                stamp: pe.stamp,
            }),
            Selector::Weighted(f) => {
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
        if kind.update_values(&mut pe.st, vals) {
            kind.on_linked(&mut pe.st, self.compat);
            pe.stamp = pe.stamp.wrapping_add(1);
            self.link(idx);
            self.sweep(self.pes[idx as usize].pool);
        }
    }

    fn sweep(&mut self, pool: u32) {
        let Self { pools, pes, .. } = self;
        let p = &mut pools[pool as usize];
        if let Selector::Ordered(o) = &mut p.sel {
            o.maybe_sweep(p.members.len(), |e| pes[e.idx as usize].stamp == e.stamp);
        }
    }

    /// Removes a PE from its pool and the indexes; drops the pool when it
    /// was the last member. Returns whether the pool is gone.
    pub(crate) fn remove_pe(&mut self, idx: u32) -> bool {
        let (pool, id, slot) = {
            let pe = &mut self.pes[idx as usize];
            pe.stamp = pe.stamp.wrapping_add(1);
            pe.due = Time::NEVER;
            (pe.pool, pe.id, pe.slot as usize)
        };
        self.pe_index.remove(&(pool, id));
        let p = &mut self.pools[pool as usize];
        p.members.swap_remove(slot);
        if let Selector::Weighted(f) = &mut p.sel {
            let last = f.len() - 1;
            let moved = f.get(last);
            f.set(slot, moved);
            f.pop();
        }
        if let Some(&moved) = p.members.get(slot) {
            self.pes[moved as usize].slot = slot as u32;
        }
        self.pes[idx as usize].enc = Box::default();
        self.free_pes.push(idx);
        if self.pools[pool as usize].members.is_empty() {
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
        let Self {
            pools,
            pes,
            scratch,
            compat,
            ..
        } = self;
        let compat = *compat;
        let p = &mut pools[pool as usize];
        let kind = p.kind;
        match &mut p.sel {
            Selector::Ordered(o) => {
                scratch.clear();
                o.take_first(n, |e| pes[e.idx as usize].stamp == e.stamp, scratch);
                for (i, e) in scratch.iter().enumerate() {
                    out.push(e.idx);
                    if i < max_increment {
                        let pe = &mut pes[e.idx as usize];
                        kind.on_selected(&mut pe.st, p.next_seq, compat);
                        p.next_seq += 1;
                        pe.stamp = pe.stamp.wrapping_add(1);
                        o.push(Entry {
                            key: kind.key(&pe.st),
                            seq: pe.st.seq,
                            idx: e.idx,
                            stamp: pe.stamp,
                        });
                    } else {
                        o.push(*e);
                    }
                }
                if kind.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
                    Self::rebase_rounds(p, pes);
                }
            }
            Selector::Weighted(f) => {
                let start = out.len();
                scratch.clear();
                for _ in 0..n.min(p.members.len()) {
                    let total = f.total();
                    if total == 0 {
                        break;
                    }
                    let slot = f.find(rng.random_range(0..total));
                    scratch.push(Entry {
                        key: f.get(slot),
                        seq: 0,
                        idx: slot as u32,
                        stamp: 0,
                    });
                    f.set(slot, 0);
                    out.push(p.members[slot]);
                }
                for (i, e) in scratch.iter().enumerate() {
                    let pe_idx = out[start + i];
                    let pe = &mut pes[pe_idx as usize];
                    if i < max_increment {
                        kind.on_selected(&mut pe.st, p.next_seq, compat);
                        p.next_seq += 1;
                        f.set(e.idx as usize, kind.weight(&pe.st));
                    } else {
                        f.set(e.idx as usize, e.key);
                    }
                }
            }
        }
    }

    /// Keeps WRR round counters far from overflow: once the lowest round is
    /// past 2^31, every PE's round is lowered by it (RSPLIB resets its
    /// counters the same way).
    fn rebase_rounds(p: &mut Pool, pes: &mut [Pe]) {
        let Some(min) = p.members.iter().map(|&i| pes[i as usize].st.round).min() else {
            return;
        };
        if min < 1 << 31 {
            return;
        }
        for &i in &p.members {
            let pe = &mut pes[i as usize];
            pe.st.round -= min;
            pe.stamp = pe.stamp.wrapping_add(1);
        }
        let kind = p.kind;
        if let Selector::Ordered(o) = &mut p.sel {
            o.rebuild(p.members.iter().map(|&i| {
                let pe = &pes[i as usize];
                Entry {
                    key: kind.key(&pe.st),
                    seq: pe.st.seq,
                    idx: i,
                    stamp: pe.stamp,
                }
            }));
        }
    }

    /// Iterates the live PEs of a pool in member order.
    pub(crate) fn members(&self, pool: u32) -> &[u32] {
        &self.pools[pool as usize].members
    }

    /// Verifies that every index agrees with the slabs (tests only; O(size)).
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut seen = 0;
        for (pi, p) in self.pools.iter().enumerate() {
            if p.members.is_empty() {
                continue;
            }
            if self.find_pool(p.handle()) != Some(pi as u32) {
                return Err(format!("pool {pi} not indexed"));
            }
            for (slot, &m) in p.members.iter().enumerate() {
                let pe = &self.pes[m as usize];
                if pe.pool != pi as u32 || pe.slot as usize != slot {
                    return Err(format!(
                        "pe {m} has pool {} slot {}, expected {pi} {slot}",
                        pe.pool, pe.slot
                    ));
                }
                if self.find_pe(pi as u32, pe.id) != Some(m) {
                    return Err(format!("pe {m} not indexed"));
                }
                seen += 1;
            }
            match &p.sel {
                Selector::Weighted(f) => {
                    if f.len() != p.members.len() {
                        return Err(format!(
                            "pool {pi}: fenwick has {} slots for {} members",
                            f.len(),
                            p.members.len()
                        ));
                    }
                }
                Selector::Ordered(o) => {
                    if o.len() < p.members.len() {
                        return Err(format!(
                            "pool {pi}: heap has {} entries for {} members",
                            o.len(),
                            p.members.len()
                        ));
                    }
                }
            }
        }
        if seen != self.pe_index.len() || self.pool_index.len() != self.pool_count {
            return Err(format!(
                "{seen} members, {} indexed PEs, {} pools",
                self.pe_index.len(),
                self.pool_count
            ));
        }
        Ok(())
    }
}
