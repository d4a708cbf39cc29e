//! [`Shard`]: one shard of the handlespace as a deterministic state machine.
//!
//! # Methods, by kind
//!
//! * **Requests with an immediate answer** append the encoded ASAP response to
//!   a caller-owned buffer: [`Shard::handle_registration`],
//!   [`Shard::handle_deregistration`], [`Shard::handle_resolution`].
//! * **Inputs without an answer**: [`Shard::handle_keep_alive_ack`],
//!   [`Shard::handle_unreachable`], [`Shard::handle_association_lost`], and
//!   from the replication side [`Shard::apply_update`] and [`Shard::rehome`].
//! * **Time**: [`Shard::handle_timeout`] runs due timers (keep-alives,
//!   keep-alive timeouts, lifetime expiry), at most a bounded batch per call;
//!   [`Shard::poll_timeout`] says when to call it next.
//! * **Outputs** the shard produces on its own, polled by the caller:
//!   [`Shard::poll_transmit`] (ASAP messages to PEs: keep-alives, unsolicited
//!   deregistration responses) and [`Shard::poll_event`] (replication events).
//! * **Queries**: [`Shard::checksum`], [`Shard::fill_table`], counts, stats.
//!
//! Poll order after any input: drain `poll_transmit`, drain `poll_event`,
//! then re-arm the timer from `poll_timeout`.
//!
//! Time is always an argument; the shard reads no clock and does no I/O.

use std::net::IpAddr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rserpool_wire::asap::{
    Deregistration, DeregistrationResponse, EndpointKeepAlive, EndpointKeepAliveAck,
    EndpointUnreachable, HandleResolution, HandleResolutionResponse, Registration,
    RegistrationResponse,
};
use rserpool_wire::enrp::{HandleUpdate, UpdateAction};
use rserpool_wire::{
    AsapMessage, AsapType, Cause, CauseCode, Encode, OperationError, PeId, Policy, PolicyParam,
    PoolElement, PoolHandle, Seq, ServerId, Transport, TransportKind, TransportUse, Writer,
    param_type,
};

use crate::addr;
use crate::config::{Config, LifeUnit};
use crate::owners::Owners;
use crate::pipeline::{Prefetch, Target};
use crate::policy::{Kind, PolicyState};
use crate::store::{MAX_PES, NEVER_SECS, NIL, Pe, Store};
use crate::time::Time;
use crate::timer::{GRANULARITY_US, NO_TICK, Tick, Wheel};

/// Timers processed per [`Shard::handle_timeout`] call at most.
const TIMER_BATCH: usize = 4096;

/// How many due timers ahead [`Shard::handle_timeout`] prefetches.
const DUE_AHEAD: usize = 12;

/// An association (or TCP connection) a request arrived on, as the shell
/// knows it.
#[derive(Clone, Copy, Debug)]
pub struct Association<'a> {
    /// The shell's handle for it; opaque to the shard, never 0.
    pub id: u64,
    /// SCTP, or TCP (our extension for PEs).
    pub transport: TransportKind,
    /// The peer's addresses (all of them, for SCTP).
    pub addrs: &'a [IpAddr],
    /// The peer's port.
    pub port: u16,
}

/// What a registration did (the response is already in the buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// A new PE joined (and maybe created its pool).
    Added,
    /// An existing PE was updated.
    Updated,
    /// Refused with this cause.
    Rejected(CauseCode),
}

/// An ASAP message the shard wants sent to a PE.
#[derive(Debug)]
pub struct Transmit<'a> {
    /// The association to send on.
    pub to: u64,
    /// One encoded ASAP message.
    pub bytes: &'a [u8],
}

/// Something the replication side must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A PE this registrar owns was added or changed (`AddPe`) or removed
    /// (`DelPe`): group-cast an ENRP_HANDLE_UPDATE. `bytes` holds the Pool
    /// Handle parameter followed by the Pool Element parameter, exactly the
    /// tail of the Handle Update after its action field.
    Update {
        /// Add or delete.
        action: UpdateAction,
        /// Pool Handle and Pool Element parameters.
        bytes: Box<[u8]>,
    },
    /// A PE became ours by takeover: send it a keep-alive with the H bit at
    /// its ASAP transport. `bytes` as for `Update`. If no ack arrives within
    /// the keep-alive timeout, the PE is removed.
    Adopted {
        /// Pool Handle and Pool Element parameters.
        bytes: Box<[u8]>,
    },
    /// A PE on this association missed its keep-alive ack: abort the
    /// association (as RSPLIB does); its other PEs leave with it once the
    /// shell reports the loss.
    AbortAssociation(u64),
}

/// Why a PE left (counted in [`Stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Removal {
    Deregistered,
    KeepAliveTimeout,
    Expired,
    Unreachable,
    AssociationLost,
    Peer,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Registrations granted (new or update).
    pub registrations: u64,
    /// Registrations refused.
    pub registrations_rejected: u64,
    /// Deregistrations answered.
    pub deregistrations: u64,
    /// Handle resolutions answered with PEs.
    pub resolutions: u64,
    /// Handle resolutions for unknown pools.
    pub resolutions_unknown: u64,
    /// Keep-alives sent.
    pub keep_alives_sent: u64,
    /// PEs removed for a missing keep-alive ack.
    pub keep_alive_timeouts: u64,
    /// PEs removed because their registration life ran out.
    pub expired: u64,
    /// PEs removed after Endpoint Unreachable reports.
    pub unreachable_removed: u64,
    /// PEs removed because their association went away.
    pub association_removed: u64,
}

/// A position in a handle-table listing (see [`Shard::fill_table`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCursor {
    started: bool,
    owner: u32,
    last_idx: u32,
    last_oseq: u32,
    done: bool,
}

impl TableCursor {
    /// Whether the listing is complete.
    pub const fn is_done(&self) -> bool {
        self.done
    }
}

/// One shard of the handlespace. See the module documentation.
#[derive(Debug)]
pub struct Shard {
    cfg: Config,
    store: Store,
    owners: Owners,
    /// First PE of each association, found by the association id stored in
    /// that PE (the table holds slab indexes only).
    assocs: crate::index::PoolIndex,
    hasher: ahash::RandomState,
    wheel: Wheel,
    rng: SmallRng,
    due: Vec<u32>,
    outbox: Vec<u8>,
    transmits: std::collections::VecDeque<(u64, u32, u32)>,
    events: std::collections::VecDeque<Event>,
    selected: Vec<u32>,
    addr_scratch: Vec<IpAddr>,
    enc_scratch: Vec<u8>,
    stats: Stats,
}

/// The Registration Response to `reg`: an acceptance, or a rejection with
/// `error`.
fn registration_response<'a>(
    reg: &Registration<'a>,
    error: Option<OperationError<'a>>,
) -> AsapMessage<'a> {
    AsapMessage::RegistrationResponse(RegistrationResponse {
        reject: error.is_some(),
        pool_handle: reg.pool_handle,
        pe_id: reg.element.id,
        error,
    })
}

fn push_msg(out: &mut Vec<u8>, m: &impl Encode) {
    // An error is only reachable with values the shard never builds; the
    // message is dropped rather than sent as garbage.
    let _ = m.append_to(out);
}

/// Why a registration is refused, and what the cause carries.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// A cause without information.
    Plain(CauseCode),
    /// 0x5 with the pool's policy (the first member's policy parameter).
    Policy(u32),
    /// 0x7 with a transport of the pool's type (the first member's).
    Transport(u32),
}

const fn be16(b: &[u8], at: usize) -> usize {
    ((b[at] as usize) << 8) | b[at + 1] as usize
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Where a stored PE's user transport and policy parameters are: `(start,
/// len)` of each, inside `enc` (header 4 + fixed 12 = 16 bytes first).
fn pe_params(enc: &[u8]) -> ((usize, usize), (usize, usize)) {
    let user = (16, be16(enc, 18));
    let p = 16 + pad4(user.1);
    (user, (p, be16(enc, p + 2)))
}

impl Shard {
    /// A new, empty shard.
    pub fn new(cfg: Config) -> Self {
        let mut store = Store::default();
        store.compat = cfg.selection;
        Self {
            store,
            owners: Owners::default(),
            assocs: crate::index::PoolIndex::default(),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            wheel: Wheel::new(GRANULARITY_US),
            rng: SmallRng::seed_from_u64(cfg.seed),
            due: Vec::new(),
            outbox: Vec::new(),
            transmits: std::collections::VecDeque::new(),
            events: std::collections::VecDeque::new(),
            selected: Vec::new(),
            addr_scratch: Vec::new(),
            enc_scratch: Vec::new(),
            stats: Stats::default(),
            cfg,
        }
    }

    /// Stages of the prefetch pipeline (see [`Shard::prefetch`]).
    pub const PREFETCH_STAGES: usize = crate::store::PREFETCH_STAGES;

    /// Asks the CPU to fetch, in the background, memory that a request on
    /// `target` will touch. A pure hint: no state changes, and any answer is
    /// the same with or without it.
    ///
    /// At large handlespaces a request's loads come from main memory and
    /// depend on each other (index slot, pool record, its handle and
    /// members, its selection array, then for a resolution the PEs and their
    /// bytes, for a request about one PE its index slot, its record and its
    /// neighbours), so the stages go one level deeper each:
    /// `stage` *k* (0 to [`Shard::PREFETCH_STAGES`] - 1) reads what stage
    /// *k* - 1 asked for and asks for the next level. Run stage *k* for a
    /// request a little while after stage *k* - 1 for it (a request or two
    /// later), and the request itself after the last stage: that is what
    /// [`Shard::pipelined`] does for a batch.
    pub fn prefetch(&self, target: Target<'_>, stage: usize) {
        // What the earlier stages found, found again (cheap once their lines
        // are in the cache).
        let mut ahead = self.store.ahead(target.handle, target.pe, stage);
        if stage > 0 {
            ahead.assoc_hash = self.hasher.hash_one(target.assoc);
        }
        self.prefetch_step(target, &mut ahead, stage);
    }

    /// One prefetch stage for a request on `target`, as
    /// [`Shard::prefetch`], keeping what the stages found in `state` (one
    /// per request, fresh for stage 0) so that no stage repeats the work of
    /// the one before. [`crate::pipeline::pipeline`] runs these for a batch.
    pub fn prefetch_step(&self, target: Target<'_>, state: &mut Prefetch, stage: usize) {
        if target.pe == 0 || stage <= 3 {
            self.store.prefetch(target.handle, state, stage);
        }
        if target.pe != 0 {
            self.store
                .prefetch_pe(target.pe, target.removes, state, stage);
        }
        if target.assoc != 0 && stage < 2 {
            // The association's list head: its index slot, then its record.
            if stage == 0 {
                state.assoc_hash = self.hasher.hash_one(target.assoc);
                if let Some(slot) = self.assocs.home(state.assoc_hash) {
                    crate::prefetch::line(slot);
                }
            } else {
                for c in self.assocs.candidates(state.assoc_hash).take(2) {
                    if let Some(pe) = self.store.pes.get(c as usize) {
                        crate::prefetch::span(pe, size_of::<Pe>());
                    }
                }
            }
        }
    }

    /// Runs `run` on each of `items` in order, with the prefetch stages for
    /// the items ahead of it interleaved (see [`crate::pipeline::pipeline`]).
    /// `target` says what an item will touch (`None`: nothing to prefetch).
    /// The results are exactly those of running `run` on the items in order.
    pub fn pipelined<'t, T>(
        &mut self,
        items: &'t [T],
        distance: usize,
        target: impl Fn(&'t T) -> Option<Target<'t>>,
        mut run: impl FnMut(&mut Self, &'t T),
    ) {
        // Each item's target, asked for once (at its stage 0).
        let mut targets = [None; crate::pipeline::RING];
        crate::pipeline::pipeline(
            self,
            items.len(),
            distance,
            |s, j, state, stage| {
                let t = &mut targets[j & (crate::pipeline::RING - 1)];
                if stage == 0 {
                    *t = target(&items[j]);
                }
                if let Some(t) = *t {
                    s.prefetch_step(t, state, stage);
                }
            },
            |s, j| run(s, &items[j]),
        );
    }

    /// The configuration.
    pub const fn config(&self) -> &Config {
        &self.cfg
    }

    /// Counters since creation.
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of pools.
    pub fn pool_count(&self) -> usize {
        self.store.pool_count
    }

    /// Number of PEs.
    pub fn pe_count(&self) -> usize {
        self.store.pe_count()
    }

    /// Entries in the timer wheel (stale ones included): for memory
    /// accounting and metrics.
    pub fn timer_entries(&self) -> usize {
        self.wheel.len()
    }

    /// Number of PEs `owner` owns.
    pub fn owned_count(&self, owner: ServerId) -> usize {
        self.owners.count(owner.0)
    }

    /// The handlespace checksum over the PEs `owner` owns in this shard
    /// (RFC 5353 §3.6). To combine shards, add their [`Shard::checksum_sum`]s
    /// and fold with [`crate::checksum::finish`].
    pub fn checksum(&self, owner: ServerId) -> u16 {
        self.owners.checksum(owner.0)
    }

    /// The unfolded word sum behind [`Shard::checksum`].
    pub fn checksum_sum(&self, owner: ServerId) -> u64 {
        self.owners.lists.get(&owner.0).map_or(0, |l| l.sum)
    }

    /// The owners of PEs in this shard, ascending.
    pub fn owners(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.owners.lists.keys().map(|&o| ServerId(o))
    }

    /// When a registration of `life` made at `now` expires, in whole seconds
    /// (rounded up: a PE may outlive its life by up to a second).
    fn life_to_deadline(&self, now: Time, life: u32) -> u32 {
        if life == u32::MAX {
            return NEVER_SECS;
        }
        let us = match self.cfg.life_unit {
            LifeUnit::Millis => u64::from(life) * 1_000,
            LifeUnit::Seconds => u64::from(life) * 1_000_000,
        };
        let secs = now.0.saturating_add(us).div_ceil(1_000_000);
        u32::try_from(secs)
            .unwrap_or(NEVER_SECS - 1)
            .min(NEVER_SECS - 1)
    }

    fn next_keep_alive(&mut self, now: Time) -> Time {
        let base = u64::try_from(self.cfg.keep_alive_interval.as_micros()).unwrap_or(u64::MAX);
        let j = u64::try_from(self.cfg.keep_alive_jitter.as_micros())
            .unwrap_or(0)
            .min(base);
        let offset = if j == 0 {
            base
        } else {
            base - j + self.rng.random_range(0..=2 * j)
        };
        Time(now.0.saturating_add(offset))
    }

    fn owned(&self, idx: u32) -> bool {
        self.store.pe_home(idx) == self.cfg.server_id.0
    }

    /// Re-arms a PE's timer at the earlier of `next` and (where it applies)
    /// its expiry, at most [`Tick::MAX_AHEAD_US`] after `now`. `owned`:
    /// whether we are the PE's home (the caller knows; reading it again
    /// from the stored bytes would cost a lookup per timer).
    fn arm(&mut self, now: Time, idx: u32, next: Time, owned: bool) {
        debug_assert_eq!(owned, self.owned(idx));
        let pe = &mut self.store.pes[idx as usize];
        let expiry = if (owned && !self.cfg.expire_owned) || pe.expires == NEVER_SECS {
            Time::NEVER
        } else {
            Time::from_secs(u64::from(pe.expires))
        };
        let due = next.min(expiry);
        if due == Time::NEVER {
            pe.due = NO_TICK;
            return;
        }
        let due = due.min(Time(now.0.saturating_add(Tick::MAX_AHEAD_US)));
        pe.due = Tick::of(due);
        self.wheel.schedule(due, idx);
    }

    // ----------------------------------------------------------- registration

    /// ASAP_REGISTRATION from a PE (RFC 5352 §3.1, server side). Appends the
    /// ASAP_REGISTRATION_RESPONSE to `out`.
    ///
    /// Checks, in RSPLIB's order: PE id not 0; policy known; usable user
    /// addresses left after filtering by scope and by the association's
    /// addresses (else 0x3); then against an existing pool the transport type
    /// (0x7, with a transport of the pool's type), the data/control
    /// configuration (0x8) and the policy type (0x5, with the pool's policy);
    /// then resource limits (0x6). A known (pool, PE id) is a
    /// re-registration: it replaces the PE and takes it over.
    pub fn handle_registration(
        &mut self,
        now: Time,
        from: &Association<'_>,
        reg: &Registration<'_>,
        out: &mut Vec<u8>,
    ) -> RegistrationOutcome {
        let refusal = match self.register(now, from, reg) {
            Ok(outcome) => {
                self.stats.registrations += 1;
                push_msg(out, &registration_response(reg, None));
                return outcome;
            }
            Err(refusal) => refusal,
        };
        self.stats.registrations_rejected += 1;
        // The cause's information (built only here: a zeroed buffer on
        // every registration was a measurable part of accepted ones).
        let mut info = [0u8; 256];
        let (code, n) = match refusal {
            Refusal::Plain(code) => (code, 0),
            Refusal::Policy(pool) | Refusal::Transport(pool) => {
                let first = self.store.pools[pool as usize]
                    .members()
                    .next()
                    .unwrap_or(NIL);
                let enc = self.store.pe_bytes(first);
                let (user, policy) = pe_params(enc);
                let ((at, len), code) = match refusal {
                    Refusal::Policy(_) => (policy, CauseCode::INCONSISTENT_POLICY),
                    _ => (user, CauseCode::INCONSISTENT_TRANSPORT),
                };
                let len = len.min(info.len());
                info[..len].copy_from_slice(&enc[at..at + len]);
                (code, len)
            }
        };
        let causes = [Cause::with_bytes(code, &info[..n])];
        push_msg(
            out,
            &registration_response(reg, Some(OperationError::new(&causes))),
        );
        RegistrationOutcome::Rejected(code)
    }

    fn register(
        &mut self,
        now: Time,
        from: &Association<'_>,
        reg: &Registration<'_>,
    ) -> Result<RegistrationOutcome, Refusal> {
        let el = &reg.element;
        if el.id.0 == 0 {
            return Err(Refusal::Plain(CauseCode::INVALID_VALUES));
        }
        let PolicyParam::Known(policy) = el.policy else {
            return Err(Refusal::Plain(CauseCode::INVALID_VALUES));
        };
        let user = &el.user_transport;
        self.addr_scratch.clear();
        for a in user.addresses.iter() {
            if addr::usable(
                a,
                from.addrs,
                self.cfg.min_address_scope,
                self.cfg.require_address_subset,
            ) && !self.addr_scratch.contains(&a)
            {
                self.addr_scratch.push(a);
            }
        }
        if self.addr_scratch.is_empty() && user.kind != TransportKind::Opaque {
            return Err(Refusal::Plain(CauseCode::INVALID_VALUES));
        }
        let handle = reg.pool_handle.as_bytes();
        let (pool, existing) = self.store.find_pool_pe(handle, el.id.0);
        if let Some(p) = pool {
            let pl = &self.store.pools[p as usize];
            if pl.transport != user.kind {
                return Err(Refusal::Transport(p));
            }
            if matches!(user.kind, TransportKind::Sctp | TransportKind::Tcp)
                && pl.transport_use() != Some(user.transport_use)
            {
                return Err(Refusal::Plain(CauseCode::INCONSISTENT_DATA_CONTROL));
            }
            if pl.policy_type() != policy.policy_type() {
                return Err(Refusal::Policy(p));
            }
        }
        if existing.is_none() {
            let full = self.store.pe_count() >= self.cfg.max_pes.min(MAX_PES)
                || pool.map_or(self.store.pool_count >= self.cfg.max_pools, |p| {
                    self.store.members(p).len() >= self.cfg.max_pes_per_pool
                });
            if full {
                return Err(Refusal::Plain(CauseCode::LACK_OF_RESOURCES));
            }
        }
        // The PE as we store and replicate it: filtered user addresses, our
        // id as home, the association as its ASAP transport.
        let addrs = std::mem::take(&mut self.addr_scratch);
        let stored = PoolElement {
            id: el.id,
            home_server: self.cfg.server_id,
            registration_life: el.registration_life,
            user_transport: Transport {
                addresses: Seq::from_items(&addrs),
                ..*user
            },
            policy: el.policy,
            asap_transport: Some(Transport::sctp(
                from.port,
                TransportUse::DATA_ONLY,
                from.addrs,
            )),
        };
        let encoded = encode_pe(&stored, &mut self.enc_scratch);
        self.addr_scratch = addrs;
        let Some((n, asap_off)) = encoded else {
            return Err(Refusal::Plain(CauseCode::INVALID_VALUES));
        };
        let enc = std::mem::take(&mut self.enc_scratch);
        let vals = values(&policy);
        // A re-registration by a PE we own, on the association it used,
        // stays where it is in the owner's list (whose checksum does not
        // change: same handle, same id) and in the association's list.
        let (mut relink_owner, mut relink_assoc) = (true, true);
        let (idx, outcome) = match existing {
            Some(idx) => {
                relink_owner = !self.owned(idx);
                relink_assoc = self.store.pes[idx as usize].assoc != from.id;
                if relink_owner {
                    self.owners.unlink(&mut self.store, idx);
                }
                if relink_assoc {
                    self.assoc_unlink(idx);
                }
                self.store.set_bytes(idx, &enc[..n]);
                let pe = &mut self.store.pes[idx as usize];
                pe.asap_off = asap_off;
                pe.clear_bad_reports();
                self.store.update_values(idx, vals);
                (idx, RegistrationOutcome::Updated)
            }
            None => {
                let p = match pool {
                    Some(p) => p,
                    None => self
                        .store
                        .create_pool(handle, policy.policy_type(), user.kind),
                };
                (
                    self.store.insert_pe(new_pe(asap_off, p), vals, &enc[..n]),
                    RegistrationOutcome::Added,
                )
            }
        };
        self.enc_scratch = enc;
        let expires = self.life_to_deadline(now, el.registration_life);
        let pe = &mut self.store.pes[idx as usize];
        pe.expires = expires;
        pe.set_ka_waiting(false);
        if relink_owner {
            self.owners.link(&mut self.store, idx);
        }
        if relink_assoc {
            self.assoc_link(idx, from.id);
        }
        let next = self.next_keep_alive(now);
        self.arm(now, idx, next, true);
        self.replicate(UpdateAction::AddPe, idx);
        Ok(outcome)
    }

    // --------------------------------------------------------- deregistration

    /// ASAP_DEREGISTRATION (RFC 5352 §3.2). An unknown PE is a success. A PE
    /// this registrar owns may only be removed over the association it
    /// registered on (RFC 5355 §5 and RFC 5352 §9: no deregistration by
    /// proxy); others get cause 0xA. RSPLIB accepts any association.
    pub fn handle_deregistration(
        &mut self,
        _now: Time,
        from: &Association<'_>,
        d: &Deregistration<'_>,
        out: &mut Vec<u8>,
    ) {
        self.stats.deregistrations += 1;
        let mut refused = false;
        if let Some(idx) = self.find(d.pool_handle, d.pe_id) {
            if self.owned(idx) && self.store.pes[idx as usize].assoc != from.id {
                refused = true;
            } else {
                self.remove(idx, Removal::Deregistered);
            }
        }
        let causes = [Cause::new(CauseCode::SECURITY)];
        push_msg(
            out,
            &AsapMessage::DeregistrationResponse(DeregistrationResponse {
                pool_handle: d.pool_handle,
                pe_id: d.pe_id,
                error: refused.then(|| OperationError::new(&causes)),
            }),
        );
    }

    // ------------------------------------------------------ handle resolution

    /// ASAP_HANDLE_RESOLUTION (RFC 5352 §3.3). Appends the response: a policy
    /// parameter (a copy of the first selected PE's, as RSPLIB sends and its
    /// PUs require) and the PEs the pool's policy selects, without their ASAP
    /// transports; or cause 0x9 for an unknown pool. The stored PE bytes are
    /// copied as they are: nothing is encoded per PE.
    pub fn handle_resolution(&mut self, _now: Time, hr: &HandleResolution<'_>, out: &mut Vec<u8>) {
        let Some(pool) = self.store.find_pool(hr.pool_handle.as_bytes()) else {
            self.stats.resolutions_unknown += 1;
            let causes = [Cause::new(CauseCode::UNKNOWN_POOL_HANDLE)];
            push_msg(
                out,
                &AsapMessage::HandleResolutionResponse(HandleResolutionResponse {
                    accept: false,
                    pool_handle: hr.pool_handle,
                    policy: None,
                    elements: Seq::empty(),
                    error: Some(OperationError::new(&causes)),
                }),
            );
            return;
        };
        self.stats.resolutions += 1;
        let wanted = match hr.option {
            Some(o) if o.items != 0 => o.items,
            _ => self.cfg.default_items,
        }
        .min(self.cfg.max_items) as usize;
        let kind = self.store.pools[pool as usize].kind;
        let inc = if self.cfg.max_increment == 0 {
            kind.default_max_increment()
        } else {
            self.cfg.max_increment
        };
        let mut selected = std::mem::take(&mut self.selected);
        selected.clear();
        self.store
            .select(pool, wanted, inc, &mut self.rng, &mut selected);

        let pes = &self.store.pes;
        let bound = 4
            + 36
            + 24
            + selected
                .iter()
                .map(|&i| usize::from(pes[i as usize].asap_off))
                .sum::<usize>();
        let start = out.len();
        out.resize(start + bound, 0);
        let mut w = Writer::new(&mut out[start..]);
        let m = w.begin_message(
            AsapType::HandleResolutionResponse.code(),
            0,
            "Handle Resolution Response",
        );
        hr.pool_handle.emit(&mut w);
        match selected.first() {
            Some(&first) => {
                let enc = self.store.pe_bytes(first);
                let (_, (at, len)) = pe_params(enc);
                w.put_param_bytes(&enc[at..at + len]);
            }
            None => pool_policy(kind).emit(&mut w),
        }
        for &i in &selected {
            // The stored PE minus its trailing ASAP transport: same bytes,
            // shorter length (the policy before it is 4-byte aligned).
            let asap_off = pes[i as usize].asap_off;
            w.put_u16(param_type::POOL_ELEMENT);
            w.put_u16(asap_off);
            w.put_bytes(&self.store.pe_bytes(i)[4..usize::from(asap_off)]);
        }
        w.end_message(m);
        let n = w.finish().unwrap_or(0);
        out.truncate(start + n);
        self.selected = selected;
    }

    // ------------------------------------------------------------ keep-alive

    /// ASAP_ENDPOINT_KEEP_ALIVE_ACK from a PE, on association `from`. An ack
    /// for an adopted PE without an association attaches it to `from`.
    pub fn handle_keep_alive_ack(
        &mut self,
        now: Time,
        from: &Association<'_>,
        ack: &EndpointKeepAliveAck<'_>,
    ) {
        let Some(idx) = self.find(ack.pool_handle, ack.pe_id) else {
            return;
        };
        if !self.owned(idx) {
            return;
        }
        if self.store.pes[idx as usize].assoc == 0 {
            self.assoc_link(idx, from.id);
        }
        self.store.pes[idx as usize].set_ka_waiting(false);
        let next = self.next_keep_alive(now);
        self.arm(now, idx, next, true);
    }

    /// ASAP_ENDPOINT_UNREACHABLE from a PU or PE (RFC 5352 §3.5). Like
    /// RSPLIB, the PE is removed once the reports reach the threshold (no
    /// probe first); the count restarts at the PE's next registration. Rate
    /// limiting reporters is the caller's job.
    pub fn handle_unreachable(&mut self, _now: Time, eu: &EndpointUnreachable<'_>) {
        let Some(idx) = self.find(eu.pool_handle, eu.pe_id) else {
            return;
        };
        let pe = &mut self.store.pes[idx as usize];
        pe.add_bad_report();
        if pe.bad_reports() >= self.cfg.max_bad_pe_reports.min(0x7f) {
            self.remove(idx, Removal::Unreachable);
        }
    }

    /// The association `assoc` is gone: every PE registered on it leaves.
    pub fn handle_association_lost(&mut self, _now: Time, assoc: u64) {
        while let Some(head) = self.assoc_head(assoc) {
            self.remove(head, Removal::AssociationLost);
        }
    }

    fn find(&self, handle: PoolHandle<'_>, id: PeId) -> Option<u32> {
        self.store.find_pool_pe(handle.as_bytes(), id.0).1
    }

    // ------------------------------------------------------------ replication

    /// An ENRP_HANDLE_UPDATE from peer `from` (RFC 5353 §3.3). ADD_PE adds
    /// or replaces the PE, which the peer now owns (an update claiming this
    /// registrar as owner is ignored, as RSPLIB does); its lifetime timer
    /// restarts. DEL_PE removes it unless it has moved to this registrar.
    /// Updates that would break a pool's consistency are ignored.
    pub fn apply_update(&mut self, now: Time, from: ServerId, upd: &HandleUpdate<'_>) {
        let handle = upd.pool_handle.as_bytes();
        let el = &upd.element;
        let (pool, existing) = self.store.find_pool_pe(handle, el.id.0);
        if upd.action == UpdateAction::DelPe {
            if let Some(idx) = existing {
                if !self.owned(idx) {
                    self.remove(idx, Removal::Peer);
                }
            }
            return;
        }
        let home = if el.home_server.0 == 0 {
            from.0
        } else {
            el.home_server.0
        };
        let PolicyParam::Known(policy) = el.policy else {
            return;
        };
        if home == self.cfg.server_id.0 {
            return;
        }
        if let Some(p) = pool {
            let pl = &self.store.pools[p as usize];
            if pl.policy_type() != policy.policy_type() || pl.transport != el.user_transport.kind {
                return;
            }
        }
        let stored = PoolElement {
            home_server: ServerId(home),
            ..*el
        };
        let Some((n, asap_off)) = encode_pe(&stored, &mut self.enc_scratch) else {
            return;
        };
        let enc = std::mem::take(&mut self.enc_scratch);
        let vals = values(&policy);
        let idx = match existing {
            Some(idx) => {
                self.detach_owner_and_assoc(idx);
                self.store.set_bytes(idx, &enc[..n]);
                let pe = &mut self.store.pes[idx as usize];
                pe.asap_off = asap_off;
                pe.set_ka_waiting(false);
                self.store.update_values(idx, vals);
                idx
            }
            None => {
                if self.store.pe_count() >= self.cfg.max_pes.min(MAX_PES) {
                    self.enc_scratch = enc;
                    return;
                }
                let p = match pool {
                    Some(p) => p,
                    None => {
                        self.store
                            .create_pool(handle, policy.policy_type(), el.user_transport.kind)
                    }
                };
                self.store.insert_pe(new_pe(asap_off, p), vals, &enc[..n])
            }
        };
        self.enc_scratch = enc;
        self.store.pes[idx as usize].expires = self.life_to_deadline(now, el.registration_life);
        self.owners.link(&mut self.store, idx);
        self.arm(now, idx, Time::NEVER, false);
    }

    /// Takeover (RFC 5353 §3.5): every PE owned by `from` is now owned by
    /// `to`. When `to` is this registrar, each PE is announced with
    /// [`Event::Adopted`] (so the shell sends it a keep-alive with the H bit)
    /// and must ack within the keep-alive timeout or leave, as in RSPLIB.
    pub fn rehome(&mut self, now: Time, from: ServerId, to: ServerId) {
        let Some(list) = self.owners.lists.get(&from.0).copied() else {
            return;
        };
        let mut moved = Vec::with_capacity(list.count as usize);
        let mut idx = list.head;
        while idx != NIL {
            moved.push(idx);
            idx = self.store.pes[idx as usize].owner_next;
        }
        for idx in moved {
            self.owners.unlink(&mut self.store, idx);
            self.store.pe_bytes_mut(idx)[8..12].copy_from_slice(&to.0.to_be_bytes());
            self.owners.link(&mut self.store, idx);
            if to == self.cfg.server_id {
                self.events.push_back(Event::Adopted {
                    bytes: self.handle_and_pe(idx),
                });
                self.store.pes[idx as usize].set_ka_waiting(true);
                let t = now + self.cfg.keep_alive_timeout;
                self.arm(now, idx, t, true);
            }
        }
    }

    /// Writes pool entries (a Pool Handle, then Pool Elements with their ASAP
    /// transports) for the PEs owned by `owner`, or all PEs if `None`, into
    /// `w`, resuming at `cursor`, at most `max_pes` PEs. Order: by owner id,
    /// then the order PEs joined that owner; stable between calls, so a
    /// Handle Table Response can be sent in chunks (RFC 5353 §3.2.3, flag M).
    /// Returns how many PEs were written; `cursor.is_done()` says whether the
    /// listing is complete.
    pub fn fill_table(
        &self,
        owner: Option<ServerId>,
        cursor: &mut TableCursor,
        max_pes: usize,
        w: &mut Writer<'_>,
    ) -> usize {
        let mut written = 0;
        let mut last_pool = NIL;
        let range = match owner {
            Some(o) => o.0..=o.0,
            None => 0..=u32::MAX,
        };
        let from = if cursor.started {
            cursor.owner.max(*range.start())
        } else {
            *range.start()
        };
        for (&o, list) in self.owners.lists.range(from..=*range.end()) {
            let mut idx = if cursor.started && o == cursor.owner && cursor.last_idx != NIL {
                match self.store.pes.get(cursor.last_idx as usize) {
                    Some(pe)
                        if pe.pool != NIL
                            && pe.oseq == cursor.last_oseq
                            && self.store.pe_home(cursor.last_idx) == o =>
                    {
                        pe.owner_next
                    }
                    _ => {
                        let mut i = list.head;
                        while i != NIL && self.store.pes[i as usize].oseq <= cursor.last_oseq {
                            i = self.store.pes[i as usize].owner_next;
                        }
                        i
                    }
                }
            } else {
                list.head
            };
            while idx != NIL {
                if written == max_pes {
                    return written;
                }
                let pe = &self.store.pes[idx as usize];
                if pe.pool != last_pool {
                    if let Some(h) = PoolHandle::new(self.store.pools[pe.pool as usize].handle()) {
                        h.emit(w);
                    }
                    last_pool = pe.pool;
                }
                w.put_param_bytes(self.store.pe_bytes(idx));
                written += 1;
                *cursor = TableCursor {
                    started: true,
                    owner: o,
                    last_idx: idx,
                    last_oseq: pe.oseq,
                    done: false,
                };
                idx = pe.owner_next;
            }
            if o == u32::MAX {
                break;
            }
            // This owner is finished: continue with the next one from its head.
            *cursor = TableCursor {
                started: true,
                owner: o + 1,
                last_idx: NIL,
                last_oseq: 0,
                done: false,
            };
        }
        cursor.done = true;
        written
    }

    // ------------------------------------------------------------------ time

    /// When [`Shard::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.due.is_empty() {
            self.wheel.next_deadline()
        } else {
            Some(Time::ZERO)
        }
    }

    /// Runs the timers due at `now`, at most a bounded batch. Returns `true`
    /// if more are due: call again (after serving other work).
    pub fn handle_timeout(&mut self, now: Time) -> bool {
        if self.due.is_empty() {
            self.wheel.expire(now, &mut self.due);
            self.due.reverse();
        }
        for _ in 0..TIMER_BATCH {
            self.prefetch_due();
            let Some(idx) = self.due.pop() else { break };
            let live = self
                .store
                .pes
                .get(idx as usize)
                .is_some_and(|pe| pe.pool != NIL && Tick::reached(pe.due, now));
            if live {
                self.fire(now, idx);
            }
        }
        !self.due.is_empty()
    }

    /// Prefetches for the timers about to fire, one level deeper the
    /// nearer a timer is: the PE record of the one [`DUE_AHEAD`] places
    /// ahead, the pool record of the one two thirds as far (its PE record
    /// was asked for then), and that pool's handle and the PE's stored id
    /// and home of the one a third as far (a keep-alive names handle and id;
    /// the home says whether we own it). The due list is known in advance, so at large
    /// handlespaces the misses of successive timers overlap instead of each
    /// keep-alive waiting for three in turn.
    fn prefetch_due(&self) {
        let n = self.due.len();
        let at = |ahead: usize| {
            let i = n.checked_sub(ahead + 1)?;
            self.due
                .get(i)
                .and_then(|&idx| self.store.pes.get(idx as usize))
        };
        if let Some(pe) = at(DUE_AHEAD) {
            crate::prefetch::span(pe, size_of::<Pe>());
        }
        if let Some(pool) =
            at(DUE_AHEAD * 2 / 3).and_then(|pe| self.store.pools.get(pe.pool as usize))
        {
            crate::prefetch::line(pool);
        }
        if let Some(pe) = at(DUE_AHEAD / 3) {
            self.store.prefetch_head_and_ids(pe);
        }
    }

    fn fire(&mut self, now: Time, idx: u32) {
        let owned = self.owned(idx);
        let pe = &self.store.pes[idx as usize];
        let expired = pe.expires != NEVER_SECS && Time::from_secs(u64::from(pe.expires)) <= now;
        if expired && (!owned || self.cfg.expire_owned) {
            if owned && pe.assoc != 0 {
                // RFC 5352 §3.2: tell the PE. (RSPLIB never does, and its PEs
                // abort on unsolicited responses: `expire_owned` is off by
                // default.)
                let assoc = pe.assoc;
                self.queue_for(idx, assoc, false);
            }
            self.remove(idx, Removal::Expired);
            return;
        }
        if !owned {
            // Learnt from a peer: only its lifetime applies.
            self.arm(now, idx, Time::NEVER, false);
            return;
        }
        let assoc = pe.assoc;
        if pe.ka_waiting() {
            if assoc != 0 {
                self.events.push_back(Event::AbortAssociation(assoc));
            }
            self.remove(idx, Removal::KeepAliveTimeout);
        } else if assoc != 0 {
            self.queue_for(idx, assoc, true);
            self.store.pes[idx as usize].set_ka_waiting(true);
            let t = now + self.cfg.keep_alive_timeout;
            self.arm(now, idx, t, true);
        } else {
            self.arm(now, idx, Time::NEVER, true);
        }
    }

    /// Queues a keep-alive (or, with `keep_alive` false, an unsolicited
    /// deregistration response) for PE `idx` on `assoc`.
    fn queue_for(&mut self, idx: u32, assoc: u64, keep_alive: bool) {
        let pe = &self.store.pes[idx as usize];
        let Some(h) = PoolHandle::new(self.store.pools[pe.pool as usize].handle()) else {
            return;
        };
        let pe_id = PeId(self.store.pe_id(idx));
        let m = if keep_alive {
            self.stats.keep_alives_sent += 1;
            AsapMessage::EndpointKeepAlive(EndpointKeepAlive {
                home: false,
                server_id: self.cfg.server_id,
                pool_handle: h,
                pe_id: Some(pe_id),
            })
        } else {
            AsapMessage::DeregistrationResponse(DeregistrationResponse {
                pool_handle: h,
                pe_id,
                error: None,
            })
        };
        let start = self.outbox.len();
        push_msg(&mut self.outbox, &m);
        let len = self.outbox.len() - start;
        self.transmits.push_back((assoc, start as u32, len as u32));
    }

    // --------------------------------------------------------------- outputs

    /// The next ASAP message to send to a PE.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let Some((to, start, len)) = self.transmits.pop_front() else {
            self.outbox.clear();
            return None;
        };
        Some(Transmit {
            to,
            bytes: &self.outbox[start as usize..(start + len) as usize],
        })
    }

    /// The next replication (or association) event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------- internals

    fn handle_and_pe(&self, idx: u32) -> Box<[u8]> {
        let pe = &self.store.pes[idx as usize];
        let h = self.store.pools[pe.pool as usize].handle();
        let enc = self.store.pe_bytes(idx);
        let mut v = Vec::with_capacity(4 + pad4(h.len()) + enc.len());
        v.extend_from_slice(&param_type::POOL_HANDLE.to_be_bytes());
        v.extend_from_slice(&((4 + h.len()) as u16).to_be_bytes());
        v.extend_from_slice(h);
        v.resize(4 + pad4(h.len()), 0);
        v.extend_from_slice(enc);
        v.into_boxed_slice()
    }

    /// Queues an ENRP update for PE `idx` if replication is on. A DEL_PE for a
    /// PE owned elsewhere carries this registrar as home, as RSPLIB sends it.
    fn replicate(&mut self, action: UpdateAction, idx: u32) {
        if !self.cfg.replicate {
            return;
        }
        let owned = self.owned(idx);
        if !owned && action == UpdateAction::AddPe {
            return;
        }
        let mut bytes = self.handle_and_pe(idx);
        if !owned {
            let at = bytes.len() - self.store.pe_bytes(idx).len() + 8;
            bytes[at..at + 4].copy_from_slice(&self.cfg.server_id.0.to_be_bytes());
        }
        self.events.push_back(Event::Update { action, bytes });
    }

    fn assoc_head(&self, assoc: u64) -> Option<u32> {
        let pes = &self.store.pes;
        self.assocs.find(self.hasher.hash_one(assoc), |i| {
            pes[i as usize].assoc == assoc
        })
    }

    /// Makes `idx` the head of `assoc`'s list.
    fn assoc_link(&mut self, idx: u32, assoc: u64) {
        if assoc == 0 {
            return;
        }
        let h = self.hasher.hash_one(assoc);
        let Self {
            assocs,
            store,
            hasher,
            ..
        } = self;
        let old = assocs
            .find(h, |i| store.pes[i as usize].assoc == assoc)
            .unwrap_or(NIL);
        let pe = &mut store.pes[idx as usize];
        pe.assoc = assoc;
        pe.assoc_next = old;
        if old == NIL {
            let pes = &store.pes;
            assocs.insert(h, idx, |i| hasher.hash_one(pes[i as usize].assoc));
        } else {
            assocs.replace(h, old, idx);
        }
    }

    fn assoc_unlink(&mut self, idx: u32) {
        let assoc = self.store.pes[idx as usize].assoc;
        if assoc == 0 {
            return;
        }
        let next = self.store.pes[idx as usize].assoc_next;
        let h = self.hasher.hash_one(assoc);
        let Self { assocs, store, .. } = self;
        match assocs.find(h, |i| store.pes[i as usize].assoc == assoc) {
            Some(head) if head == idx => {
                if next == NIL {
                    assocs.remove(h, idx);
                } else {
                    assocs.replace(h, idx, next);
                }
            }
            Some(head) => {
                // Walk from the head to the predecessor.
                let mut i = head;
                while store.pes[i as usize].assoc_next != idx
                    && store.pes[i as usize].assoc_next != NIL
                {
                    i = store.pes[i as usize].assoc_next;
                }
                store.pes[i as usize].assoc_next = next;
            }
            None => {}
        }
        let pe = &mut store.pes[idx as usize];
        pe.assoc = 0;
        pe.assoc_next = NIL;
    }

    fn detach_owner_and_assoc(&mut self, idx: u32) {
        self.owners.unlink(&mut self.store, idx);
        self.assoc_unlink(idx);
    }

    fn remove(&mut self, idx: u32, why: Removal) {
        match why {
            Removal::KeepAliveTimeout => self.stats.keep_alive_timeouts += 1,
            Removal::Expired => self.stats.expired += 1,
            Removal::Unreachable => self.stats.unreachable_removed += 1,
            Removal::AssociationLost => self.stats.association_removed += 1,
            Removal::Deregistered | Removal::Peer => {}
        }
        // Learnt PEs expire silently; everything else is news for the peers.
        let expired_learnt = why == Removal::Expired && !self.owned(idx);
        if why != Removal::Peer && !expired_learnt {
            self.replicate(UpdateAction::DelPe, idx);
        }
        self.detach_owner_and_assoc(idx);
        self.store.remove_pe(idx);
    }

    /// Checks every index, every list and every checksum against a
    /// recomputation from scratch (tests; O(size)).
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.store.check()?;
        let mut total = 0;
        for (&owner, list) in &self.owners.lists {
            let mut i = list.head;
            let mut n = 0;
            let mut prev_oseq = None;
            let mut pairs = Vec::new();
            while i != NIL {
                let pe = &self.store.pes[i as usize];
                if pe.pool == NIL || self.store.pe_home(i) != owner {
                    return Err(format!("pe {i} in list of {owner:#x} has another home"));
                }
                if prev_oseq.is_some_and(|p| p >= pe.oseq) {
                    return Err("ownership list out of order".into());
                }
                prev_oseq = Some(pe.oseq);
                pairs.push((
                    self.store.pools[pe.pool as usize].handle().to_vec(),
                    self.store.pe_id(i),
                ));
                n += 1;
                i = pe.owner_next;
            }
            if n != list.count {
                return Err(format!(
                    "owner {owner:#x}: {n} linked, count {}",
                    list.count
                ));
            }
            let want =
                crate::checksum::from_scratch(pairs.iter().map(|(h, id)| (h.as_slice(), *id)));
            if want != self.owners.checksum(owner) {
                return Err(format!(
                    "owner {owner:#x}: checksum {:#x} != {want:#x}",
                    self.owners.checksum(owner)
                ));
            }
            total += n as usize;
        }
        if total != self.store.pe_count() {
            return Err(format!(
                "{total} PEs in owner lists, {} in store",
                self.store.pe_count()
            ));
        }
        let mut in_assocs = 0;
        for head in self.assocs.iter() {
            let a = self.store.pes[head as usize].assoc;
            if self.assoc_head(a) != Some(head) {
                return Err(format!("association {a} not found from its head"));
            }
            let mut i = head;
            while i != NIL {
                let pe = &self.store.pes[i as usize];
                if pe.assoc != a {
                    return Err(format!("association list {a} broken at pe {i}"));
                }
                in_assocs += 1;
                i = pe.assoc_next;
            }
        }
        let attached = self
            .store
            .pes
            .iter()
            .filter(|pe| pe.pool != NIL && pe.assoc != 0)
            .count();
        if attached != in_assocs {
            return Err(format!(
                "{attached} PEs have an association, {in_assocs} are listed"
            ));
        }
        Ok(())
    }
}

fn new_pe(asap_off: u16, pool: u32) -> Pe {
    Pe {
        asap_off,
        pool,
        slot: 0,
        status: 0,
        stamp: 0,
        st: PolicyState::default(),
        assoc: 0,
        due: NO_TICK,
        expires: NEVER_SECS,
        owner_prev: NIL,
        owner_next: NIL,
        oseq: 0,
        assoc_next: NIL,
    }
}

/// The policy parameter of an empty selection: the pool's type, zero values.
fn pool_policy(kind: Kind) -> PolicyParam<'static> {
    let n = Policy::field_names(kind.0).map_or(0, <[_]>::len);
    match Policy::from_values(kind.0, &[0u32; 4][..n]) {
        Some(p) => PolicyParam::Known(p),
        None => PolicyParam::Unknown {
            policy_type: kind.0,
            data: &[],
        },
    }
}

fn values(p: &Policy) -> [u32; 4] {
    let mut v = [0u32; 4];
    let vals = p.values();
    v[..vals.as_slice().len()].copy_from_slice(vals.as_slice());
    v
}

/// Encodes a PE for storage into the start of `scratch`
/// ([`Encode::encode_over`]: nothing zeroed again per PE); returns the
/// encoding's length and the offset of its ASAP transport (its end if it has
/// none).
fn encode_pe(el: &PoolElement<'_>, scratch: &mut Vec<u8>) -> Option<(usize, u16)> {
    let n = el.encode_over(scratch).ok()?;
    // Stored slots are at most 64 KiB - 1 wide (see `store::Pool`).
    u16::try_from(n).ok()?;
    let asap_off = match el.asap_transport {
        Some(_) => {
            let (_, (p, pl)) = pe_params(&scratch[..n]);
            p + pad4(pl)
        }
        None => n,
    };
    Some((n, u16::try_from(asap_off).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_wire::asap::HandleResolution;

    /// A shard that accepts loopback-scope and private addresses.
    fn shard() -> Shard {
        Shard::new(Config {
            min_address_scope: addr::Scope::Loopback,
            ..Config::default()
        })
    }

    /// PE `id` registering with Round Robin pool `p` over SCTP on `addrs`.
    fn rr_registration(id: u32, addrs: &[IpAddr]) -> Registration<'_> {
        Registration {
            pool_handle: PoolHandle::new(b"p").unwrap(),
            element: PoolElement {
                id: PeId(id),
                home_server: ServerId(0),
                registration_life: 1000,
                user_transport: Transport::sctp(7, TransportUse::DATA_ONLY, addrs),
                policy: Policy::RoundRobin {}.into(),
                asap_transport: None,
            },
        }
    }

    /// SCTP association `id` from `addrs`, port 9.
    fn sctp_assoc(id: u64, addrs: &[IpAddr]) -> Association<'_> {
        Association {
            id,
            transport: TransportKind::Sctp,
            addrs,
            port: 9,
        }
    }

    #[test]
    fn sequence_numbers_renumber_before_wrapping() {
        let mut s = shard();
        let addrs = [IpAddr::from([10, 0, 0, 1])];
        for id in 1..=4u32 {
            let (reg, a) = (rr_registration(id, &addrs), sctp_assoc(1, &addrs));
            s.handle_registration(Time::ZERO, &a, &reg, &mut Vec::new());
        }
        let pool = s.store.find_pool(b"p").unwrap();
        s.store.set_next_seq(pool, u32::MAX - 2);
        let hr = HandleResolution {
            subscribe: false,
            pool_handle: PoolHandle::new(b"p").unwrap(),
            option: None,
        };
        let mut firsts = Vec::new();
        for _ in 0..8 {
            let mut out = Vec::new();
            s.handle_resolution(Time::ZERO, &hr, &mut out);
            let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out).unwrap() else {
                panic!()
            };
            firsts.push(r.elements.iter().next().unwrap().id.0);
            s.check_invariants().unwrap();
        }
        // Round robin carries on through the renumbering.
        assert_eq!(firsts, [1, 2, 3, 4, 1, 2, 3, 4]);
        assert!(s.store.pools[pool as usize].next_seq < 100, "renumbered");
    }

    /// The prefetch stages of a weighted pool's resolution see the PEs it
    /// will draw: with nothing changed in between, a resolution answers
    /// exactly the members `foreseen` named (when they are distinct), in a
    /// pool with no sums (10) and one with two levels of them (300).
    #[test]
    fn weighted_draws_are_foreseen() {
        for size in [10u32, 300] {
            let mut s = shard();
            let addrs = [IpAddr::from([10, 0, 0, 1])];
            for id in 1..=size {
                let mut reg = rr_registration(id, &addrs);
                reg.element.policy = Policy::RandomizedLeastUsed {
                    load: id.wrapping_mul(0x9e37_79b9),
                }
                .into();
                s.handle_registration(Time::ZERO, &sctp_assoc(1, &addrs), &reg, &mut Vec::new());
            }
            let pool = s.store.find_pool(b"p").unwrap();
            let hr = HandleResolution {
                subscribe: false,
                pool_handle: PoolHandle::new(b"p").unwrap(),
                option: None,
            };
            let mut compared = 0;
            for round in 0..60 {
                let seen = s.store.foreseen(pool);
                assert_eq!(seen.len(), if round == 0 { 0 } else { 3 }, "size {size}");
                let ids: Vec<u32> = seen
                    .iter()
                    .map(|&i| {
                        let b = s.store.pe_bytes(i);
                        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
                    })
                    .collect();
                let mut out = Vec::new();
                s.handle_resolution(Time::ZERO, &hr, &mut out);
                let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out).unwrap()
                else {
                    panic!()
                };
                let got: Vec<u32> = r.elements.iter().map(|e| e.id.0).collect();
                assert_eq!(got.len(), 3);
                let distinct =
                    ids.len() == 3 && ids[0] != ids[1] && ids[0] != ids[2] && ids[1] != ids[2];
                if distinct {
                    assert_eq!(got, ids, "size {size}, round {round}");
                    compared += 1;
                }
            }
            assert!(
                compared >= 25,
                "size {size}: only {compared} comparable rounds"
            );
            s.check_invariants().unwrap();
        }
    }

    /// `encode_pe` reuses its scratch without zeroing it: a short PE
    /// encoded after a long one must still be stored exactly as encoded
    /// afresh, with nothing of the long one's bytes.
    #[test]
    fn a_short_pe_after_a_long_one_is_stored_exactly() {
        let mut s = shard();
        let many: Vec<IpAddr> = (1..=40u8).map(|i| IpAddr::from([10, 0, 1, i])).collect();
        let one = [IpAddr::from([10, 0, 2, 1])];
        for (id, addrs, assoc) in [(1u32, &many[..], 1u64), (2, &one[..], 2), (1, &one[..], 3)] {
            let (reg, a) = (rr_registration(id, addrs), sctp_assoc(assoc, addrs));
            let mut out = Vec::new();
            let outcome = s.handle_registration(Time::ZERO, &a, &reg, &mut out);
            assert!(
                !matches!(outcome, RegistrationOutcome::Rejected(_)),
                "PE {id} with {} addresses: {outcome:?}",
                addrs.len()
            );
            let idx = s.find(reg.pool_handle, reg.element.id).unwrap();
            let want = PoolElement {
                home_server: s.cfg.server_id,
                asap_transport: Some(Transport::sctp(9, TransportUse::DATA_ONLY, addrs)),
                ..reg.element
            }
            .to_vec()
            .unwrap();
            assert_eq!(
                s.store.pe_bytes(idx),
                &want[..],
                "PE {id} with {} addresses",
                addrs.len()
            );
            s.check_invariants().unwrap();
        }
    }
}
