//! ASAP messages (RFC 5352 §2.2): one struct per message type, decoded from a
//! [`MessageView`] and encoded with [`Encode`].
//!
//! Parameters are read in the order the RFC figures give them (RSPLIB parses
//! positionally too). Unknown parameters follow their action bits; a known
//! parameter out of place is an error. Flag bits the RFC does not define for a
//! type are ignored on receipt and sent as zero.

use crate::codes::{AsapType, flags, param_type, unknown_message_reports};
use crate::error::{Error, ErrorKind};
use crate::header::MessageView;
use crate::params::element::PoolElement;
use crate::params::operation_error::OperationError;
use crate::params::policy::PolicyParam;
use crate::params::simple::{
    HandleResolutionOption, PeId, PoolHandle, ServerId, check_handle, parse_pe_id,
};
use crate::params::transport::{Transport, TransportKind};
use crate::seq::Seq;
use crate::tlv::{Reader, Reports};
use crate::writer::{Encode, Writer};

const fn bit(flags: u8, mask: u8) -> bool {
    flags & mask != 0
}

const fn flag(on: bool, mask: u8) -> u8 {
    if on { mask } else { 0 }
}

fn pool_handle<'a>(r: &mut Reader<'a, '_>) -> Result<PoolHandle<'a>, Error> {
    PoolHandle::parse(&r.expect(param_type::POOL_HANDLE, "Pool Handle")?)
}

fn pe_id(r: &mut Reader<'_, '_>) -> Result<PeId, Error> {
    parse_pe_id(&r.expect(param_type::PE_IDENTIFIER, "PE Identifier")?)
}

fn optional_error<'a>(r: &mut Reader<'a, '_>) -> Result<Option<OperationError<'a>>, Error> {
    r.optional(param_type::OPERATION_ERROR)?
        .map(|t| OperationError::parse(&t))
        .transpose()
}

fn optional_policy<'a>(r: &mut Reader<'a, '_>) -> Result<Option<PolicyParam<'a>>, Error> {
    r.optional(param_type::POLICY)?
        .map(|t| PolicyParam::parse(&t))
        .transpose()
}

/// Reads a run of Pool Element parameters; returns them as a sequence over
/// the received bytes.
fn elements<'a>(r: &mut Reader<'a, '_>) -> Result<Seq<'a, PoolElement<'a>>, Error> {
    let start = r.remaining();
    let mut end = start;
    let mut count = 0;
    while let Some(t) = r.optional(param_type::POOL_ELEMENT)? {
        PoolElement::parse(&t, r.mode())?;
        count += 1;
        end = r.remaining();
    }
    Ok(Seq::from_wire(&start[..start.len() - end.len()], count))
}

fn server_id<'a>(body: &'a [u8], field: &'static str) -> Result<(ServerId, &'a [u8]), Error> {
    match body.split_first_chunk::<4>() {
        Some((id, rest)) => Ok((ServerId(u32::from_be_bytes(*id)), rest)),
        None => Err(Error::new(ErrorKind::Truncated, field, body)),
    }
}

fn put_handle(w: &mut Writer<'_>, h: &PoolHandle<'_>) {
    check_handle(w, h);
    h.emit(w);
}

/// ASAP_REGISTRATION (0x01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Registration<'a> {
    /// The pool to join.
    pub pool_handle: PoolHandle<'a>,
    /// The PE's description.
    pub element: PoolElement<'a>,
}

/// ASAP_DEREGISTRATION (0x02).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deregistration<'a> {
    /// The pool.
    pub pool_handle: PoolHandle<'a>,
    /// The leaving PE.
    pub pe_id: PeId,
}

/// ASAP_REGISTRATION_RESPONSE (0x03).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegistrationResponse<'a> {
    /// Flag R: the registration was rejected.
    pub reject: bool,
    /// The pool.
    pub pool_handle: PoolHandle<'a>,
    /// The PE.
    pub pe_id: PeId,
    /// Why it was rejected, or (with `reject` clear) a warning.
    pub error: Option<OperationError<'a>>,
}

/// ASAP_DEREGISTRATION_RESPONSE (0x04).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeregistrationResponse<'a> {
    /// The pool.
    pub pool_handle: PoolHandle<'a>,
    /// The PE.
    pub pe_id: PeId,
    /// Present when the deregistration was refused.
    pub error: Option<OperationError<'a>>,
}

/// ASAP_HANDLE_RESOLUTION (0x05).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleResolution<'a> {
    /// Flag S: subscribe to changes of the pool.
    pub subscribe: bool,
    /// The pool to resolve.
    pub pool_handle: PoolHandle<'a>,
    /// RSPLIB's item count option (0x803F).
    pub option: Option<HandleResolutionOption>,
}

/// ASAP_HANDLE_RESOLUTION_RESPONSE (0x06).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandleResolutionResponse<'a> {
    /// Flag A: the subscription was accepted.
    pub accept: bool,
    /// The pool.
    pub pool_handle: PoolHandle<'a>,
    /// The pool's policy (absent means Round Robin).
    pub policy: Option<PolicyParam<'a>>,
    /// The selected PEs.
    pub elements: Seq<'a, PoolElement<'a>>,
    /// Present on failure (normally Unknown Pool Handle).
    pub error: Option<OperationError<'a>>,
}

/// ASAP_ENDPOINT_KEEP_ALIVE (0x07).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointKeepAlive<'a> {
    /// Flag H: the sender wants to become the PE's home server.
    pub home: bool,
    /// The sending server.
    pub server_id: ServerId,
    /// The PE's pool.
    pub pool_handle: PoolHandle<'a>,
    /// The PE (RSPLIB adds it; not in RFC 5352).
    pub pe_id: Option<PeId>,
}

/// ASAP_ENDPOINT_KEEP_ALIVE_ACK (0x08).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointKeepAliveAck<'a> {
    /// The PE's pool.
    pub pool_handle: PoolHandle<'a>,
    /// The PE.
    pub pe_id: PeId,
}

/// ASAP_ENDPOINT_UNREACHABLE (0x09).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointUnreachable<'a> {
    /// The PE's pool.
    pub pool_handle: PoolHandle<'a>,
    /// The PE that could not be reached.
    pub pe_id: PeId,
}

/// ASAP_SERVER_ANNOUNCE (0x0A).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerAnnounce<'a> {
    /// The announcing server.
    pub server_id: ServerId,
    /// Where it accepts ASAP (SCTP or TCP); empty means SCTP on port 3863 at
    /// the datagram's source address.
    pub transports: Seq<'a, Transport<'a>>,
}

/// ASAP_COOKIE (0x0B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie<'a> {
    /// The opaque cookie.
    pub cookie: &'a [u8],
}

/// ASAP_COOKIE_ECHO (0x0C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieEcho<'a> {
    /// The echoed cookie.
    pub cookie: &'a [u8],
}

/// ASAP_BUSINESS_CARD (0x0D).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BusinessCard<'a> {
    /// The sender's pool.
    pub pool_handle: PoolHandle<'a>,
    /// The policy (RSPLIB inserts one; not in RFC 5352).
    pub policy: Option<PolicyParam<'a>>,
    /// Failover candidates, most preferred first.
    pub elements: Seq<'a, PoolElement<'a>>,
}

/// ASAP_ERROR (0x0E).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AsapError<'a> {
    /// What went wrong.
    pub error: OperationError<'a>,
}

/// Any ASAP message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AsapMessage<'a> {
    /// 0x01
    Registration(Registration<'a>),
    /// 0x02
    Deregistration(Deregistration<'a>),
    /// 0x03
    RegistrationResponse(RegistrationResponse<'a>),
    /// 0x04
    DeregistrationResponse(DeregistrationResponse<'a>),
    /// 0x05
    HandleResolution(HandleResolution<'a>),
    /// 0x06
    HandleResolutionResponse(HandleResolutionResponse<'a>),
    /// 0x07
    EndpointKeepAlive(EndpointKeepAlive<'a>),
    /// 0x08
    EndpointKeepAliveAck(EndpointKeepAliveAck<'a>),
    /// 0x09
    EndpointUnreachable(EndpointUnreachable<'a>),
    /// 0x0A
    ServerAnnounce(ServerAnnounce<'a>),
    /// 0x0B
    Cookie(Cookie<'a>),
    /// 0x0C
    CookieEcho(CookieEcho<'a>),
    /// 0x0D
    BusinessCard(BusinessCard<'a>),
    /// 0x0E
    Error(AsapError<'a>),
}

impl<'a> AsapMessage<'a> {
    /// Decodes one ASAP message; "skip and report" parameters are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_reporting(bytes, &mut Reports::new())
    }

    /// Decodes one ASAP message, recording unknown "skip and report"
    /// parameters in `reports` so the caller can send an ASAP_ERROR.
    pub fn parse_reporting(bytes: &'a [u8], reports: &mut Reports<'a>) -> Result<Self, Error> {
        Self::parse_view(&MessageView::new_checked(bytes)?, reports)
    }

    /// Decodes a checked message view.
    pub fn parse_view(view: &MessageView<'a>, reports: &mut Reports<'a>) -> Result<Self, Error> {
        let f = view.flags();
        let body = view.body();
        let ty = AsapType::from_code(view.ty());
        let name = ty.name();
        // Messages that start with a fixed server id.
        let (fixed_id, body) = match ty {
            AsapType::EndpointKeepAlive | AsapType::ServerAnnounce => {
                let (id, rest) = server_id(body, name)?;
                (id, rest)
            }
            _ => (ServerId(0), body),
        };
        let mut r = Reader::new(body, name, reports);
        let msg = match ty {
            AsapType::Registration => {
                let pool_handle = pool_handle(&mut r)?;
                let t = r.expect(param_type::POOL_ELEMENT, "Pool Element")?;
                let element = PoolElement::parse(&t, r.mode())?;
                Self::Registration(Registration {
                    pool_handle,
                    element,
                })
            }
            AsapType::Deregistration => Self::Deregistration(Deregistration {
                pool_handle: pool_handle(&mut r)?,
                pe_id: pe_id(&mut r)?,
            }),
            AsapType::RegistrationResponse => Self::RegistrationResponse(RegistrationResponse {
                reject: bit(f, flags::REGISTRATION_REJECT),
                pool_handle: pool_handle(&mut r)?,
                pe_id: pe_id(&mut r)?,
                error: optional_error(&mut r)?,
            }),
            AsapType::DeregistrationResponse => {
                Self::DeregistrationResponse(DeregistrationResponse {
                    pool_handle: pool_handle(&mut r)?,
                    pe_id: pe_id(&mut r)?,
                    error: optional_error(&mut r)?,
                })
            }
            AsapType::HandleResolution => Self::HandleResolution(HandleResolution {
                subscribe: bit(f, flags::HANDLE_RESOLUTION_SUBSCRIBE),
                pool_handle: pool_handle(&mut r)?,
                option: r
                    .optional(param_type::HANDLE_RESOLUTION_OPTION)?
                    .map(|t| HandleResolutionOption::parse(&t))
                    .transpose()?,
            }),
            AsapType::HandleResolutionResponse => {
                Self::HandleResolutionResponse(HandleResolutionResponse {
                    accept: bit(f, flags::HANDLE_RESOLUTION_ACCEPT),
                    pool_handle: pool_handle(&mut r)?,
                    policy: optional_policy(&mut r)?,
                    elements: elements(&mut r)?,
                    error: optional_error(&mut r)?,
                })
            }
            AsapType::EndpointKeepAlive => Self::EndpointKeepAlive(EndpointKeepAlive {
                home: bit(f, flags::KEEP_ALIVE_HOME),
                server_id: fixed_id,
                pool_handle: pool_handle(&mut r)?,
                pe_id: r
                    .optional(param_type::PE_IDENTIFIER)?
                    .map(|t| parse_pe_id(&t))
                    .transpose()?,
            }),
            AsapType::EndpointKeepAliveAck => Self::EndpointKeepAliveAck(EndpointKeepAliveAck {
                pool_handle: pool_handle(&mut r)?,
                pe_id: pe_id(&mut r)?,
            }),
            AsapType::EndpointUnreachable => Self::EndpointUnreachable(EndpointUnreachable {
                pool_handle: pool_handle(&mut r)?,
                pe_id: pe_id(&mut r)?,
            }),
            AsapType::ServerAnnounce => {
                let start = r.remaining();
                let mut end = start;
                let mut count = 0;
                while let Some(t) = r.optional_if(|t| {
                    t == param_type::SCTP_TRANSPORT || t == param_type::TCP_TRANSPORT
                })? {
                    Transport::parse(&t, r.mode())?;
                    count += 1;
                    end = r.remaining();
                }
                let transports = Seq::from_wire(&start[..start.len() - end.len()], count);
                Self::ServerAnnounce(ServerAnnounce {
                    server_id: fixed_id,
                    transports,
                })
            }
            AsapType::Cookie => Self::Cookie(Cookie {
                cookie: r.expect(param_type::COOKIE, "Cookie")?.value(),
            }),
            AsapType::CookieEcho => Self::CookieEcho(CookieEcho {
                cookie: r.expect(param_type::COOKIE, "Cookie")?.value(),
            }),
            AsapType::BusinessCard => {
                let pool_handle = pool_handle(&mut r)?;
                let policy = optional_policy(&mut r)?;
                let elements = elements(&mut r)?;
                if elements.is_empty() {
                    return Err(Error::new(ErrorKind::Missing, "Pool Element", body));
                }
                Self::BusinessCard(BusinessCard {
                    pool_handle,
                    policy,
                    elements,
                })
            }
            AsapType::Error => {
                let t = r.expect(param_type::OPERATION_ERROR, "Operation Error")?;
                Self::Error(AsapError {
                    error: OperationError::parse(&t)?,
                })
            }
            AsapType::Unknown(code) => {
                return Err(Error::new(
                    ErrorKind::UnrecognizedMessage {
                        report: unknown_message_reports(code),
                    },
                    "ASAP message type",
                    view.bytes(),
                ));
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// The message type.
    pub const fn message_type(&self) -> AsapType {
        match self {
            Self::Registration(_) => AsapType::Registration,
            Self::Deregistration(_) => AsapType::Deregistration,
            Self::RegistrationResponse(_) => AsapType::RegistrationResponse,
            Self::DeregistrationResponse(_) => AsapType::DeregistrationResponse,
            Self::HandleResolution(_) => AsapType::HandleResolution,
            Self::HandleResolutionResponse(_) => AsapType::HandleResolutionResponse,
            Self::EndpointKeepAlive(_) => AsapType::EndpointKeepAlive,
            Self::EndpointKeepAliveAck(_) => AsapType::EndpointKeepAliveAck,
            Self::EndpointUnreachable(_) => AsapType::EndpointUnreachable,
            Self::ServerAnnounce(_) => AsapType::ServerAnnounce,
            Self::Cookie(_) => AsapType::Cookie,
            Self::CookieEcho(_) => AsapType::CookieEcho,
            Self::BusinessCard(_) => AsapType::BusinessCard,
            Self::Error(_) => AsapType::Error,
        }
    }

    /// The flags byte this message is encoded with.
    pub const fn flags(&self) -> u8 {
        match self {
            Self::RegistrationResponse(m) => flag(m.reject, flags::REGISTRATION_REJECT),
            Self::HandleResolution(m) => flag(m.subscribe, flags::HANDLE_RESOLUTION_SUBSCRIBE),
            Self::HandleResolutionResponse(m) => flag(m.accept, flags::HANDLE_RESOLUTION_ACCEPT),
            Self::EndpointKeepAlive(m) => flag(m.home, flags::KEEP_ALIVE_HOME),
            _ => 0,
        }
    }
}

impl Encode for AsapMessage<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let ty = self.message_type();
        let m = w.begin_message(ty.code(), self.flags(), ty.name());
        match self {
            Self::Registration(x) => {
                put_handle(w, &x.pool_handle);
                x.element.emit(w);
            }
            Self::Deregistration(x) => {
                put_handle(w, &x.pool_handle);
                x.pe_id.emit(w);
            }
            Self::RegistrationResponse(x) => {
                put_handle(w, &x.pool_handle);
                x.pe_id.emit(w);
                if let Some(e) = &x.error {
                    e.emit(w);
                }
            }
            Self::DeregistrationResponse(x) => {
                put_handle(w, &x.pool_handle);
                x.pe_id.emit(w);
                if let Some(e) = &x.error {
                    e.emit(w);
                }
            }
            Self::HandleResolution(x) => {
                put_handle(w, &x.pool_handle);
                if let Some(o) = &x.option {
                    o.emit(w);
                }
            }
            Self::HandleResolutionResponse(x) => {
                put_handle(w, &x.pool_handle);
                if let Some(p) = &x.policy {
                    p.emit(w);
                }
                for e in x.elements.iter() {
                    e.emit(w);
                }
                if let Some(e) = &x.error {
                    e.emit(w);
                }
            }
            Self::EndpointKeepAlive(x) => {
                w.put_u32(x.server_id.0);
                put_handle(w, &x.pool_handle);
                if let Some(id) = &x.pe_id {
                    id.emit(w);
                }
            }
            Self::EndpointKeepAliveAck(x) => {
                put_handle(w, &x.pool_handle);
                x.pe_id.emit(w);
            }
            Self::EndpointUnreachable(x) => {
                put_handle(w, &x.pool_handle);
                x.pe_id.emit(w);
            }
            Self::ServerAnnounce(x) => {
                w.put_u32(x.server_id.0);
                for t in x.transports.iter() {
                    if !matches!(t.kind, TransportKind::Sctp | TransportKind::Tcp) {
                        w.fail(crate::EncodeError::InvalidValue {
                            field: "Server Announce transport",
                        });
                    }
                    t.emit(w);
                }
            }
            Self::Cookie(x) => crate::params::simple::Cookie(x.cookie).emit(w),
            Self::CookieEcho(x) => crate::params::simple::Cookie(x.cookie).emit(w),
            Self::BusinessCard(x) => {
                put_handle(w, &x.pool_handle);
                if let Some(p) = &x.policy {
                    p.emit(w);
                }
                if x.elements.is_empty() {
                    w.fail(crate::EncodeError::InvalidValue {
                        field: "Business Card",
                    });
                }
                for e in x.elements.iter() {
                    e.emit(w);
                }
            }
            Self::Error(x) => x.error.emit(w),
        }
        w.end_message(m);
    }
}

macro_rules! from_variants {
    ($enum:ident: $($variant:ident($ty:ident)),*) => {
        $(impl<'a> From<$ty<'a>> for $enum<'a> {
            fn from(m: $ty<'a>) -> Self {
                Self::$variant(m)
            }
        })*
    };
}

from_variants!(AsapMessage: Registration(Registration), Deregistration(Deregistration),
    RegistrationResponse(RegistrationResponse), DeregistrationResponse(DeregistrationResponse),
    HandleResolution(HandleResolution), HandleResolutionResponse(HandleResolutionResponse),
    EndpointKeepAlive(EndpointKeepAlive), EndpointKeepAliveAck(EndpointKeepAliveAck),
    EndpointUnreachable(EndpointUnreachable), ServerAnnounce(ServerAnnounce), Cookie(Cookie),
    CookieEcho(CookieEcho), BusinessCard(BusinessCard), Error(AsapError));

pub(crate) use from_variants;
