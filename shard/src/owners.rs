//! Who owns which PE: one list per home server, in the order PEs joined it,
//! plus the running checksum sum of that owner's PEs.
//!
//! The lists are intrusive (links live in the PE records), so moving a PE
//! between owners is O(1) and a takeover re-homes an owner's PEs in one walk.
//! Every PE joining a list gets the next ownership sequence number; a list is
//! therefore sorted by it, which is what makes handle-table continuation
//! stable: a cursor remembers the last PE sent and its number, and resumes at
//! that PE's successor, or (if it left meanwhile) at the first PE with a
//! higher number.

use std::collections::BTreeMap;

use crate::checksum;
use crate::store::{NIL, Store};

/// One owner's list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerList {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) count: u32,
    pub(crate) sum: u64,
}

impl Default for OwnerList {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
            count: 0,
            sum: 0,
        }
    }
}

/// PE `idx`'s home server and its contribution to that owner's checksum sum.
fn owner_and_sum(store: &Store, idx: u32) -> (u32, u64) {
    let pool = &store.pools[store.pes[idx as usize].pool as usize];
    let sum = checksum::pe_sum(u64::from(pool.handle_sum()), store.pe_id(idx));
    (store.pe_home(idx), sum)
}

/// All owners of a shard's PEs, by server id.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    pub(crate) lists: BTreeMap<u32, OwnerList>,
    next_oseq: u32,
}

impl Owners {
    /// Appends PE `idx` (whose `home` is set) to its owner's list.
    pub(crate) fn link(&mut self, store: &mut Store, idx: u32) {
        let (home, add) = owner_and_sum(store, idx);
        if self.next_oseq == u32::MAX {
            self.renumber(store);
        }
        let list = self.lists.entry(home).or_default();
        let oseq = self.next_oseq;
        self.next_oseq += 1;
        {
            let pe = &mut store.pes[idx as usize];
            pe.owner_prev = list.tail;
            pe.owner_next = NIL;
            pe.oseq = oseq;
        }
        if list.tail == NIL {
            list.head = idx;
        } else {
            store.pes[list.tail as usize].owner_next = idx;
        }
        list.tail = idx;
        list.count += 1;
        list.sum += add;
    }

    /// Gives every listed PE a fresh ownership number, in list order, so the
    /// 32-bit counter can go on. A listing in progress may then resume at a
    /// different place (at worst sending some PEs twice); with one renumbering
    /// per four billion ownership changes that is accepted.
    fn renumber(&mut self, store: &mut Store) {
        let mut n = 0;
        for list in self.lists.values() {
            let mut i = list.head;
            while i != NIL {
                store.pes[i as usize].oseq = n;
                n += 1;
                i = store.pes[i as usize].owner_next;
            }
        }
        self.next_oseq = n;
    }

    /// Removes PE `idx` from its owner's list.
    pub(crate) fn unlink(&mut self, store: &mut Store, idx: u32) {
        let (home, sub) = owner_and_sum(store, idx);
        let (prev, next) = {
            let pe = &store.pes[idx as usize];
            (pe.owner_prev, pe.owner_next)
        };
        let Some(list) = self.lists.get_mut(&home) else {
            return;
        };
        if prev == NIL {
            list.head = next;
        } else {
            store.pes[prev as usize].owner_next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            store.pes[next as usize].owner_prev = prev;
        }
        list.count -= 1;
        list.sum -= sub;
        if list.count == 0 {
            self.lists.remove(&home);
        }
        let pe = &mut store.pes[idx as usize];
        pe.owner_prev = NIL;
        pe.owner_next = NIL;
    }

    /// The checksum over the PEs `owner` owns (0xFFFF if none).
    pub(crate) fn checksum(&self, owner: u32) -> u16 {
        checksum::finish(self.lists.get(&owner).map_or(0, |l| l.sum))
    }

    /// How many PEs `owner` owns.
    pub(crate) fn count(&self, owner: u32) -> usize {
        self.lists.get(&owner).map_or(0, |l| l.count as usize)
    }
}
