//! [`Param`]: any single parameter, decoded by its type alone. Message
//! parsers do not use it (they know which parameter comes where); tools that
//! show arbitrary bytes and the property tests do.

use std::net::IpAddr;

use crate::codes::param_type;
use crate::error::Error;
use crate::params::address::parse_address;
use crate::params::element::{PoolElement, ServerInfo};
use crate::params::operation_error::OperationError;
use crate::params::policy::PolicyParam;
use crate::params::simple::{
    Cookie, HandleResolutionOption, PeChecksum, PeId, PoolHandle, parse_pe_id,
};
use crate::params::transport::Transport;
use crate::tlv::{Reports, Tlv, split_tlv};
use crate::writer::{Encode, Writer};

/// Any parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param<'a> {
    /// 0x0001 / 0x0002
    Address(IpAddr),
    /// 0x0003-0x0007, 0x0010
    Transport(Transport<'a>),
    /// 0x0008
    Policy(PolicyParam<'a>),
    /// 0x0009
    PoolHandle(PoolHandle<'a>),
    /// 0x000A
    PoolElement(PoolElement<'a>),
    /// 0x000B
    ServerInfo(ServerInfo<'a>),
    /// 0x000C
    OperationError(OperationError<'a>),
    /// 0x000D
    Cookie(Cookie<'a>),
    /// 0x000E
    PeId(PeId),
    /// 0x000F
    PeChecksum(PeChecksum),
    /// 0x803F
    HandleResolutionOption(HandleResolutionOption),
    /// Any other type, kept as received.
    Unknown(Tlv<'a>),
}

impl<'a> Param<'a> {
    /// Decodes one parameter from the start of `bytes`; returns it and the
    /// bytes after it (and its padding).
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<Option<(Self, &'a [u8])>, Error> {
        match split_tlv(bytes, "parameter")? {
            Some((tlv, rest)) => Ok(Some((Self::from_tlv(&tlv)?, rest))),
            None => Ok(None),
        }
    }

    /// Interprets a framed parameter by its type.
    pub fn from_tlv(tlv: &Tlv<'a>) -> Result<Self, Error> {
        let mut reports = Reports::new();
        Ok(match tlv.ty() {
            param_type::IPV4_ADDRESS | param_type::IPV6_ADDRESS => {
                Self::Address(parse_address(tlv)?)
            }
            param_type::DCCP_TRANSPORT
            | param_type::SCTP_TRANSPORT
            | param_type::TCP_TRANSPORT
            | param_type::UDP_TRANSPORT
            | param_type::UDP_LITE_TRANSPORT
            | param_type::OPAQUE_TRANSPORT => Self::Transport(Transport::parse(tlv, &mut reports)?),
            param_type::POLICY => Self::Policy(PolicyParam::parse(tlv)?),
            param_type::POOL_HANDLE => Self::PoolHandle(PoolHandle::parse(tlv)?),
            param_type::POOL_ELEMENT => Self::PoolElement(PoolElement::parse(tlv, &mut reports)?),
            param_type::SERVER_INFORMATION => {
                Self::ServerInfo(ServerInfo::parse(tlv, &mut reports)?)
            }
            param_type::OPERATION_ERROR => Self::OperationError(OperationError::parse(tlv)?),
            param_type::COOKIE => Self::Cookie(Cookie(tlv.value())),
            param_type::PE_IDENTIFIER => Self::PeId(parse_pe_id(tlv)?),
            param_type::PE_CHECKSUM => Self::PeChecksum(PeChecksum::parse(tlv)?),
            param_type::HANDLE_RESOLUTION_OPTION => {
                Self::HandleResolutionOption(HandleResolutionOption::parse(tlv)?)
            }
            _ => Self::Unknown(*tlv),
        })
    }
}

impl Encode for Param<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Self::Address(a) => a.emit(w),
            Self::Transport(t) => t.emit(w),
            Self::Policy(p) => p.emit(w),
            Self::PoolHandle(h) => h.emit(w),
            Self::PoolElement(e) => e.emit(w),
            Self::ServerInfo(s) => s.emit(w),
            Self::OperationError(e) => e.emit(w),
            Self::Cookie(c) => c.emit(w),
            Self::PeId(id) => id.emit(w),
            Self::PeChecksum(c) => c.emit(w),
            Self::HandleResolutionOption(o) => o.emit(w),
            Self::Unknown(tlv) => {
                let m = w.begin_param(tlv.ty(), "parameter");
                w.put_bytes(tlv.value());
                w.end_param(m);
            }
        }
    }
}
