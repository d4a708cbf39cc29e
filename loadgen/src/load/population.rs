//! The emulated population: pools, and PEs with their ids and ports, known
//! to every worker so that answers can be checked against it; plus the
//! answers an echo run hands to the cores.

use std::collections::{HashMap, HashSet};

use rserpool_client::{PeId, PoolHandleBuf};
use rserpool_wire::asap::{
    AsapMessage, DeregistrationResponse, HandleResolutionResponse, RegistrationResponse,
};
use rserpool_wire::{Encode, PoolElement, Seq, ServerId, Transport, TransportUse};

use super::config::Settings;
use super::rng::Rng;

/// One emulated PE.
#[derive(Clone, Debug)]
pub struct PeDesc {
    /// Its identifier (unique in the run).
    pub id: PeId,
    /// Index of its pool.
    pub pool: usize,
    /// The user-transport port it registers.
    pub port: u16,
}

/// Pools and PEs of a run.
#[derive(Debug)]
pub struct Population {
    /// Pool handles.
    pub pools: Vec<PoolHandleBuf>,
    /// PEs, by index.
    pub pes: Vec<PeDesc>,
    by_id: HashMap<u32, usize>,
    /// Per pool, a Handle Resolution Response listing up to `items` of its
    /// PEs (what an echo run hands the PU cores).
    pub canned: Vec<Vec<u8>>,
}

impl Population {
    /// Builds the population of `s` (deterministic from the seed).
    pub fn new(s: &Settings) -> Self {
        let pools: Vec<PoolHandleBuf> = (0..s.pools)
            .map(|i| {
                PoolHandleBuf::new(format!("{}{i}", s.pool_prefix))
                    .expect("length checked when the settings were resolved")
            })
            .collect();
        let mut rng = Rng::new(s.seed ^ 0x5045_5f49_4453);
        let mut seen = HashSet::new();
        let span = u32::from(u16::MAX - s.pe_port_base.min(u16::MAX - 1));
        let pes: Vec<PeDesc> = (0..s.pes)
            .map(|i| {
                let id = loop {
                    let v = rng.next_u32();
                    if v != 0 && seen.insert(v) {
                        break v;
                    }
                };
                PeDesc {
                    id: PeId(id),
                    pool: i % s.pools,
                    port: s.pe_port_base + (i as u32 % span.max(1)) as u16,
                }
            })
            .collect();
        let by_id = pes.iter().enumerate().map(|(i, p)| (p.id.0, i)).collect();
        let addrs = [s.pe_address];
        let canned = pools
            .iter()
            .enumerate()
            .map(|(pi, h)| {
                let max = if s.items == 0 { 3 } else { s.items as usize };
                let els: Vec<PoolElement<'_>> = pes
                    .iter()
                    .filter(|p| p.pool == pi)
                    .take(max)
                    .map(|p| PoolElement {
                        id: p.id,
                        home_server: ServerId(1),
                        registration_life: 90_000,
                        user_transport: Transport::tcp(
                            p.port,
                            TransportUse::DATA_PLUS_CONTROL,
                            &addrs,
                        ),
                        policy: s.policy.into(),
                        asap_transport: None,
                    })
                    .collect();
                AsapMessage::HandleResolutionResponse(HandleResolutionResponse {
                    accept: false,
                    pool_handle: h.as_wire(),
                    policy: Some(s.policy.into()),
                    elements: Seq::from_items(&els),
                    error: None,
                })
                .to_vec()
                .expect("a canned answer encodes")
            })
            .collect();
        Self {
            pools,
            pes,
            by_id,
            canned,
        }
    }

    /// The PE with this id.
    pub fn pe(&self, id: PeId) -> Option<&PeDesc> {
        self.by_id.get(&id.0).map(|&i| &self.pes[i])
    }

    /// The pool index of a handle.
    pub fn pool_index(&self, handle: &[u8]) -> Option<usize> {
        self.pools.iter().position(|p| p.as_bytes() == handle)
    }
}

/// What a registrar would answer to `request` (echo runs): a grant, a
/// confirmed deregistration, or the canned resolution of its pool. `None`
/// for messages without an answer (Endpoint Unreachable, keep-alive acks)
/// and `Err` for an echo that is not a message the cores send.
pub fn echo_answer(pop: &Population, request: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let Ok(m) = AsapMessage::parse(request) else {
        return Err("echo is not a valid ASAP message");
    };
    let enc = |m: AsapMessage<'_>| m.to_vec().map_err(|_| "answer does not encode");
    match m {
        AsapMessage::Registration(r) => {
            enc(AsapMessage::RegistrationResponse(RegistrationResponse {
                reject: false,
                pool_handle: r.pool_handle,
                pe_id: r.element.id,
                error: None,
            }))
            .map(Some)
        }
        AsapMessage::Deregistration(d) => enc(AsapMessage::DeregistrationResponse(
            DeregistrationResponse {
                pool_handle: d.pool_handle,
                pe_id: d.pe_id,
                error: None,
            },
        ))
        .map(Some),
        AsapMessage::HandleResolution(h) => match pop.pool_index(h.pool_handle.as_bytes()) {
            Some(i) => Ok(Some(pop.canned[i].clone())),
            None => Err("echo names a pool of no PE"),
        },
        AsapMessage::EndpointUnreachable(_) | AsapMessage::EndpointKeepAliveAck(_) => Ok(None),
        _ => Err("echo of a message the cores do not send"),
    }
}
