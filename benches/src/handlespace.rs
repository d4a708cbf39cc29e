//! Fixtures for the handlespace shard benchmarks (`benches/shard.rs`,
//! `benches/shard_memory.rs`): a population of `n` PEs in pools of `p`,
//! one IPv4 address and one association each, and the requests those PEs
//! and their users send, built from indexes without allocating.
//!
//! PE number `j` (0-based) has PE id `j + 1`, association id `j + 1`, the
//! address `10.0.0.0 + j + 1` on both its user transport and its
//! association, and (if `j < n`) lives in pool `j / p`, named
//! `pool-NNNNNNN`.

use std::net::{IpAddr, Ipv4Addr};

use rserpool_shard::{Association, Config, RegistrationOutcome, Shard, Target, Time};
use rserpool_wire::asap::{Deregistration, EndpointKeepAliveAck, HandleResolution, Registration};
use rserpool_wire::{
    HandleResolutionOption, PeId, Policy, PoolElement, PoolHandle, ServerId, Transport,
    TransportKind, TransportUse,
};

/// The pool policies the benchmarks use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyChoice {
    /// Round Robin: ordered family, no values.
    RoundRobin,
    /// Least Used with Degradation: ordered family, adaptive (load).
    LeastUsedDegradation,
    /// Randomized Least Used: weighted family, adaptive (load).
    RandomizedLeastUsed,
}

impl PolicyChoice {
    /// Short name used in benchmark ids.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "rr",
            Self::LeastUsedDegradation => "lud",
            Self::RandomizedLeastUsed => "rlu",
        }
    }

    /// The policy parameter a PE registers with, for a given load.
    pub const fn policy(self, load: u32) -> Policy {
        match self {
            Self::RoundRobin => Policy::RoundRobin {},
            Self::LeastUsedDegradation => Policy::LeastUsedDegradation {
                load,
                load_degradation: 0x0100_0000,
            },
            Self::RandomizedLeastUsed => Policy::RandomizedLeastUsed { load },
        }
    }
}

/// Bytes of a pool name (`pool-` and seven digits).
const NAME_LEN: usize = 12;

/// One request's subject, prepared before it is timed: the PE and a copy of
/// its pool's handle. The copy is what a registrar core reads
/// the handle from, a message in the read buffer it just filled; reading
/// it from the population's table of every pool name instead (10^5 or 10^6
/// names, scattered) would add a cache miss per request that a registrar
/// does not have.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    /// The PE (0-based; PE id `pe + 1`). Unused by a resolution.
    pub pe: usize,
    name: [u8; NAME_LEN],
}

impl Req {
    /// The pool handle, as the request carries it.
    pub fn handle(&self) -> PoolHandle<'_> {
        PoolHandle::new(&self.name).expect("short handle")
    }
}

/// A load value that changes with `pe` and `round` (spread over the whole
/// 32-bit range).
pub const fn load_of(pe: usize, round: u64) -> u32 {
    ((pe as u64 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x2545_f491_4f6c_dd1d)
        >> 32) as u32
}

/// The `k`-th element of a fixed permutation of `0..n` (a multiplicative
/// stride by a prime that divides no `n` used here): consecutive `k` give
/// scattered, distinct values, as requests from many PEs would.
pub const fn scatter(k: u64, n: usize) -> usize {
    ((k % n as u64) * 2_654_435_761 % n as u64) as usize
}

/// The address of PE `pe` (user transport and association).
pub const fn addr(pe: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + pe as u32 + 1))
}

/// `n` PEs in pools of `pool_size` with one policy.
#[derive(Debug)]
pub struct Population {
    pes: usize,
    pool_size: usize,
    policy: PolicyChoice,
    names: Vec<u8>,
}

impl Population {
    /// The population (pool names are prepared here; nothing is registered).
    pub fn new(pes: usize, pool_size: usize, policy: PolicyChoice) -> Self {
        assert!(pes > 0 && pool_size > 0 && pes <= 9_999_999 * pool_size);
        let pools = pes.div_ceil(pool_size);
        let mut names = Vec::with_capacity(pools * NAME_LEN);
        for i in 0..pools {
            names.extend_from_slice(format!("pool-{i:07}").as_bytes());
        }
        Self {
            pes,
            pool_size,
            policy,
            names,
        }
    }

    /// The shard configuration: defaults (site-local scope and up, keep-alive
    /// every 5 s ± 0.5 s, replication off).
    pub fn config() -> Config {
        Config::default()
    }

    /// Number of PEs.
    pub const fn pes(&self) -> usize {
        self.pes
    }

    /// Number of pools.
    pub fn pools(&self) -> usize {
        self.names.len() / NAME_LEN
    }

    /// PEs per pool.
    pub const fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The pools' policy.
    pub const fn policy(&self) -> PolicyChoice {
        self.policy
    }

    /// The pool of one of the first `n` PEs.
    pub const fn pool_of(&self, pe: usize) -> usize {
        pe / self.pool_size
    }

    /// The handle of pool `pool`.
    pub fn handle(&self, pool: usize) -> PoolHandle<'_> {
        PoolHandle::new(&self.names[pool * NAME_LEN..(pool + 1) * NAME_LEN]).expect("short handle")
    }

    /// The request subject for PE `pe` in pool `pool` (a copy of the pool's
    /// handle; see [`Req`]).
    pub fn req(&self, pe: usize, pool: usize) -> Req {
        let mut name = [0; NAME_LEN];
        name.copy_from_slice(&self.names[pool * NAME_LEN..(pool + 1) * NAME_LEN]);
        Req { pe, name }
    }

    /// A shard holding every PE of the population, registered at time zero.
    pub fn build(&self) -> Shard {
        let mut s = Shard::new(Self::config());
        let mut out = Vec::with_capacity(256);
        for pe in 0..self.pes {
            out.clear();
            let req = self.req(pe, self.pool_of(pe));
            let o = self.register(&mut s, Time::ZERO, &req, load_of(pe, 0), &mut out);
            assert_eq!(o, RegistrationOutcome::Added);
        }
        assert_eq!(s.pe_count(), self.pes);
        s
    }

    /// PE `req.pe` sends an ASAP_REGISTRATION for the request's pool with
    /// `load` on its association; the response is appended to `out`.
    pub fn register(
        &self,
        s: &mut Shard,
        now: Time,
        req: &Req,
        load: u32,
        out: &mut Vec<u8>,
    ) -> RegistrationOutcome {
        let pe = req.pe;
        let addrs = [addr(pe)];
        let reg = Registration {
            pool_handle: req.handle(),
            element: PoolElement {
                id: PeId(pe as u32 + 1),
                home_server: ServerId(0),
                registration_life: 300_000,
                user_transport: Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, &addrs),
                policy: self.policy.policy(load).into(),
                asap_transport: None,
            },
        };
        s.handle_registration(now, &association(pe, &addrs), &reg, out)
    }

    /// PE `req.pe` sends an ASAP_DEREGISTRATION from the request's pool on
    /// its association.
    pub fn deregister(&self, s: &mut Shard, now: Time, req: &Req, out: &mut Vec<u8>) {
        let pe = req.pe;
        let addrs = [addr(pe)];
        let d = Deregistration {
            pool_handle: req.handle(),
            pe_id: PeId(pe as u32 + 1),
        };
        s.handle_deregistration(now, &association(pe, &addrs), &d, out);
    }

    /// A PU asks for `items` PEs of the request's pool.
    pub fn resolve(&self, s: &mut Shard, now: Time, req: &Req, items: u32, out: &mut Vec<u8>) {
        let hr = HandleResolution {
            subscribe: false,
            pool_handle: req.handle(),
            option: Some(HandleResolutionOption { items }),
        };
        s.handle_resolution(now, &hr, out);
    }

    /// What a registrar core tells the prefetch stages about a
    /// registration or deregistration `req`: the pool, the PE and its
    /// association.
    pub fn target(req: &Req) -> Target<'_> {
        Target::pe(&req.name, req.pe as u32 + 1, req.pe as u64 + 1)
    }

    /// What a registrar core tells the prefetch stages about a
    /// deregistration `req`: as [`Population::target`], and that the PE
    /// leaves its pool.
    pub fn removal_target(req: &Req) -> Target<'_> {
        Target::removal(&req.name, req.pe as u32 + 1, req.pe as u64 + 1)
    }

    /// What a registrar core tells the prefetch stages about a resolution
    /// `req`: the pool.
    pub fn pool_target(req: &Req) -> Target<'_> {
        Target::pool(&req.name)
    }

    /// What a registrar core tells the prefetch stages about a keep-alive
    /// ack `req`: the pool and the PE, not the association (an ack does not
    /// change its list).
    pub fn ack_target(req: &Req) -> Target<'_> {
        Target::pe(&req.name, req.pe as u32 + 1, 0)
    }

    /// PE `req.pe` acks a keep-alive on its association.
    pub fn ack(&self, s: &mut Shard, now: Time, req: &Req) {
        let pe = req.pe;
        let addrs = [addr(pe)];
        let ack = EndpointKeepAliveAck {
            pool_handle: req.handle(),
            pe_id: PeId(pe as u32 + 1),
        };
        s.handle_keep_alive_ack(now, &association(pe, &addrs), &ack);
    }

    /// Runs every timer due at `now`: the keep-alives are taken from
    /// `poll_transmit` and each PE (one of the first `n`) acks at once,
    /// with the pool handle its keep-alive carried (copied from the
    /// keep-alive's bytes, as a PE echoes it). `acks` is scratch space. With `pipeline` = (batch, distance) the
    /// acks go through [`Shard::pipelined`] `batch` at a time, as a
    /// registrar core handles the messages of one read. Returns how many
    /// keep-alives were sent.
    pub fn keep_alive_round(
        &self,
        s: &mut Shard,
        now: Time,
        acks: &mut Vec<Req>,
        pipeline: Option<(usize, usize)>,
    ) -> usize {
        let mut sent = 0;
        loop {
            let more = s.handle_timeout(now);
            while let Some(t) = s.poll_transmit() {
                let pe = (t.to - 1) as usize;
                let mut name = [0; NAME_LEN];
                // A keep-alive is header, Server Identifier (a 4-byte
                // field), Pool Handle, ...: seen from byte 4 on, the handle
                // is where `peek_pool_handle` looks for it.
                let h = t
                    .bytes
                    .get(4..)
                    .and_then(rserpool_wire::peek_pool_handle)
                    .expect("a keep-alive with its pool handle");
                name.copy_from_slice(h);
                acks.push(Req { pe, name });
            }
            sent += acks.len();
            match pipeline {
                None => {
                    for a in acks.iter() {
                        self.ack(s, now, a);
                    }
                }
                Some((batch, distance)) => {
                    for group in acks.chunks(batch.max(1)) {
                        s.pipelined(
                            group,
                            distance,
                            |a| Some(Self::ack_target(a)),
                            |s, a| self.ack(s, now, a),
                        );
                    }
                }
            }
            acks.clear();
            if !more {
                return sent;
            }
        }
    }

    /// A time step after which every PE's keep-alive is due again (interval
    /// plus jitter plus two timer granules), but none has timed out.
    pub fn keep_alive_step() -> std::time::Duration {
        let c = Self::config();
        c.keep_alive_interval + c.keep_alive_jitter + std::time::Duration::from_millis(20)
    }
}

/// PE `pe`'s association.
fn association(pe: usize, addrs: &[IpAddr]) -> Association<'_> {
    Association {
        id: pe as u64 + 1,
        transport: TransportKind::Sctp,
        addrs,
        port: 40_000 + (pe % 20_000) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_wire::AsapMessage;

    fn resolved(pop: &Population, s: &mut Shard, pool: usize, items: u32) -> Vec<u32> {
        let mut out = Vec::new();
        pop.resolve(s, Time::ZERO, &pop.req(0, pool), items, &mut out);
        let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out).unwrap() else {
            panic!("not a response")
        };
        r.elements.iter().map(|e| e.id.0).collect()
    }

    #[test]
    fn scatter_is_a_permutation() {
        for n in [1, 10, 1000, 100_000] {
            let mut seen = vec![false; n];
            for k in 0..n as u64 {
                let v = scatter(k, n);
                assert!(!seen[v], "{n}: {v} twice");
                seen[v] = true;
            }
        }
    }

    #[test]
    fn population_builds_and_answers() {
        for policy in [
            PolicyChoice::RoundRobin,
            PolicyChoice::LeastUsedDegradation,
            PolicyChoice::RandomizedLeastUsed,
        ] {
            for p in [1, 10, 1000] {
                let pop = Population::new(2000, p, policy);
                let mut s = pop.build();
                assert_eq!(s.pool_count(), pop.pools());
                assert_eq!(s.pe_count(), 2000);
                s.check_invariants().unwrap();
                let ids = resolved(&pop, &mut s, 1, 3);
                assert_eq!(ids.len(), p.min(3));
                for id in ids {
                    assert_eq!(pop.pool_of(id as usize - 1), 1);
                }
                assert_eq!(resolved(&pop, &mut s, 1, 128).len(), p.min(128));

                // Re-registration updates, deregistration removes, a fresh PE
                // joins an existing pool.
                let mut out = Vec::new();
                let (old, new) = (pop.req(5, pop.pool_of(5)), pop.req(2000, 1));
                let o = pop.register(&mut s, Time::ZERO, &old, 7, &mut out);
                assert_eq!(o, RegistrationOutcome::Updated);
                let o = pop.register(&mut s, Time::ZERO, &new, 7, &mut out);
                assert_eq!(o, RegistrationOutcome::Added);
                assert_eq!(s.pool_count(), pop.pools());
                pop.deregister(&mut s, Time::ZERO, &new, &mut out);
                pop.deregister(&mut s, Time::ZERO, &old, &mut out);
                assert_eq!(s.pe_count(), 1999);
                s.check_invariants().unwrap();
            }
        }
    }

    #[test]
    fn every_pe_gets_one_keep_alive_per_step() {
        let pop = Population::new(3000, 10, PolicyChoice::RoundRobin);
        let mut s = pop.build();
        let mut acks = Vec::new();
        let mut now = Time::ZERO;
        // Plain and pipelined acks alternate: a lost ack would time out.
        for round in 0..4 {
            now = now + Population::keep_alive_step();
            let pipeline = (round % 2 == 1).then_some((32, 1));
            assert_eq!(pop.keep_alive_round(&mut s, now, &mut acks, pipeline), 3000);
        }
        assert_eq!(s.pe_count(), 3000);
        assert_eq!(s.stats().keep_alive_timeouts, 0);
        s.check_invariants().unwrap();
    }
}
