//! Test support shared by `roundtrip.rs` and `robustness.rs`.
//!
//! The codec's message types borrow their lists and byte strings, so property
//! tests generate *owned models* (the `*M` types below) and build the borrowed
//! views from them inside a scope ([`with_asap`], [`with_enrp`], [`with_param`]).
//! Every model the strategies produce is valid: it satisfies every invariant
//! the encoder checks (pool handle 1..=32 bytes, address counts per transport
//! kind, SCTP ASAP transports, SCTP/TCP ENRP transports, non-empty operation
//! errors, business cards and pool entries), so encoding must succeed.
//!
//! Also here: walkers that touch every `Seq` of a decoded message (the
//! "accessors never panic" contract) and byte-level helpers that find the
//! parameter boundaries of a canonical encoding (to rewrite it into RSPLIB's
//! length convention or to insert unknown parameters at any nesting level).
#![allow(dead_code)] // every test binary uses a different subset

use std::net::IpAddr;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use rserpool_wire::asap::{self, AsapMessage};
use rserpool_wire::enrp::{self, EnrpMessage, PoolEntry, Takeover, UpdateAction};
use rserpool_wire::{
    Cause, CauseCode, CauseInfo, HandleResolutionOption, OperationError, Param, PeChecksum, PeId,
    Policy, PolicyParam, PolicyType, PoolElement, PoolHandle, Protocol, Seq, ServerId, ServerInfo,
    Transport, TransportKind, TransportUse, WireItem, pad4,
};

// ---------------------------------------------------------------------------
// Models and strategies
// ---------------------------------------------------------------------------

/// An IPv4 or IPv6 address.
pub(crate) fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

/// A transport parameter of any kind.
#[derive(Clone, Debug)]
pub(crate) struct TransportM {
    pub(crate) kind: TransportKind,
    pub(crate) port: u16,
    /// Transport Use (SCTP, TCP) or the reserved field (UDP, UDP-Lite, DCCP).
    pub(crate) use_field: u16,
    pub(crate) service_code: u32,
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) opaque: Vec<u8>,
}

impl TransportM {
    /// The codec's view, built through the public constructors.
    pub(crate) fn view(&self) -> Transport<'_> {
        let u = TransportUse(self.use_field);
        match self.kind {
            TransportKind::Sctp => Transport::sctp(self.port, u, &self.addrs),
            TransportKind::Tcp => Transport::tcp(self.port, u, &self.addrs),
            TransportKind::Udp => Transport {
                transport_use: u,
                ..Transport::udp(self.port, &self.addrs)
            },
            TransportKind::UdpLite => Transport {
                transport_use: u,
                ..Transport::udp_lite(self.port, &self.addrs)
            },
            TransportKind::Dccp => Transport {
                transport_use: u,
                ..Transport::dccp(self.port, self.service_code, &self.addrs)
            },
            TransportKind::Opaque => Transport::opaque(&self.opaque),
        }
    }
}

fn transport_use() -> impl Strategy<Value = u16> {
    prop_oneof![3 => Just(0u16), 2 => Just(1u16), 1 => any::<u16>()]
}

/// The reserved field of UDP, UDP-Lite and DCCP: normally 0, but whatever is
/// received is kept, so any value must round-trip.
fn reserved() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(0u16), 1 => any::<u16>()]
}

fn ip_transport(
    kind: TransportKind,
    use_field: impl Strategy<Value = u16>,
    addrs: impl Strategy<Value = Vec<IpAddr>>,
) -> impl Strategy<Value = TransportM> {
    (any::<u16>(), use_field, any::<u32>(), addrs).prop_map(move |(port, use_field, sc, addrs)| {
        TransportM {
            kind,
            port,
            use_field,
            service_code: if kind == TransportKind::Dccp { sc } else { 0 },
            addrs,
            opaque: Vec::new(),
        }
    })
}

/// SCTP with 1..=4 addresses, IPv4 and IPv6 mixed.
pub(crate) fn sctp_transport() -> impl Strategy<Value = TransportM> {
    ip_transport(TransportKind::Sctp, transport_use(), vec(addr(), 1..=4))
}

pub(crate) fn tcp_transport() -> impl Strategy<Value = TransportM> {
    ip_transport(TransportKind::Tcp, transport_use(), vec(addr(), 1))
}

pub(crate) fn opaque_transport() -> impl Strategy<Value = TransportM> {
    vec(any::<u8>(), 0..=21).prop_map(|opaque| TransportM {
        kind: TransportKind::Opaque,
        port: 0,
        use_field: 0,
        service_code: 0,
        addrs: Vec::new(),
        opaque,
    })
}

/// Any kind of transport (a PE's user transport, cause 0x7's information).
pub(crate) fn any_transport() -> impl Strategy<Value = TransportM> {
    prop_oneof![
        3 => sctp_transport(),
        1 => tcp_transport(),
        1 => ip_transport(TransportKind::Udp, reserved(), vec(addr(), 1)),
        1 => ip_transport(TransportKind::UdpLite, reserved(), vec(addr(), 1)),
        1 => ip_transport(TransportKind::Dccp, reserved(), vec(addr(), 1)),
        1 => opaque_transport(),
    ]
}

/// Where an ENRP server or an ASAP server announce can point: SCTP or TCP.
pub(crate) fn enrp_transport() -> impl Strategy<Value = TransportM> {
    prop_oneof![3 => sctp_transport(), 1 => tcp_transport()]
}

/// A policy parameter.
#[derive(Clone, Debug)]
pub(crate) enum PolicyM {
    Known(Policy),
    Unknown { ty: u32, data: Vec<u8> },
}

impl PolicyM {
    pub(crate) fn view(&self) -> PolicyParam<'_> {
        match self {
            Self::Known(p) => PolicyParam::Known(*p),
            Self::Unknown { ty, data } => PolicyParam::Unknown {
                policy_type: PolicyType(*ty),
                data,
            },
        }
    }
}

fn policy_value() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]
}

/// Any of the 16 known policies with random field values.
pub(crate) fn known_policy() -> impl Strategy<Value = Policy> {
    (
        select(Policy::ALL_TYPES.to_vec()),
        proptest::array::uniform4(policy_value()),
    )
        .prop_map(|(ty, vals)| {
            let n = Policy::field_names(ty).expect("known type").len();
            Policy::from_values(ty, &vals[..n]).expect("right number of values")
        })
}

/// A policy type this codec does not know (never one of the 16 known ones:
/// an "unknown" known type would decode as `Known` and not round-trip).
pub(crate) fn unknown_policy_type() -> impl Strategy<Value = u32> {
    prop_oneof![
        // Reserved-invalid codes and RSPLIB codes that are listed but never encoded.
        select(vec![
            0u32,
            0x4000_0000,
            0x0000_0006,
            0x4000_0005,
            0xb000_2004,
            0xb000_2005
        ]),
        any::<u32>(),
    ]
    .prop_filter("must be unknown", |t| {
        Policy::name_of(PolicyType(*t)).is_none()
    })
}

/// Policy data made of whole 32-bit fields, as every policy on the wire is.
/// (Any other length round-trips through this codec too, see roundtrip.rs.)
pub(crate) fn policy_data_words() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<[u8; 4]>(), 0..=4).prop_map(|w| w.concat())
}

pub(crate) fn policy() -> impl Strategy<Value = PolicyM> {
    prop_oneof![
        4 => known_policy().prop_map(PolicyM::Known),
        1 => (unknown_policy_type(), policy_data_words())
            .prop_map(|(ty, data)| PolicyM::Unknown { ty, data }),
    ]
}

/// A Pool Element parameter.
#[derive(Clone, Debug)]
pub(crate) struct PeM {
    pub(crate) id: u32,
    pub(crate) home: u32,
    pub(crate) life: u32,
    pub(crate) user: TransportM,
    pub(crate) policy: PolicyM,
    pub(crate) asap: Option<TransportM>,
}

impl PeM {
    pub(crate) fn view(&self) -> PoolElement<'_> {
        PoolElement {
            id: PeId(self.id),
            home_server: ServerId(self.home),
            registration_life: self.life,
            user_transport: self.user.view(),
            policy: self.policy.view(),
            asap_transport: self.asap.as_ref().map(TransportM::view),
        }
    }
}

pub(crate) fn pool_element() -> impl Strategy<Value = PeM> {
    (
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(u32::MAX), Just(0u32), any::<u32>()],
        any_transport(),
        policy(),
        proptest::option::of(sctp_transport()),
    )
        .prop_map(|(id, home, life, user, policy, asap)| PeM {
            id,
            home,
            life,
            user,
            policy,
            asap,
        })
}

/// An error cause.
#[derive(Clone, Debug)]
pub(crate) enum CauseInfoM {
    Bytes(Vec<u8>),
    Policy(PolicyM),
    Transport(TransportM),
}

#[derive(Clone, Debug)]
pub(crate) struct CauseM {
    pub(crate) code: u16,
    pub(crate) info: CauseInfoM,
}

impl CauseM {
    pub(crate) fn view(&self) -> Cause<'_> {
        Cause {
            code: CauseCode(self.code),
            info: match &self.info {
                CauseInfoM::Bytes(b) => CauseInfo::Bytes(b),
                CauseInfoM::Policy(p) => CauseInfo::Policy(p.view()),
                CauseInfoM::Transport(t) => CauseInfo::Transport(t.view()),
            },
        }
    }
}

/// A cause code whose information is raw bytes: anything but 0x5 and 0x7
/// (those carry a nested parameter; raw bytes there decode differently).
fn raw_cause_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        select(vec![0u16, 1, 2, 3, 4, 6, 8, 9, 0x0a]),
        select(vec![
            0x0010u16, 0x0011, 0x1009, 0x100a, 0x100b, 0xf000, 0xf003, 0xf008,
        ]),
        any::<u16>(),
    ]
    .prop_filter("0x5 and 0x7 carry parameters", |c| *c != 5 && *c != 7)
}

pub(crate) fn cause() -> impl Strategy<Value = CauseM> {
    prop_oneof![
        3 => (raw_cause_code(), vec(any::<u8>(), 0..=23)).prop_map(|(code, b)| CauseM {
            code,
            info: CauseInfoM::Bytes(b),
        }),
        1 => policy().prop_map(|p| CauseM { code: 5, info: CauseInfoM::Policy(p) }),
        1 => any_transport().prop_map(|t| CauseM { code: 7, info: CauseInfoM::Transport(t) }),
        // RSPLIB sends 0x3 and 0x5 without information.
        1 => select(vec![3u16, 5, 7]).prop_map(|code| CauseM {
            code,
            info: CauseInfoM::Bytes(Vec::new()),
        }),
    ]
}

/// An Operation Error: 1..=4 causes.
#[derive(Clone, Debug)]
pub(crate) struct OpErrM(pub(crate) Vec<CauseM>);

pub(crate) fn op_error() -> impl Strategy<Value = OpErrM> {
    vec(cause(), 1..=4).prop_map(OpErrM)
}

pub(crate) fn cause_views(e: &Option<OpErrM>) -> Vec<Cause<'_>> {
    e.iter()
        .flat_map(|e| e.0.iter().map(CauseM::view))
        .collect()
}

#[derive(Clone, Debug)]
pub(crate) struct ServerInfoM {
    pub(crate) id: u32,
    pub(crate) transport: TransportM,
}

impl ServerInfoM {
    pub(crate) fn view(&self) -> ServerInfo<'_> {
        ServerInfo {
            server_id: ServerId(self.id),
            transport: self.transport.view(),
        }
    }
}

pub(crate) fn server_info() -> impl Strategy<Value = ServerInfoM> {
    (any::<u32>(), enrp_transport()).prop_map(|(id, transport)| ServerInfoM { id, transport })
}

/// Pool handle bytes: 1 to 32 random bytes.
pub(crate) fn handle_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=32)
}

pub(crate) fn ph(bytes: &[u8]) -> PoolHandle<'_> {
    PoolHandle::new(bytes).expect("strategies make 1..=32 byte handles")
}

/// Every ASAP message type with every flag and optional parameter.
#[derive(Clone, Debug)]
pub(crate) enum AsapM {
    Registration {
        handle: Vec<u8>,
        pe: PeM,
    },
    Deregistration {
        handle: Vec<u8>,
        pe_id: u32,
    },
    RegistrationResponse {
        reject: bool,
        handle: Vec<u8>,
        pe_id: u32,
        error: Option<OpErrM>,
    },
    DeregistrationResponse {
        handle: Vec<u8>,
        pe_id: u32,
        error: Option<OpErrM>,
    },
    HandleResolution {
        subscribe: bool,
        handle: Vec<u8>,
        items: Option<u32>,
    },
    HandleResolutionResponse {
        accept: bool,
        handle: Vec<u8>,
        policy: Option<PolicyM>,
        pes: Vec<PeM>,
        error: Option<OpErrM>,
    },
    EndpointKeepAlive {
        home: bool,
        server_id: u32,
        handle: Vec<u8>,
        pe_id: Option<u32>,
    },
    EndpointKeepAliveAck {
        handle: Vec<u8>,
        pe_id: u32,
    },
    EndpointUnreachable {
        handle: Vec<u8>,
        pe_id: u32,
    },
    ServerAnnounce {
        server_id: u32,
        transports: Vec<TransportM>,
    },
    Cookie(Vec<u8>),
    CookieEcho(Vec<u8>),
    BusinessCard {
        handle: Vec<u8>,
        policy: Option<PolicyM>,
        pes: Vec<PeM>,
    },
    Error(OpErrM),
}

fn cookie_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=40)
}

pub(crate) fn asap_message() -> impl Strategy<Value = AsapM> {
    use proptest::option::of;
    prop_oneof![
        (handle_bytes(), pool_element())
            .prop_map(|(handle, pe)| AsapM::Registration { handle, pe }),
        (handle_bytes(), any::<u32>())
            .prop_map(|(handle, pe_id)| AsapM::Deregistration { handle, pe_id }),
        (any::<bool>(), handle_bytes(), any::<u32>(), of(op_error())).prop_map(
            |(reject, handle, pe_id, error)| AsapM::RegistrationResponse {
                reject,
                handle,
                pe_id,
                error
            }
        ),
        (handle_bytes(), any::<u32>(), of(op_error())).prop_map(|(handle, pe_id, error)| {
            AsapM::DeregistrationResponse {
                handle,
                pe_id,
                error,
            }
        }),
        (any::<bool>(), handle_bytes(), of(any::<u32>())).prop_map(|(subscribe, handle, items)| {
            AsapM::HandleResolution {
                subscribe,
                handle,
                items,
            }
        }),
        (
            any::<bool>(),
            handle_bytes(),
            of(policy()),
            vec(pool_element(), 0..=3),
            of(op_error())
        )
            .prop_map(|(accept, handle, policy, pes, error)| {
                AsapM::HandleResolutionResponse {
                    accept,
                    handle,
                    policy,
                    pes,
                    error,
                }
            }),
        (
            any::<bool>(),
            any::<u32>(),
            handle_bytes(),
            of(any::<u32>())
        )
            .prop_map(
                |(home, server_id, handle, pe_id)| AsapM::EndpointKeepAlive {
                    home,
                    server_id,
                    handle,
                    pe_id
                }
            ),
        (handle_bytes(), any::<u32>())
            .prop_map(|(handle, pe_id)| AsapM::EndpointKeepAliveAck { handle, pe_id }),
        (handle_bytes(), any::<u32>())
            .prop_map(|(handle, pe_id)| AsapM::EndpointUnreachable { handle, pe_id }),
        (any::<u32>(), vec(enrp_transport(), 0..=3)).prop_map(|(server_id, transports)| {
            AsapM::ServerAnnounce {
                server_id,
                transports,
            }
        }),
        cookie_bytes().prop_map(AsapM::Cookie),
        cookie_bytes().prop_map(AsapM::CookieEcho),
        (handle_bytes(), of(policy()), vec(pool_element(), 1..=3)).prop_map(
            |(handle, policy, pes)| AsapM::BusinessCard {
                handle,
                policy,
                pes
            }
        ),
        op_error().prop_map(AsapM::Error),
    ]
}

/// Builds the codec's view of `m` and hands it to `f`.
pub(crate) fn with_asap<R>(m: &AsapM, f: impl FnOnce(&AsapMessage<'_>) -> R) -> R {
    match m {
        AsapM::Registration { handle, pe } => f(&AsapMessage::Registration(asap::Registration {
            pool_handle: ph(handle),
            element: pe.view(),
        })),
        AsapM::Deregistration { handle, pe_id } => {
            f(&AsapMessage::Deregistration(asap::Deregistration {
                pool_handle: ph(handle),
                pe_id: PeId(*pe_id),
            }))
        }
        AsapM::RegistrationResponse {
            reject,
            handle,
            pe_id,
            error,
        } => {
            let causes = cause_views(error);
            f(&AsapMessage::RegistrationResponse(
                asap::RegistrationResponse {
                    reject: *reject,
                    pool_handle: ph(handle),
                    pe_id: PeId(*pe_id),
                    error: error.as_ref().map(|_| OperationError::new(&causes)),
                },
            ))
        }
        AsapM::DeregistrationResponse {
            handle,
            pe_id,
            error,
        } => {
            let causes = cause_views(error);
            f(&AsapMessage::DeregistrationResponse(
                asap::DeregistrationResponse {
                    pool_handle: ph(handle),
                    pe_id: PeId(*pe_id),
                    error: error.as_ref().map(|_| OperationError::new(&causes)),
                },
            ))
        }
        AsapM::HandleResolution {
            subscribe,
            handle,
            items,
        } => f(&AsapMessage::HandleResolution(asap::HandleResolution {
            subscribe: *subscribe,
            pool_handle: ph(handle),
            option: items.map(|items| HandleResolutionOption { items }),
        })),
        AsapM::HandleResolutionResponse {
            accept,
            handle,
            policy,
            pes,
            error,
        } => {
            let pes: Vec<PoolElement<'_>> = pes.iter().map(PeM::view).collect();
            let causes = cause_views(error);
            f(&AsapMessage::HandleResolutionResponse(
                asap::HandleResolutionResponse {
                    accept: *accept,
                    pool_handle: ph(handle),
                    policy: policy.as_ref().map(PolicyM::view),
                    elements: Seq::from_items(&pes),
                    error: error.as_ref().map(|_| OperationError::new(&causes)),
                },
            ))
        }
        AsapM::EndpointKeepAlive {
            home,
            server_id,
            handle,
            pe_id,
        } => f(&AsapMessage::EndpointKeepAlive(asap::EndpointKeepAlive {
            home: *home,
            server_id: ServerId(*server_id),
            pool_handle: ph(handle),
            pe_id: pe_id.map(PeId),
        })),
        AsapM::EndpointKeepAliveAck { handle, pe_id } => f(&AsapMessage::EndpointKeepAliveAck(
            asap::EndpointKeepAliveAck {
                pool_handle: ph(handle),
                pe_id: PeId(*pe_id),
            },
        )),
        AsapM::EndpointUnreachable { handle, pe_id } => f(&AsapMessage::EndpointUnreachable(
            asap::EndpointUnreachable {
                pool_handle: ph(handle),
                pe_id: PeId(*pe_id),
            },
        )),
        AsapM::ServerAnnounce {
            server_id,
            transports,
        } => {
            let ts: Vec<Transport<'_>> = transports.iter().map(TransportM::view).collect();
            f(&AsapMessage::ServerAnnounce(asap::ServerAnnounce {
                server_id: ServerId(*server_id),
                transports: Seq::from_items(&ts),
            }))
        }
        AsapM::Cookie(c) => f(&AsapMessage::Cookie(asap::Cookie { cookie: c })),
        AsapM::CookieEcho(c) => f(&AsapMessage::CookieEcho(asap::CookieEcho { cookie: c })),
        AsapM::BusinessCard {
            handle,
            policy,
            pes,
        } => {
            let pes: Vec<PoolElement<'_>> = pes.iter().map(PeM::view).collect();
            f(&AsapMessage::BusinessCard(asap::BusinessCard {
                pool_handle: ph(handle),
                policy: policy.as_ref().map(PolicyM::view),
                elements: Seq::from_items(&pes),
            }))
        }
        AsapM::Error(e) => {
            let causes: Vec<Cause<'_>> = e.0.iter().map(CauseM::view).collect();
            f(&AsapMessage::Error(asap::AsapError {
                error: OperationError::new(&causes),
            }))
        }
    }
}

/// Every ENRP message type with every flag and optional parameter.
#[derive(Clone, Debug)]
pub(crate) enum EnrpM {
    Presence {
        reply: bool,
        ids: (u32, u32),
        checksum: Option<u16>,
        server_info: Option<ServerInfoM>,
    },
    HandleTableRequest {
        own: bool,
        ids: (u32, u32),
    },
    HandleTableResponse {
        reject: bool,
        more: bool,
        ids: (u32, u32),
        entries: Vec<(Vec<u8>, Vec<PeM>)>,
    },
    HandleUpdate {
        takeover: bool,
        ids: (u32, u32),
        del: bool,
        handle: Vec<u8>,
        pe: PeM,
    },
    ListRequest {
        ids: (u32, u32),
    },
    ListResponse {
        reject: bool,
        ids: (u32, u32),
        servers: Vec<ServerInfoM>,
    },
    /// 0x07, 0x08 or 0x09.
    Takeover {
        ty: u8,
        ids: (u32, u32),
        target: u32,
    },
    Error {
        ids: (u32, u32),
        error: OpErrM,
    },
}

fn ids() -> impl Strategy<Value = (u32, u32)> {
    (any::<u32>(), prop_oneof![Just(0u32), any::<u32>()])
}

pub(crate) fn enrp_message() -> impl Strategy<Value = EnrpM> {
    use proptest::option::of;
    prop_oneof![
        (any::<bool>(), ids(), of(any::<u16>()), of(server_info())).prop_map(
            |(reply, ids, checksum, server_info)| EnrpM::Presence {
                reply,
                ids,
                checksum,
                server_info
            }
        ),
        (any::<bool>(), ids()).prop_map(|(own, ids)| EnrpM::HandleTableRequest { own, ids }),
        (
            any::<bool>(),
            any::<bool>(),
            ids(),
            vec((handle_bytes(), vec(pool_element(), 1..=3)), 0..=3)
        )
            .prop_map(|(reject, more, ids, entries)| EnrpM::HandleTableResponse {
                reject,
                more,
                ids,
                entries
            }),
        (
            any::<bool>(),
            ids(),
            any::<bool>(),
            handle_bytes(),
            pool_element()
        )
            .prop_map(|(takeover, ids, del, handle, pe)| EnrpM::HandleUpdate {
                takeover,
                ids,
                del,
                handle,
                pe
            }),
        ids().prop_map(|ids| EnrpM::ListRequest { ids }),
        (any::<bool>(), ids(), vec(server_info(), 0..=3)).prop_map(|(reject, ids, servers)| {
            EnrpM::ListResponse {
                reject,
                ids,
                servers,
            }
        }),
        (select(vec![7u8, 8, 9]), ids(), any::<u32>())
            .prop_map(|(ty, ids, target)| EnrpM::Takeover { ty, ids, target }),
        (ids(), op_error()).prop_map(|(ids, error)| EnrpM::Error { ids, error }),
    ]
}

/// Builds the codec's view of `m` and hands it to `f`.
pub(crate) fn with_enrp<R>(m: &EnrpM, f: impl FnOnce(&EnrpMessage<'_>) -> R) -> R {
    let sid = |(s, r): &(u32, u32)| (ServerId(*s), ServerId(*r));
    match m {
        EnrpM::Presence {
            reply,
            ids,
            checksum,
            server_info,
        } => {
            let (sender, receiver) = sid(ids);
            f(&EnrpMessage::Presence(enrp::Presence {
                reply_required: *reply,
                sender,
                receiver,
                checksum: checksum.map(PeChecksum),
                server_info: server_info.as_ref().map(ServerInfoM::view),
            }))
        }
        EnrpM::HandleTableRequest { own, ids } => {
            let (sender, receiver) = sid(ids);
            f(&EnrpMessage::HandleTableRequest(enrp::HandleTableRequest {
                own_children_only: *own,
                sender,
                receiver,
            }))
        }
        EnrpM::HandleTableResponse {
            reject,
            more,
            ids,
            entries,
        } => {
            let (sender, receiver) = sid(ids);
            let pes: Vec<Vec<PoolElement<'_>>> = entries
                .iter()
                .map(|(_, pes)| pes.iter().map(PeM::view).collect())
                .collect();
            let entries: Vec<PoolEntry<'_>> = entries
                .iter()
                .zip(&pes)
                .map(|((h, _), pes)| PoolEntry {
                    pool_handle: ph(h),
                    elements: Seq::from_items(pes),
                })
                .collect();
            f(&EnrpMessage::HandleTableResponse(
                enrp::HandleTableResponse {
                    reject: *reject,
                    more: *more,
                    sender,
                    receiver,
                    entries: Seq::from_items(&entries),
                },
            ))
        }
        EnrpM::HandleUpdate {
            takeover,
            ids,
            del,
            handle,
            pe,
        } => {
            let (sender, receiver) = sid(ids);
            f(&EnrpMessage::HandleUpdate(enrp::HandleUpdate {
                takeover_suggested: *takeover,
                sender,
                receiver,
                action: if *del {
                    UpdateAction::DelPe
                } else {
                    UpdateAction::AddPe
                },
                pool_handle: ph(handle),
                element: pe.view(),
            }))
        }
        EnrpM::ListRequest { ids } => {
            let (sender, receiver) = sid(ids);
            f(&EnrpMessage::ListRequest(enrp::ListRequest {
                sender,
                receiver,
            }))
        }
        EnrpM::ListResponse {
            reject,
            ids,
            servers,
        } => {
            let (sender, receiver) = sid(ids);
            let servers: Vec<ServerInfo<'_>> = servers.iter().map(ServerInfoM::view).collect();
            f(&EnrpMessage::ListResponse(enrp::ListResponse {
                reject: *reject,
                sender,
                receiver,
                servers: Seq::from_items(&servers),
            }))
        }
        EnrpM::Takeover { ty, ids, target } => {
            let (sender, receiver) = sid(ids);
            let t = Takeover {
                sender,
                receiver,
                target: ServerId(*target),
            };
            f(&match ty {
                7 => EnrpMessage::InitTakeover(t),
                8 => EnrpMessage::InitTakeoverAck(t),
                _ => EnrpMessage::TakeoverServer(t),
            })
        }
        EnrpM::Error { ids, error } => {
            let (sender, receiver) = sid(ids);
            let causes: Vec<Cause<'_>> = error.0.iter().map(CauseM::view).collect();
            f(&EnrpMessage::Error(enrp::EnrpError {
                sender,
                receiver,
                error: OperationError::new(&causes),
            }))
        }
    }
}

/// Any single parameter.
#[derive(Clone, Debug)]
pub(crate) enum ParamM {
    Address(IpAddr),
    Transport(TransportM),
    Policy(PolicyM),
    PoolHandle(Vec<u8>),
    PoolElement(PeM),
    ServerInfo(ServerInfoM),
    OperationError(OpErrM),
    Cookie(Vec<u8>),
    PeId(u32),
    PeChecksum(u16),
    HandleResolutionOption(u32),
    /// An unknown type (any of the four action-bit patterns) and its value.
    Unknown(u16, Vec<u8>),
}

/// A parameter type this codec does not know, with the given action bits.
pub(crate) fn unknown_param_type(action_bits: u16) -> impl Strategy<Value = u16> {
    (0u16..0x4000)
        .prop_map(move |t| t | action_bits)
        .prop_filter("must be unknown", |t| {
            !rserpool_wire::param_type::is_known(*t)
        })
}

pub(crate) fn unknown_param_type_any_action() -> impl Strategy<Value = u16> {
    select(vec![0x0000u16, 0x4000, 0x8000, 0xc000]).prop_flat_map(unknown_param_type)
}

pub(crate) fn param() -> impl Strategy<Value = ParamM> {
    prop_oneof![
        addr().prop_map(ParamM::Address),
        any_transport().prop_map(ParamM::Transport),
        policy().prop_map(ParamM::Policy),
        handle_bytes().prop_map(ParamM::PoolHandle),
        pool_element().prop_map(ParamM::PoolElement),
        server_info().prop_map(ParamM::ServerInfo),
        op_error().prop_map(ParamM::OperationError),
        cookie_bytes().prop_map(ParamM::Cookie),
        any::<u32>().prop_map(ParamM::PeId),
        any::<u16>().prop_map(ParamM::PeChecksum),
        any::<u32>().prop_map(ParamM::HandleResolutionOption),
        (unknown_param_type_any_action(), vec(any::<u8>(), 0..=21))
            .prop_map(|(t, d)| ParamM::Unknown(t, d)),
    ]
}

/// The bytes of an unknown parameter: header, value, zero pad.
pub(crate) fn raw_tlv(ty: u16, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(value.len() + 4).expect("small");
    let mut v = Vec::with_capacity(pad4(value.len() + 4));
    v.extend_from_slice(&ty.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(value);
    v.resize(pad4(v.len()), 0);
    v
}

/// Builds the codec's view of `m` and hands it to `f`. An unknown parameter
/// can only be obtained by decoding (its `Tlv` has no public constructor), so
/// that one is decoded from hand-made bytes first.
pub(crate) fn with_param<R>(m: &ParamM, f: impl FnOnce(&Param<'_>) -> R) -> R {
    match m {
        ParamM::Address(a) => f(&Param::Address(*a)),
        ParamM::Transport(t) => f(&Param::Transport(t.view())),
        ParamM::Policy(p) => f(&Param::Policy(p.view())),
        ParamM::PoolHandle(h) => f(&Param::PoolHandle(ph(h))),
        ParamM::PoolElement(pe) => f(&Param::PoolElement(pe.view())),
        ParamM::ServerInfo(s) => f(&Param::ServerInfo(s.view())),
        ParamM::OperationError(e) => {
            let causes: Vec<Cause<'_>> = e.0.iter().map(CauseM::view).collect();
            f(&Param::OperationError(OperationError::new(&causes)))
        }
        ParamM::Cookie(c) => f(&Param::Cookie(rserpool_wire::Cookie(c))),
        ParamM::PeId(id) => f(&Param::PeId(PeId(*id))),
        ParamM::PeChecksum(c) => f(&Param::PeChecksum(PeChecksum(*c))),
        ParamM::HandleResolutionOption(items) => {
            f(&Param::HandleResolutionOption(HandleResolutionOption {
                items: *items,
            }))
        }
        ParamM::Unknown(ty, data) => {
            let bytes = raw_tlv(*ty, data);
            let (p, rest) = Param::parse_prefix(&bytes)
                .expect("an unknown parameter decodes")
                .expect("it is not empty");
            assert!(rest.is_empty());
            assert!(matches!(p, Param::Unknown(_)), "{ty:#06x} must be unknown");
            f(&p)
        }
    }
}

// ---------------------------------------------------------------------------
// Walking decoded values: every Seq fully, no allocation
// ---------------------------------------------------------------------------

/// Iterates `s` fully, checks the count against `len()`, returns the count.
pub(crate) fn seq_each<'a, T: WireItem<'a> + Clone>(
    s: &Seq<'a, T>,
    mut each: impl FnMut(&T),
) -> usize {
    let mut n = 0;
    for item in s.iter() {
        each(&item);
        n += 1;
    }
    assert_eq!(n, s.len(), "Seq::len() and iteration disagree");
    assert_eq!(s.is_empty(), n == 0);
    n
}

pub(crate) fn touch_transport(t: &Transport<'_>) -> usize {
    let n = seq_each(&t.addresses, |a| {
        assert!(a.is_ipv4() || a.is_ipv6());
    });
    match t.kind {
        TransportKind::Opaque => assert_eq!(n, 0, "opaque transport with addresses"),
        TransportKind::Sctp => assert!(n >= 1, "SCTP transport without addresses"),
        _ => assert_eq!(n, 1, "{:?} transport needs exactly one address", t.kind),
    }
    if t.kind != TransportKind::Dccp {
        assert_eq!(t.service_code, 0);
    }
    if t.kind != TransportKind::Opaque {
        assert!(t.opaque.is_empty());
    }
    n
}

pub(crate) fn touch_policy(p: &PolicyParam<'_>) -> usize {
    match p {
        PolicyParam::Known(k) => {
            assert_eq!(
                k.values().as_slice().len(),
                Policy::field_names(k.policy_type()).map_or(0, <[&str]>::len)
            );
            1
        }
        PolicyParam::Unknown { policy_type, data } => {
            assert!(Policy::name_of(*policy_type).is_none());
            data.len()
        }
    }
}

pub(crate) fn touch_pe(pe: &PoolElement<'_>) -> usize {
    let mut n = 1 + touch_transport(&pe.user_transport) + touch_policy(&pe.policy);
    if let Some(t) = &pe.asap_transport {
        assert_eq!(t.kind, TransportKind::Sctp, "ASAP transport must be SCTP");
        n += touch_transport(t);
    }
    n
}

pub(crate) fn touch_error(e: &OperationError<'_>) -> usize {
    let mut inner = 0;
    let n = seq_each(&e.causes, |c| {
        inner += match &c.info {
            CauseInfo::Bytes(b) => b.len(),
            CauseInfo::Policy(p) => touch_policy(p),
            CauseInfo::Transport(t) => touch_transport(t),
        };
    });
    assert!(n >= 1, "an Operation Error has at least one cause");
    assert_eq!(e.first_code(), e.causes.iter().next().map(|c| c.code));
    n + inner
}

fn touch_pes(s: &Seq<'_, PoolElement<'_>>) -> usize {
    let mut inner = 0;
    let n = seq_each(s, |pe| inner += touch_pe(pe));
    n + inner
}

fn touch_server_info(s: &ServerInfo<'_>) -> usize {
    assert!(matches!(
        s.transport.kind,
        TransportKind::Sctp | TransportKind::Tcp
    ));
    1 + touch_transport(&s.transport)
}

/// Touches every field and iterates every list of a message (no allocation).
pub(crate) fn touch_asap(m: &AsapMessage<'_>) -> usize {
    let opt_err = |e: &Option<OperationError<'_>>| e.as_ref().map_or(0, touch_error);
    let opt_pol = |p: &Option<PolicyParam<'_>>| p.as_ref().map_or(0, touch_policy);
    match m {
        AsapMessage::Registration(r) => r.pool_handle.as_bytes().len() + touch_pe(&r.element),
        AsapMessage::Deregistration(d) => d.pool_handle.as_bytes().len(),
        AsapMessage::RegistrationResponse(r) => r.pool_handle.as_bytes().len() + opt_err(&r.error),
        AsapMessage::DeregistrationResponse(r) => {
            r.pool_handle.as_bytes().len() + opt_err(&r.error)
        }
        AsapMessage::HandleResolution(h) => h.pool_handle.as_bytes().len(),
        AsapMessage::HandleResolutionResponse(r) => {
            r.pool_handle.as_bytes().len()
                + opt_pol(&r.policy)
                + touch_pes(&r.elements)
                + opt_err(&r.error)
        }
        AsapMessage::EndpointKeepAlive(k) => k.pool_handle.as_bytes().len(),
        AsapMessage::EndpointKeepAliveAck(k) => k.pool_handle.as_bytes().len(),
        AsapMessage::EndpointUnreachable(u) => u.pool_handle.as_bytes().len(),
        AsapMessage::ServerAnnounce(s) => {
            let mut inner = 0;
            let n = seq_each(&s.transports, |t| {
                assert!(matches!(t.kind, TransportKind::Sctp | TransportKind::Tcp));
                inner += touch_transport(t);
            });
            n + inner
        }
        AsapMessage::Cookie(c) => c.cookie.len(),
        AsapMessage::CookieEcho(c) => c.cookie.len(),
        AsapMessage::BusinessCard(b) => {
            assert!(!b.elements.is_empty(), "a business card lists PEs");
            b.pool_handle.as_bytes().len() + opt_pol(&b.policy) + touch_pes(&b.elements)
        }
        AsapMessage::Error(e) => touch_error(&e.error),
    }
}

/// Touches every field and iterates every list of a message (no allocation).
pub(crate) fn touch_enrp(m: &EnrpMessage<'_>) -> usize {
    let _ = m.ids();
    match m {
        EnrpMessage::Presence(p) => p.server_info.as_ref().map_or(0, touch_server_info),
        EnrpMessage::HandleTableResponse(r) => {
            let mut inner = 0;
            let n = seq_each(&r.entries, |e| {
                let pes = touch_pes(&e.elements);
                assert!(!e.elements.is_empty(), "a pool entry lists PEs");
                inner += e.pool_handle.as_bytes().len() + pes;
            });
            n + inner
        }
        EnrpMessage::HandleUpdate(u) => u.pool_handle.as_bytes().len() + touch_pe(&u.element),
        EnrpMessage::ListResponse(l) => {
            let mut inner = 0;
            let n = seq_each(&l.servers, |s| inner += touch_server_info(s));
            n + inner
        }
        EnrpMessage::Error(e) => touch_error(&e.error),
        EnrpMessage::HandleTableRequest(_)
        | EnrpMessage::ListRequest(_)
        | EnrpMessage::InitTakeover(_)
        | EnrpMessage::InitTakeoverAck(_)
        | EnrpMessage::TakeoverServer(_) => 0,
    }
}

pub(crate) fn touch_param(p: &Param<'_>) -> usize {
    match p {
        Param::Address(_) | Param::PeId(_) | Param::PeChecksum(_) => 1,
        Param::HandleResolutionOption(_) => 1,
        Param::Transport(t) => touch_transport(t),
        Param::Policy(p) => touch_policy(p),
        Param::PoolHandle(h) => h.as_bytes().len(),
        Param::PoolElement(pe) => touch_pe(pe),
        Param::ServerInfo(s) => touch_server_info(s),
        Param::OperationError(e) => touch_error(e),
        Param::Cookie(c) => c.0.len(),
        Param::Unknown(t) => {
            assert_eq!(t.raw().len(), t.value().len() + 4);
            t.value().len()
        }
    }
}

// ---------------------------------------------------------------------------
// Byte-level structure of canonical encodings
// ---------------------------------------------------------------------------

pub(crate) fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

pub(crate) fn put16(b: &mut [u8], at: usize, v: usize) {
    let v = u16::try_from(v).expect("length fits 16 bits");
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Bytes between the common header and the first parameter.
pub(crate) fn fixed_part(proto: Protocol, ty: u8) -> usize {
    match proto {
        Protocol::Asap => match ty {
            0x07 | 0x0a => 4,
            _ => 0,
        },
        Protocol::Enrp => match ty {
            0x04 | 0x07..=0x09 => 12,
            _ => 8,
        },
    }
}

/// Parameters that hold other parameters (after a fixed part of this size)
/// subject to the unknown-parameter rules. The Operation Error is not one of
/// them: its children are causes, which have no action bits.
pub(crate) fn container_fixed(ty: u16) -> Option<usize> {
    match ty {
        0x0003 => Some(8),
        0x0004..=0x0007 | 0x000b => Some(4),
        0x000a => Some(12),
        _ => None,
    }
}

/// Rewrites a canonical (RFC 5354) encoding into RSPLIB's length convention:
/// every container (the message, transports, Pool Element, Server
/// Information, Operation Error, causes holding a parameter) counts the pad
/// after its last inner parameter. Leaf lengths stay exact.
pub(crate) fn rsplib_form(canonical: &[u8], proto: Protocol) -> Vec<u8> {
    fn region(out: &mut [u8], mut off: usize, end: usize, causes: bool) {
        while off + 4 <= end {
            let ty = be16(out, off);
            let len = be16(out, off + 2);
            let nested = if causes {
                ((ty == 5 || ty == 7) && len > 4).then_some((0, false))
            } else if ty == 0x000c {
                Some((0, true))
            } else {
                container_fixed(u16::try_from(ty).expect("u16")).map(|f| (f, false))
            };
            if let Some((fixed, inner_causes)) = nested {
                region(out, off + 4 + fixed, off + len, inner_causes);
                put16(out, off + 2, pad4(len));
            }
            off += pad4(len);
        }
    }
    let mut out = canonical.to_vec();
    let len = be16(&out, 2);
    let start = 4 + fixed_part(proto, out[0]);
    region(&mut out, start, len, false);
    put16(&mut out, 2, pad4(len));
    assert_eq!(out.len(), pad4(len));
    out
}

/// A place between parameters where another parameter may go.
#[derive(Clone, Debug)]
pub(crate) struct Boundary {
    /// Offset in the message (always a multiple of 4).
    pub(crate) at: usize,
    /// Offsets of the enclosing headers, outermost first; 0 is the message.
    pub(crate) ancestors: Vec<usize>,
}

/// Every boundary of a canonical encoding at which an unknown parameter is
/// subject to its action bits: before, between and after the parameters of
/// the message and of every transport, Pool Element and Server Information.
pub(crate) fn boundaries(bytes: &[u8], proto: Protocol) -> Vec<Boundary> {
    fn walk(b: &[u8], mut off: usize, end: usize, anc: &mut Vec<usize>, out: &mut Vec<Boundary>) {
        loop {
            out.push(Boundary {
                at: off,
                ancestors: anc.clone(),
            });
            if off + 4 > end {
                break;
            }
            let ty = u16::try_from(be16(b, off)).expect("u16");
            let len = be16(b, off + 2);
            if let Some(fixed) = container_fixed(ty) {
                anc.push(off);
                walk(b, off + 4 + fixed, off + len, anc, out);
                anc.pop();
            }
            off += pad4(len);
        }
    }
    let mut out = Vec::new();
    let len = be16(bytes, 2);
    walk(
        bytes,
        4 + fixed_part(proto, bytes[0]),
        len,
        &mut vec![0],
        &mut out,
    );
    out
}

/// Offsets of every parameter header found by [`boundaries`] (for targeted
/// length-field mutations).
pub(crate) fn header_offsets(bytes: &[u8], proto: Protocol) -> Vec<usize> {
    boundaries(bytes, proto)
        .into_iter()
        .map(|b| b.at)
        .filter(|&at| at + 4 <= bytes.len())
        .collect()
}

/// Inserts `tlv` (header and value, unpadded) at boundary `b`, fixing every
/// enclosing length the way a canonical encoder would have written it.
pub(crate) fn insert_at(bytes: &[u8], b: &Boundary, tlv: &[u8]) -> Vec<u8> {
    let padded = pad4(tlv.len());
    let mut out = Vec::with_capacity(bytes.len() + padded);
    out.extend_from_slice(&bytes[..b.at]);
    out.extend_from_slice(tlv);
    out.resize(b.at + padded, 0);
    out.extend_from_slice(&bytes[b.at..]);
    for &a in &b.ancestors {
        let len = be16(&out, a + 2);
        let new = if b.at >= a + len {
            // Inserted after the container's last parameter: it becomes the
            // last one, and only its own pad stays uncounted.
            b.at - a + tlv.len()
        } else {
            len + padded
        };
        put16(&mut out, a + 2, new);
    }
    out
}

/// Decodes hex with optional whitespace.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd number of hex digits");
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("ascii"), 16).expect("hex"))
        .collect()
}
