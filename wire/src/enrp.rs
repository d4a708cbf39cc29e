//! ENRP messages (RFC 5353 §2). Every body starts with the sending and
//! receiving server ids (receiver 0 when group-cast).

use zerocopy::FromBytes;

use crate::asap::from_variants;
use crate::codes::{EnrpType, flags, param_type, unknown_message_reports};
use crate::error::{EncodeError, Error, ErrorKind};
use crate::header::{EnrpIds, MessageView};
use crate::params::element::{PoolElement, ServerInfo};
use crate::params::operation_error::OperationError;
use crate::params::simple::{PeChecksum, PoolHandle, ServerId, check_handle};
use crate::seq::{Seq, WireItem};
use crate::tlv::{Reader, Reports, next_validated, split_validated};
use crate::writer::{Encode, Writer};

/// The Update Action of an ENRP_HANDLE_UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateAction {
    /// 0x0000: add the PE or replace it.
    AddPe,
    /// 0x0001: remove the PE.
    DelPe,
}

impl UpdateAction {
    /// The wire code.
    pub const fn code(self) -> u16 {
        match self {
            Self::AddPe => 0,
            Self::DelPe => 1,
        }
    }
}

/// One pool of a handle table: its handle and one or more of its PEs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolEntry<'a> {
    /// The pool.
    pub pool_handle: PoolHandle<'a>,
    /// Its PEs in this chunk.
    pub elements: Seq<'a, PoolElement<'a>>,
}

impl<'a> WireItem<'a> for PoolEntry<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        // Find the next pool handle, then take the PEs up to the next handle.
        let tlv = next_validated(region, |ty| ty == param_type::POOL_HANDLE)?;
        let pool_handle = PoolHandle::parse(&tlv).ok()?;
        let start = *region;
        let mut count = 0;
        while let Some((tlv, rest)) = split_validated(region) {
            if tlv.ty() == param_type::POOL_HANDLE {
                break;
            }
            count += usize::from(tlv.ty() == param_type::POOL_ELEMENT);
            *region = rest;
        }
        let elements = Seq::from_wire(&start[..start.len() - region.len()], count);
        Some(Self {
            pool_handle,
            elements,
        })
    }
}

/// ENRP_PRESENCE (0x01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Presence<'a> {
    /// Flag R: the receiver must answer with a presence.
    pub reply_required: bool,
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server (0 when group-cast).
    pub receiver: ServerId,
    /// The sender's checksum over the PEs it owns.
    pub checksum: Option<PeChecksum>,
    /// The sender's id and ENRP transport.
    pub server_info: Option<ServerInfo<'a>>,
}

/// ENRP_HANDLE_TABLE_REQUEST (0x02).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleTableRequest {
    /// Flag W: only the PEs the receiver owns.
    pub own_children_only: bool,
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
}

/// ENRP_HANDLE_TABLE_RESPONSE (0x03).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandleTableResponse<'a> {
    /// Flag R: the request was refused.
    pub reject: bool,
    /// Flag M: more chunks follow; ask again.
    pub more: bool,
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
    /// The pools of this chunk.
    pub entries: Seq<'a, PoolEntry<'a>>,
}

/// ENRP_HANDLE_UPDATE (0x04).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HandleUpdate<'a> {
    /// Flag T (draft-dreibholz-rserpool-enrp-takeover): takeover suggested.
    pub takeover_suggested: bool,
    /// Sending server (the PE's home).
    pub sender: ServerId,
    /// Receiving server (0 when group-cast).
    pub receiver: ServerId,
    /// Add or delete.
    pub action: UpdateAction,
    /// The PE's pool.
    pub pool_handle: PoolHandle<'a>,
    /// The whole PE (also for a delete).
    pub element: PoolElement<'a>,
}

/// ENRP_LIST_REQUEST (0x05).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRequest {
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
}

/// ENRP_LIST_RESPONSE (0x06).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ListResponse<'a> {
    /// Flag R: the request was refused.
    pub reject: bool,
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
    /// The known peers.
    pub servers: Seq<'a, ServerInfo<'a>>,
}

/// The three takeover messages share one layout: the two ids and a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Takeover {
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
    /// The server being taken over.
    pub target: ServerId,
}

/// ENRP_ERROR (0x0A).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnrpError<'a> {
    /// Sending server.
    pub sender: ServerId,
    /// Receiving server.
    pub receiver: ServerId,
    /// What went wrong.
    pub error: OperationError<'a>,
}

/// Any ENRP message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EnrpMessage<'a> {
    /// 0x01
    Presence(Presence<'a>),
    /// 0x02
    HandleTableRequest(HandleTableRequest),
    /// 0x03
    HandleTableResponse(HandleTableResponse<'a>),
    /// 0x04
    HandleUpdate(HandleUpdate<'a>),
    /// 0x05
    ListRequest(ListRequest),
    /// 0x06
    ListResponse(ListResponse<'a>),
    /// 0x07
    InitTakeover(Takeover),
    /// 0x08
    InitTakeoverAck(Takeover),
    /// 0x09
    TakeoverServer(Takeover),
    /// 0x0A
    Error(EnrpError<'a>),
}

impl<'a> EnrpMessage<'a> {
    /// Decodes one ENRP message; "skip and report" parameters are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_reporting(bytes, &mut Reports::new())
    }

    /// Decodes one ENRP message, recording unknown "skip and report"
    /// parameters in `reports`.
    pub fn parse_reporting(bytes: &'a [u8], reports: &mut Reports<'a>) -> Result<Self, Error> {
        Self::parse_view(&MessageView::new_checked(bytes)?, reports)
    }

    /// Decodes a checked message view.
    pub fn parse_view(view: &MessageView<'a>, reports: &mut Reports<'a>) -> Result<Self, Error> {
        let ty = EnrpType::from_code(view.ty());
        if let EnrpType::Unknown(code) = ty {
            return Err(Error::new(
                ErrorKind::UnrecognizedMessage {
                    report: unknown_message_reports(code),
                },
                "ENRP message type",
                view.bytes(),
            ));
        }
        let name = ty.name();
        let f = view.flags();
        let (ids, body) = EnrpIds::ref_from_prefix(view.body()).map_err(|_| {
            Error::new(
                ErrorKind::Truncated,
                "ENRP server identifiers",
                view.bytes(),
            )
        })?;
        let sender = ServerId(ids.sender.get());
        let receiver = ServerId(ids.receiver.get());
        let takeover = |body: &'a [u8]| -> Result<(Takeover, &'a [u8]), Error> {
            match body.split_first_chunk::<4>() {
                Some((t, rest)) => Ok((
                    Takeover {
                        sender,
                        receiver,
                        target: ServerId(u32::from_be_bytes(*t)),
                    },
                    rest,
                )),
                None => Err(Error::new(
                    ErrorKind::Truncated,
                    "Target Server Identifier",
                    view.bytes(),
                )),
            }
        };
        let (fixed, body) = match ty {
            EnrpType::InitTakeover | EnrpType::InitTakeoverAck | EnrpType::TakeoverServer => {
                let (t, rest) = takeover(body)?;
                (Some(t), rest)
            }
            _ => (None, body),
        };
        let mut action = UpdateAction::AddPe;
        let body = if ty == EnrpType::HandleUpdate {
            let Some((a, rest)) = body.split_first_chunk::<4>() else {
                return Err(Error::new(
                    ErrorKind::Truncated,
                    "Update Action",
                    view.bytes(),
                ));
            };
            action = match u16::from_be_bytes([a[0], a[1]]) {
                0 => UpdateAction::AddPe,
                1 => UpdateAction::DelPe,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidValue,
                        "Update Action",
                        view.bytes(),
                    ));
                }
            };
            rest
        } else {
            body
        };
        let mut r = Reader::new(body, name, reports);
        let msg = match (ty, fixed) {
            (EnrpType::Presence, _) => Self::Presence(Presence {
                reply_required: f & flags::PRESENCE_REPLY_REQUIRED != 0,
                sender,
                receiver,
                checksum: r
                    .optional(param_type::PE_CHECKSUM)?
                    .map(|t| PeChecksum::parse(&t))
                    .transpose()?,
                server_info: match r.optional(param_type::SERVER_INFORMATION)? {
                    Some(t) => Some(ServerInfo::parse(&t, r.mode())?),
                    None => None,
                },
            }),
            (EnrpType::HandleTableRequest, _) => Self::HandleTableRequest(HandleTableRequest {
                own_children_only: f & flags::HANDLE_TABLE_OWN_CHILDREN_ONLY != 0,
                sender,
                receiver,
            }),
            (EnrpType::HandleTableResponse, _) => {
                let start = r.remaining();
                let mut end = start;
                let mut count = 0;
                while let Some(t) = r.optional(param_type::POOL_HANDLE)? {
                    PoolHandle::parse(&t)?;
                    let mut n = 0;
                    while let Some(pe) = r.optional(param_type::POOL_ELEMENT)? {
                        PoolElement::parse(&pe, r.mode())?;
                        n += 1;
                    }
                    if n == 0 {
                        return Err(Error::new(ErrorKind::Missing, "Pool Element", t.raw()));
                    }
                    count += 1;
                    end = r.remaining();
                }
                Self::HandleTableResponse(HandleTableResponse {
                    reject: f & flags::HANDLE_TABLE_REJECT != 0,
                    more: f & flags::HANDLE_TABLE_MORE != 0,
                    sender,
                    receiver,
                    entries: Seq::from_wire(&start[..start.len() - end.len()], count),
                })
            }
            (EnrpType::HandleUpdate, _) => {
                let pool_handle =
                    PoolHandle::parse(&r.expect(param_type::POOL_HANDLE, "Pool Handle")?)?;
                let t = r.expect(param_type::POOL_ELEMENT, "Pool Element")?;
                Self::HandleUpdate(HandleUpdate {
                    takeover_suggested: f & flags::HANDLE_UPDATE_TAKEOVER_SUGGESTED != 0,
                    sender,
                    receiver,
                    action,
                    pool_handle,
                    element: PoolElement::parse(&t, r.mode())?,
                })
            }
            (EnrpType::ListRequest, _) => Self::ListRequest(ListRequest { sender, receiver }),
            (EnrpType::ListResponse, _) => {
                let start = r.remaining();
                let mut end = start;
                let mut count = 0;
                while let Some(t) = r.optional(param_type::SERVER_INFORMATION)? {
                    ServerInfo::parse(&t, r.mode())?;
                    count += 1;
                    end = r.remaining();
                }
                Self::ListResponse(ListResponse {
                    reject: f & flags::LIST_REJECT != 0,
                    sender,
                    receiver,
                    servers: Seq::from_wire(&start[..start.len() - end.len()], count),
                })
            }
            (EnrpType::InitTakeover, Some(t)) => Self::InitTakeover(t),
            (EnrpType::InitTakeoverAck, Some(t)) => Self::InitTakeoverAck(t),
            (EnrpType::TakeoverServer, Some(t)) => Self::TakeoverServer(t),
            (EnrpType::Error, _) => {
                let t = r.expect(param_type::OPERATION_ERROR, "Operation Error")?;
                Self::Error(EnrpError {
                    sender,
                    receiver,
                    error: OperationError::parse(&t)?,
                })
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnrecognizedMessage { report: false },
                    "ENRP message type",
                    view.bytes(),
                ));
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// The message type.
    pub const fn message_type(&self) -> EnrpType {
        match self {
            Self::Presence(_) => EnrpType::Presence,
            Self::HandleTableRequest(_) => EnrpType::HandleTableRequest,
            Self::HandleTableResponse(_) => EnrpType::HandleTableResponse,
            Self::HandleUpdate(_) => EnrpType::HandleUpdate,
            Self::ListRequest(_) => EnrpType::ListRequest,
            Self::ListResponse(_) => EnrpType::ListResponse,
            Self::InitTakeover(_) => EnrpType::InitTakeover,
            Self::InitTakeoverAck(_) => EnrpType::InitTakeoverAck,
            Self::TakeoverServer(_) => EnrpType::TakeoverServer,
            Self::Error(_) => EnrpType::Error,
        }
    }

    /// The flags byte this message is encoded with.
    pub const fn flags(&self) -> u8 {
        const fn f(on: bool, mask: u8) -> u8 {
            if on { mask } else { 0 }
        }
        match self {
            Self::Presence(m) => f(m.reply_required, flags::PRESENCE_REPLY_REQUIRED),
            Self::HandleTableRequest(m) => {
                f(m.own_children_only, flags::HANDLE_TABLE_OWN_CHILDREN_ONLY)
            }
            Self::HandleTableResponse(m) => {
                f(m.reject, flags::HANDLE_TABLE_REJECT) | f(m.more, flags::HANDLE_TABLE_MORE)
            }
            Self::HandleUpdate(m) => f(
                m.takeover_suggested,
                flags::HANDLE_UPDATE_TAKEOVER_SUGGESTED,
            ),
            Self::ListResponse(m) => f(m.reject, flags::LIST_REJECT),
            _ => 0,
        }
    }

    /// The (sender, receiver) server ids.
    pub const fn ids(&self) -> (ServerId, ServerId) {
        match self {
            Self::Presence(m) => (m.sender, m.receiver),
            Self::HandleTableRequest(m) => (m.sender, m.receiver),
            Self::HandleTableResponse(m) => (m.sender, m.receiver),
            Self::HandleUpdate(m) => (m.sender, m.receiver),
            Self::ListRequest(m) => (m.sender, m.receiver),
            Self::ListResponse(m) => (m.sender, m.receiver),
            Self::InitTakeover(m) | Self::InitTakeoverAck(m) | Self::TakeoverServer(m) => {
                (m.sender, m.receiver)
            }
            Self::Error(m) => (m.sender, m.receiver),
        }
    }
}

impl Encode for EnrpMessage<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let ty = self.message_type();
        let m = w.begin_message(ty.code(), self.flags(), ty.name());
        let (sender, receiver) = self.ids();
        w.put_u32(sender.0);
        w.put_u32(receiver.0);
        match self {
            Self::Presence(x) => {
                if let Some(c) = &x.checksum {
                    c.emit(w);
                }
                if let Some(s) = &x.server_info {
                    s.emit(w);
                }
            }
            Self::HandleTableRequest(_) | Self::ListRequest(_) => {}
            Self::HandleTableResponse(x) => {
                for e in x.entries.iter() {
                    check_handle(w, &e.pool_handle);
                    e.pool_handle.emit(w);
                    if e.elements.is_empty() {
                        w.fail(EncodeError::InvalidValue {
                            field: "Handle Table pool entry",
                        });
                    }
                    for pe in e.elements.iter() {
                        pe.emit(w);
                    }
                }
            }
            Self::HandleUpdate(x) => {
                w.put_u16(x.action.code());
                w.put_u16(0);
                check_handle(w, &x.pool_handle);
                x.pool_handle.emit(w);
                x.element.emit(w);
            }
            Self::ListResponse(x) => {
                for s in x.servers.iter() {
                    s.emit(w);
                }
            }
            Self::InitTakeover(t) | Self::InitTakeoverAck(t) | Self::TakeoverServer(t) => {
                w.put_u32(t.target.0)
            }
            Self::Error(x) => x.error.emit(w),
        }
        w.end_message(m);
    }
}

from_variants!(EnrpMessage: Presence(Presence), HandleTableResponse(HandleTableResponse),
    HandleUpdate(HandleUpdate), ListResponse(ListResponse), Error(EnrpError));
