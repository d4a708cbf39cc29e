//! Property tests: random operation sequences against a plain model.
//!
//! After every operation: the shard's own index checks pass (slabs, hash
//! indexes, selection structures, owner and association lists), every
//! owner's checksum equals a recomputation from scratch, the PE set equals
//! the model's (no PE lost or duplicated), resolutions return distinct PEs
//! of the asked pool, and a chunked handle-table listing returns every PE
//! exactly once.

mod common;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use rserpool_shard::{RegistrationOutcome, TableCursor, Time, checksum};
use rserpool_wire::asap::*;
use rserpool_wire::enrp::{HandleUpdate, UpdateAction};
use rserpool_wire::*;

const POOLS: [&str; 4] = ["a", "bb", "ccc", "EchoService"];

fn policy(i: u8, v: u32) -> Policy {
    match i % 8 {
        0 => Policy::RoundRobin {},
        1 => Policy::WeightedRoundRobin { weight: v % 5 + 1 },
        2 => Policy::Random {},
        3 => Policy::WeightedRandom { weight: v % 5 + 1 },
        4 => Policy::Priority { priority: v % 3 },
        5 => Policy::LeastUsed { load: v % 4 },
        6 => Policy::LeastUsedDegradation {
            load: v % 4,
            load_degradation: 1,
        },
        _ => Policy::RandomizedLeastUsed { load: v },
    }
}

#[derive(Clone, Debug)]
enum Op {
    Register {
        pool: usize,
        id: u32,
        assoc: u32,
        policy: u8,
        v: u32,
    },
    Deregister {
        pool: usize,
        id: u32,
        assoc: u32,
    },
    Resolve {
        pool: usize,
        n: u32,
    },
    Unreachable {
        pool: usize,
        id: u32,
    },
    AssocLost {
        assoc: u32,
    },
    PeerAdd {
        pool: usize,
        id: u32,
        policy: u8,
        v: u32,
    },
    PeerDel {
        pool: usize,
        id: u32,
    },
    Takeover,
    Silence,
}

fn op() -> impl Strategy<Value = Op> {
    let pool = 0..POOLS.len();
    let id = 1u32..30;
    prop_oneof![
        6 => (pool.clone(), id.clone(), 1u32..8, 0u8..8, any::<u32>())
            .prop_map(|(pool, id, assoc, policy, v)| Op::Register { pool, id, assoc, policy, v }),
        2 => (pool.clone(), id.clone(), 1u32..8).prop_map(|(pool, id, assoc)| Op::Deregister { pool, id, assoc }),
        4 => (pool.clone(), 0u32..6).prop_map(|(pool, n)| Op::Resolve { pool, n }),
        2 => (pool.clone(), id.clone()).prop_map(|(pool, id)| Op::Unreachable { pool, id }),
        1 => (1u32..8).prop_map(|assoc| Op::AssocLost { assoc }),
        3 => (pool.clone(), id.clone(), 0u8..8, any::<u32>())
            .prop_map(|(pool, id, policy, v)| Op::PeerAdd { pool, id, policy, v }),
        1 => (pool.clone(), id).prop_map(|(pool, id)| Op::PeerDel { pool, id }),
        1 => Just(Op::Takeover),
        1 => Just(Op::Silence),
    ]
}

/// The model: per (pool, id) the owner, association and unreachable count;
/// per pool the policy type.
#[derive(Default)]
struct Model {
    pes: BTreeMap<(usize, u32), (ServerId, u32, u8)>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut s = shard(|c| c.keep_alive_jitter = Duration::ZERO);
    let mut m = Model::default();
    let mut types: BTreeMap<usize, PolicyType> = BTreeMap::new();
    let mut now = Time::ZERO;
    let peer_addrs = [ip("10.9.9.9")];
    for op in ops {
        match op {
            Op::Register {
                pool,
                id,
                assoc,
                policy: p,
                v,
            } => {
                let pol = policy(p, v);
                let addrs = assoc_addrs(assoc);
                let user = Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, &addrs);
                let reg = Registration {
                    pool_handle: PoolHandle::new(POOLS[pool].as_bytes()).unwrap(),
                    element: PoolElement {
                        id: PeId(id),
                        home_server: ServerId(0),
                        registration_life: 1_000_000,
                        user_transport: user,
                        policy: pol.into(),
                        asap_transport: None,
                    },
                };
                let o = s.handle_registration(
                    now,
                    &common::assoc(assoc, &addrs),
                    &reg,
                    &mut Vec::new(),
                );
                let consistent = types.get(&pool).is_none_or(|t| *t == pol.policy_type());
                if consistent {
                    prop_assert!(!matches!(o, RegistrationOutcome::Rejected(_)), "{o:?}");
                    types.insert(pool, pol.policy_type());
                    // A registration restarts the unreachable count.
                    m.pes.insert((pool, id), (ME, assoc, 0));
                } else {
                    prop_assert_eq!(
                        o,
                        RegistrationOutcome::Rejected(CauseCode::INCONSISTENT_POLICY)
                    );
                }
            }
            Op::Deregister { pool, id, assoc } => {
                let d = Deregistration {
                    pool_handle: PoolHandle::new(POOLS[pool].as_bytes()).unwrap(),
                    pe_id: PeId(id),
                };
                let addrs = assoc_addrs(assoc);
                s.handle_deregistration(now, &common::assoc(assoc, &addrs), &d, &mut Vec::new());
                if let Some(&(owner, a, _)) = m.pes.get(&(pool, id)) {
                    if owner != ME || a == assoc {
                        m.pes.remove(&(pool, id));
                    }
                }
            }
            Op::Resolve { pool, n } => {
                let got = resolve(&mut s, POOLS[pool], n);
                let members: BTreeSet<u32> = m
                    .pes
                    .keys()
                    .filter(|(p, _)| *p == pool)
                    .map(|(_, id)| *id)
                    .collect();
                let uniq: BTreeSet<u32> = got.iter().copied().collect();
                prop_assert_eq!(uniq.len(), got.len(), "duplicate PE in {:?}", got);
                prop_assert!(uniq.is_subset(&members), "{:?} not in {:?}", got, members);
                let want = if n == 0 { 3 } else { n as usize };
                prop_assert_eq!(got.len(), want.min(members.len()));
            }
            Op::Unreachable { pool, id } => {
                let eu = EndpointUnreachable {
                    pool_handle: PoolHandle::new(POOLS[pool].as_bytes()).unwrap(),
                    pe_id: PeId(id),
                };
                s.handle_unreachable(now, &eu);
                if let Some(e) = m.pes.get_mut(&(pool, id)) {
                    e.2 += 1;
                    if e.2 >= 3 {
                        m.pes.remove(&(pool, id));
                    }
                }
            }
            Op::AssocLost { assoc } => {
                s.handle_association_lost(now, u64::from(assoc));
                m.pes
                    .retain(|_, (owner, a, _)| !(*owner == ME && *a == assoc));
            }
            Op::PeerAdd {
                pool,
                id,
                policy: p,
                v,
            } => {
                let pol = policy(p, v);
                let upd = HandleUpdate {
                    takeover_suggested: false,
                    sender: PEER,
                    receiver: ServerId(0),
                    action: UpdateAction::AddPe,
                    pool_handle: PoolHandle::new(POOLS[pool].as_bytes()).unwrap(),
                    element: PoolElement {
                        id: PeId(id),
                        home_server: PEER,
                        registration_life: 100_000_000,
                        user_transport: Transport::sctp(
                            7000,
                            TransportUse::DATA_PLUS_CONTROL,
                            &peer_addrs,
                        ),
                        policy: pol.into(),
                        asap_transport: Some(Transport::sctp(
                            1,
                            TransportUse::DATA_ONLY,
                            &peer_addrs,
                        )),
                    },
                };
                s.apply_update(now, PEER, &upd);
                if types.get(&pool).is_none_or(|t| *t == pol.policy_type()) {
                    types.insert(pool, pol.policy_type());
                    let bad = m.pes.get(&(pool, id)).map_or(0, |e| e.2);
                    m.pes.insert((pool, id), (PEER, 0, bad));
                }
            }
            Op::PeerDel { pool, id } => {
                let upd = HandleUpdate {
                    takeover_suggested: false,
                    sender: PEER,
                    receiver: ServerId(0),
                    action: UpdateAction::DelPe,
                    pool_handle: PoolHandle::new(POOLS[pool].as_bytes()).unwrap(),
                    element: PoolElement {
                        id: PeId(id),
                        home_server: PEER,
                        registration_life: 1,
                        user_transport: Transport::sctp(
                            7000,
                            TransportUse::DATA_PLUS_CONTROL,
                            &peer_addrs,
                        ),
                        policy: Policy::RoundRobin {}.into(),
                        asap_transport: None,
                    },
                };
                s.apply_update(now, PEER, &upd);
                if m.pes.get(&(pool, id)).is_some_and(|e| e.0 != ME) {
                    m.pes.remove(&(pool, id));
                }
            }
            Op::Takeover => {
                s.rehome(now, PEER, ME);
                for e in m.pes.values_mut() {
                    if e.0 == PEER {
                        // Adopted, without an association until it acks.
                        *e = (ME, 0, e.2);
                    }
                }
            }
            Op::Silence => {
                // 11 s without acks: every owned PE times out.
                // Step from deadline to deadline, as the shell does.
                let end = now + Duration::from_secs(11);
                while let Some(t) = s.poll_timeout().filter(|t| *t <= end) {
                    now = now.max(t);
                    s.handle_timeout(now);
                    while s.poll_transmit().is_some() {}
                }
                now = end;
                m.pes.retain(|_, e| e.0 != ME);
            }
        }
        // The pool loses its type when it empties.
        types.retain(|p, _| m.pes.keys().any(|(q, _)| q == p));
        while s.poll_event().is_some() {}

        s.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(s.pe_count(), m.pes.len());
        for owner in [ME, PEER] {
            let pairs: Vec<(&[u8], u32)> = m
                .pes
                .iter()
                .filter(|(_, e)| e.0 == owner)
                .map(|((p, id), _)| (POOLS[*p].as_bytes(), *id))
                .collect();
            prop_assert_eq!(
                s.checksum(owner),
                checksum::from_scratch(pairs.iter().copied())
            );
            prop_assert_eq!(s.owned_count(owner), pairs.len());
        }
    }
    // A chunked table transfer returns every PE exactly once.
    let mut cursor = TableCursor::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut listed = Vec::new();
    while !cursor.is_done() {
        let mut w = Writer::new(&mut buf);
        s.fill_table(None, &mut cursor, 4, &mut w);
        let len = w.finish().unwrap();
        let mut region = &buf[..len];
        let mut pool = None;
        while let Some((p, rest)) = Param::parse_prefix(region).unwrap() {
            match p {
                Param::PoolHandle(h) => {
                    pool = POOLS.iter().position(|n| n.as_bytes() == h.as_bytes())
                }
                Param::PoolElement(e) => listed.push((pool.unwrap(), e.id.0)),
                _ => prop_assert!(false, "unexpected parameter"),
            }
            region = rest;
        }
    }
    let set: BTreeSet<_> = listed.iter().copied().collect();
    prop_assert_eq!(set.len(), listed.len(), "a PE was listed twice");
    prop_assert_eq!(set, m.pes.keys().copied().collect::<BTreeSet<_>>());
    Ok(())
}

proptest! {
    // 128 cases by default; PROPTEST_CASES raises it for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]
    #[test]
    fn random_operations_keep_everything_consistent(ops in proptest::collection::vec(op(), 1..150)) {
        run(ops)?;
    }
}
