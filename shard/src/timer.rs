//! A hashed timer wheel holding at most a few entries per PE.
//!
//! Entries are PE indexes; the PE record holds its real deadline (`due`), so
//! an entry is only a hint that the PE may be due in that slot. Rescheduling
//! adds a new entry and leaves the old one to be discarded when its slot is
//! reached (the shard checks `due` before acting). Deadlines beyond the
//! wheel's horizon wait in a heap and move into the wheel as it turns.
//! A bitmap of non-empty slots makes the next deadline cheap to find.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Time;

const SLOTS: usize = 1024;

/// Wheel granularity in microseconds.
pub(crate) const GRANULARITY_US: u64 = 10_000;

/// "No timer" in a PE's 32-bit deadline.
pub(crate) const NO_TICK: u32 = u32::MAX;

/// Deadlines are kept in PE records as 32-bit tick numbers that wrap every
/// 497 days; they are compared with wrapping arithmetic, which is exact as
/// long as no deadline is more than 248 days away (the shard caps them well
/// below that and re-arms when a capped deadline comes).
pub(crate) struct Tick;

impl Tick {
    /// The tick at which a deadline `t` is reached (rounded up).
    pub(crate) fn of(t: Time) -> u32 {
        let tick = t.0.div_ceil(GRANULARITY_US) as u32;
        if tick == NO_TICK {
            tick.wrapping_add(1)
        } else {
            tick
        }
    }

    /// Whether `due` has been reached at time `now`.
    pub(crate) fn reached(due: u32, now: Time) -> bool {
        let now_tick = (now.0 / GRANULARITY_US) as u32;
        due != NO_TICK && now_tick.wrapping_sub(due) as i32 >= 0
    }

    /// Longest time ahead a deadline may be set (124 days).
    pub(crate) const MAX_AHEAD_US: u64 = (1 << 30) * GRANULARITY_US;
}
const WORDS: usize = SLOTS / 64;

/// The wheel.
#[derive(Debug)]
pub(crate) struct Wheel {
    slots: Vec<Vec<u32>>,
    occupied: [u64; WORDS],
    /// Slot width in microseconds.
    granularity: u64,
    /// The next tick to be processed.
    cursor: u64,
    in_slots: usize,
    overflow: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Wheel {
    pub(crate) fn new(granularity_us: u64) -> Self {
        Self {
            slots: vec![Vec::new(); SLOTS],
            occupied: [0; WORDS],
            granularity: granularity_us.max(1),
            cursor: 0,
            in_slots: 0,
            overflow: BinaryHeap::new(),
        }
    }

    fn put(&mut self, tick: u64, idx: u32) {
        let s = (tick % SLOTS as u64) as usize;
        let slot = &mut self.slots[s];
        if slot.len() == slot.capacity() {
            // Grow by an eighth, not double: a slot keeps its capacity from
            // one turn to the next, and a burst of registrations fills a few
            // slots with a hundred thousand PEs each.
            slot.reserve_exact((slot.len() / 8).max(16));
        }
        slot.push(idx);
        self.occupied[s / 64] |= 1 << (s % 64);
        self.in_slots += 1;
    }

    /// Makes sure `idx` is looked at no earlier than `due` (and not much later).
    pub(crate) fn schedule(&mut self, due: Time, idx: u32) {
        if due == Time::NEVER {
            return;
        }
        let tick = due.0.div_ceil(self.granularity).max(self.cursor);
        if tick < self.cursor + SLOTS as u64 {
            self.put(tick, idx);
        } else {
            self.overflow.push(Reverse((tick, idx)));
        }
    }

    /// Moves every entry whose slot is at or before `now` into `out`.
    pub(crate) fn expire(&mut self, now: Time, out: &mut Vec<u32>) {
        let now_tick = now.0 / self.granularity;
        while self.cursor <= now_tick {
            if self.in_slots == 0 {
                // An empty wheel: skip ahead to where the next far deadline
                // fits in, or past `now` if nothing is due before it.
                let Some(&Reverse((tick, _))) = self.overflow.peek() else {
                    self.cursor = now_tick + 1;
                    return;
                };
                let fits_from = tick.saturating_sub(SLOTS as u64 - 1);
                if fits_from > now_tick {
                    self.cursor = now_tick + 1;
                    return;
                }
                self.cursor = self.cursor.max(fits_from);
                self.refill();
            }
            let s = (self.cursor % SLOTS as u64) as usize;
            if self.occupied[s / 64] & (1 << (s % 64)) != 0 {
                self.in_slots -= self.slots[s].len();
                out.append(&mut self.slots[s]);
                self.occupied[s / 64] &= !(1 << (s % 64));
            }
            self.cursor += 1;
            self.refill();
        }
    }

    fn refill(&mut self) {
        while let Some(&Reverse((tick, idx))) = self.overflow.peek() {
            if tick >= self.cursor + SLOTS as u64 {
                break;
            }
            self.overflow.pop();
            self.put(tick.max(self.cursor), idx);
        }
    }

    /// The earliest time at which `expire` could return something.
    pub(crate) fn next_deadline(&self) -> Option<Time> {
        if self.in_slots > 0 {
            let start = (self.cursor % SLOTS as u64) as usize;
            for step in 0..=WORDS {
                let w = (start / 64 + step) % WORDS;
                let mut bits = self.occupied[w];
                if step == 0 {
                    bits &= !0u64 << (start % 64);
                } else if step == WORDS {
                    bits &= !(!0u64 << (start % 64));
                }
                if bits != 0 {
                    let s = w * 64 + bits.trailing_zeros() as usize;
                    let ahead = (s + SLOTS - start) % SLOTS;
                    return Some(Time((self.cursor + ahead as u64) * self.granularity));
                }
            }
        }
        self.overflow
            .peek()
            .map(|Reverse((t, _))| Time(t * self.granularity))
    }

    /// Entries held (stale ones included).
    pub(crate) fn len(&self) -> usize {
        self.in_slots + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every entry comes out no earlier than its deadline and no later than
        /// one granule after it, whatever the schedule and the polling steps.
        #[test]
        fn entries_fire_within_one_granule(
            deadlines in proptest::collection::vec(0u64..50_000_000, 1..100),
            steps in proptest::collection::vec(1u64..3_000_000, 1..200),
        ) {
            let g = 10_000;
            let mut w = Wheel::new(g);
            for (i, d) in deadlines.iter().enumerate() {
                w.schedule(Time(*d), i as u32);
            }
            let mut now = 0u64;
            let mut fired = vec![None; deadlines.len()];
            let mut out = Vec::new();
            for s in steps.iter().chain(std::iter::repeat_n(&1_000_000, 60)) {
                // The next deadline is never later than the earliest pending
                // entry's (rounded up to its granule).
                let pending = deadlines.iter().zip(&fired).filter(|(_, f)| f.is_none()).map(|(d, _)| *d).min();
                match (pending, w.next_deadline()) {
                    (None, n) => prop_assert_eq!(n, None),
                    (Some(d), Some(n)) => prop_assert!(n.0 <= d.div_ceil(g).max(now / g + 1) * g),
                    (Some(_), None) => prop_assert!(false, "pending entry but no deadline"),
                }
                now += s;
                out.clear();
                w.expire(Time(now), &mut out);
                for &i in &out {
                    prop_assert!(fired[i as usize].is_none());
                    fired[i as usize] = Some(now);
                }
            }
            for (i, d) in deadlines.iter().enumerate() {
                let f = fired[i].expect("every entry fires");
                prop_assert!(f >= *d, "fired at {} before deadline {}", f, d);
            }
            prop_assert_eq!(w.len(), 0);
        }
    }

    #[test]
    fn next_deadline_finds_the_earliest() {
        let mut w = Wheel::new(1000);
        assert_eq!(w.next_deadline(), None);
        w.schedule(Time(20_500_000), 1); // beyond the horizon
        assert_eq!(w.next_deadline(), Some(Time(20_500_000)));
        w.schedule(Time(5_000), 2);
        assert_eq!(w.next_deadline(), Some(Time(5_000)));
        let mut out = Vec::new();
        w.expire(Time(5_000), &mut out);
        assert_eq!(out, vec![2]);
        assert_eq!(w.next_deadline(), Some(Time(20_500_000)));
        out.clear();
        w.expire(Time(20_500_000), &mut out);
        assert_eq!(out, vec![1]);
    }
}
