//! Running a batch of requests with their memory prefetched ahead of them
//! (see [`crate::Shard::prefetch_step`]).

use crate::store::{NIL, PREFETCH_STAGES};

/// Largest distance [`pipeline`] takes.
pub const MAX_DISTANCE: usize = 4;

/// Slots for the items in flight in [`pipeline`] (at most
/// `MAX_DISTANCE * PREFETCH_STAGES + 1`), a power of two so that an item's
/// slot is a mask away.
pub(crate) const RING: usize = (MAX_DISTANCE * PREFETCH_STAGES + 1).next_power_of_two();

/// What the prefetch stages found out about one request so far, so that no
/// stage computes again what an earlier one did: the hashes of its pool
/// handle, its association and its PE (stage 0), the first pool-index
/// candidates (stage 1) and its pool (stage 3). Start each request
/// with a fresh one ([`Prefetch::default`]) and hand the same one to each
/// of its stages.
#[derive(Clone, Copy, Debug)]
pub struct Prefetch {
    pub(crate) hash: u64,
    pub(crate) assoc_hash: u64,
    pub(crate) pe_hash: u64,
    pub(crate) cand: [u32; 2],
    pub(crate) pool: u32,
    /// The request's PE is not in its pool (stage 3 of a request about one
    /// PE): a registration will add it.
    pub(crate) new_pe: bool,
}

/// What a request will touch, as far as its prefetch stages can tell before
/// it is parsed: its pool and, for a request about one PE (registration,
/// deregistration, keep-alive ack, unreachable report), that PE and the
/// association it came on. See [`crate::Shard::prefetch_step`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Target<'a> {
    /// The pool handle.
    pub handle: &'a [u8],
    /// The PE's id (0: the request is about the pool, e.g. a handle
    /// resolution; 0 is no valid PE id).
    pub pe: u32,
    /// The association the request came on, for a registration or a
    /// deregistration, which update its list of PEs; 0 for any other
    /// request (a keep-alive ack's PE is on its list already), so that no
    /// stage fetches a list head the request never reads.
    pub assoc: u64,
    /// The request removes the PE (a deregistration): the pool's last
    /// member moves into its slot, so the stages fetch that member's bytes
    /// and record too.
    pub removes: bool,
}

impl<'a> Target<'a> {
    /// A request about pool `handle` as a whole (a handle resolution).
    pub const fn pool(handle: &'a [u8]) -> Self {
        Self {
            handle,
            pe: 0,
            assoc: 0,
            removes: false,
        }
    }

    /// A request about PE `pe` of pool `handle`, on association `assoc`.
    pub const fn pe(handle: &'a [u8], pe: u32, assoc: u64) -> Self {
        Self {
            handle,
            pe,
            assoc,
            removes: false,
        }
    }

    /// A deregistration of PE `pe` of pool `handle` on association `assoc`.
    pub const fn removal(handle: &'a [u8], pe: u32, assoc: u64) -> Self {
        Self {
            handle,
            pe,
            assoc,
            removes: true,
        }
    }
}

impl Default for Prefetch {
    fn default() -> Self {
        Self {
            hash: 0,
            assoc_hash: 0,
            pe_hash: 0,
            cand: [NIL; 2],
            pool: NIL,
            new_pe: false,
        }
    }
}

/// Runs `run(ctx, i)` for every item `i` in `0..items`, in order, with
/// `prefetch(ctx, j, state, stage)` interleaved for the items ahead: stage
/// *k* (of [`crate::Shard::PREFETCH_STAGES`]) runs for the item
/// `distance` × (stages - *k*) places ahead of the one being run, each item
/// keeping its own [`Prefetch`] state from stage to stage. `distance` is
/// clamped to 1..=[`MAX_DISTANCE`].
///
/// Prefetching never changes results: this runs exactly the `run` calls a
/// plain loop would, in the same order.
pub fn pipeline<C: ?Sized>(
    ctx: &mut C,
    items: usize,
    distance: usize,
    mut prefetch: impl FnMut(&C, usize, &mut Prefetch, usize),
    mut run: impl FnMut(&mut C, usize),
) {
    let d = distance.clamp(1, MAX_DISTANCE);
    let lag = d * PREFETCH_STAGES;
    let mut ring = [Prefetch::default(); RING];
    for i in 0..items + lag {
        for stage in 0..PREFETCH_STAGES {
            // Stage 0 runs `lag` items ahead of `run`, the last one `d`.
            let Some(j) = i.checked_sub(stage * d) else {
                break;
            };
            if j < items {
                let state = &mut ring[j & (RING - 1)];
                if stage == 0 {
                    *state = Prefetch::default();
                }
                prefetch(ctx, j, state, stage);
            }
        }
        if let Some(j) = i.checked_sub(lag) {
            run(ctx, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_in_order_after_all_its_stages() {
        for items in [0, 1, 2, 7, 40] {
            for distance in [0, 1, 2, 9] {
                let mut log: Vec<(usize, Option<usize>)> = Vec::new();
                let seen = std::cell::RefCell::new(Vec::new());
                pipeline(
                    &mut log,
                    items,
                    distance,
                    |_, j, _, stage| seen.borrow_mut().push((j, stage)),
                    |log, j| log.push((j, None)),
                );
                let runs: Vec<usize> = log.iter().map(|&(j, _)| j).collect();
                assert_eq!(runs, (0..items).collect::<Vec<_>>());
                let seen = seen.into_inner();
                for j in 0..items {
                    let stages: Vec<usize> = seen
                        .iter()
                        .filter(|&&(i, _)| i == j)
                        .map(|&(_, s)| s)
                        .collect();
                    assert_eq!(stages, (0..PREFETCH_STAGES).collect::<Vec<_>>(), "item {j}");
                }
            }
        }
    }
}
