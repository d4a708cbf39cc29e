//! Transport parameters (RFC 5354 §3.3-3.7, §3.16): where a PE serves its
//! users, or where a server speaks ASAP/ENRP.

use std::net::IpAddr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::codes::param_type;
use crate::error::{EncodeError, Error, ErrorKind};
use crate::params::address::is_address;
use crate::seq::{Seq, WireItem};
use crate::tlv::{Mode, Reader, Revisit, Tlv, next_validated};
use crate::writer::{Encode, Writer};

/// The transport protocol a transport parameter describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// SCTP (0x0004): one or more addresses, with a Transport Use field.
    Sctp,
    /// TCP (0x0005): one address. RFC 5354 reserves the field after the port;
    /// RSPLIB and Wireshark read it as Transport Use, and so do we.
    Tcp,
    /// UDP (0x0006): one address, data only.
    Udp,
    /// UDP-Lite (0x0007): one address, data only.
    UdpLite,
    /// DCCP (0x0003): one address and a service code, data only.
    Dccp,
    /// Opaque (0x0010): bytes RSerPool does not interpret.
    Opaque,
}

impl TransportKind {
    /// The parameter type carrying this transport.
    pub const fn param_type(self) -> u16 {
        match self {
            Self::Sctp => param_type::SCTP_TRANSPORT,
            Self::Tcp => param_type::TCP_TRANSPORT,
            Self::Udp => param_type::UDP_TRANSPORT,
            Self::UdpLite => param_type::UDP_LITE_TRANSPORT,
            Self::Dccp => param_type::DCCP_TRANSPORT,
            Self::Opaque => param_type::OPAQUE_TRANSPORT,
        }
    }

    /// The transport kind carried by a parameter type, if it is one.
    pub const fn from_param_type(ty: u16) -> Option<Self> {
        Some(match ty {
            param_type::SCTP_TRANSPORT => Self::Sctp,
            param_type::TCP_TRANSPORT => Self::Tcp,
            param_type::UDP_TRANSPORT => Self::Udp,
            param_type::UDP_LITE_TRANSPORT => Self::UdpLite,
            param_type::DCCP_TRANSPORT => Self::Dccp,
            param_type::OPAQUE_TRANSPORT => Self::Opaque,
            _ => return None,
        })
    }

    /// Lower-case protocol name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sctp => "sctp",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::UdpLite => "udplite",
            Self::Dccp => "dccp",
            Self::Opaque => "opaque",
        }
    }
}

pub(crate) const fn is_transport(ty: u16) -> bool {
    TransportKind::from_param_type(ty).is_some()
}

/// The Transport Use field (RFC 5354 §3.5): whether the PE expects ASAP
/// control messages on its data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransportUse(pub u16);

impl TransportUse {
    /// 0x0000: data only.
    pub const DATA_ONLY: Self = Self(0);
    /// 0x0001: data plus ASAP control channel.
    pub const DATA_PLUS_CONTROL: Self = Self(1);
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct PortUse {
    port: U16,
    use_or_reserved: U16,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct DccpFixed {
    port: U16,
    reserved: U16,
    service_code: U32,
}

/// A transport parameter of any kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transport<'a> {
    /// Which protocol.
    pub kind: TransportKind,
    /// Port (0 for opaque).
    pub port: u16,
    /// Transport Use for SCTP and TCP; the reserved field as received for
    /// UDP, UDP-Lite and DCCP (sent as 0 by conforming senders).
    pub transport_use: TransportUse,
    /// DCCP service code (0 for other kinds).
    pub service_code: u32,
    /// The addresses (none for opaque).
    pub addresses: Seq<'a, IpAddr>,
    /// The opaque transport's bytes (empty for other kinds).
    pub opaque: &'a [u8],
}

impl<'a> Transport<'a> {
    fn ip(
        kind: TransportKind,
        port: u16,
        transport_use: TransportUse,
        addresses: &'a [IpAddr],
    ) -> Self {
        Self {
            kind,
            port,
            transport_use,
            service_code: 0,
            addresses: Seq::from_items(addresses),
            opaque: &[],
        }
    }

    /// An SCTP transport (at least one address).
    pub const fn sctp(port: u16, transport_use: TransportUse, addresses: &'a [IpAddr]) -> Self {
        Self {
            kind: TransportKind::Sctp,
            port,
            transport_use,
            service_code: 0,
            addresses: Seq::from_items(addresses),
            opaque: &[],
        }
    }

    /// A TCP transport (exactly one address).
    pub fn tcp(port: u16, transport_use: TransportUse, addresses: &'a [IpAddr]) -> Self {
        Self::ip(TransportKind::Tcp, port, transport_use, addresses)
    }

    /// A UDP transport (exactly one address).
    pub fn udp(port: u16, addresses: &'a [IpAddr]) -> Self {
        Self::ip(TransportKind::Udp, port, TransportUse::DATA_ONLY, addresses)
    }

    /// A UDP-Lite transport (exactly one address).
    pub fn udp_lite(port: u16, addresses: &'a [IpAddr]) -> Self {
        Self::ip(
            TransportKind::UdpLite,
            port,
            TransportUse::DATA_ONLY,
            addresses,
        )
    }

    /// A DCCP transport (exactly one address).
    pub fn dccp(port: u16, service_code: u32, addresses: &'a [IpAddr]) -> Self {
        Self {
            service_code,
            ..Self::ip(
                TransportKind::Dccp,
                port,
                TransportUse::DATA_ONLY,
                addresses,
            )
        }
    }

    /// An opaque transport.
    pub fn opaque(bytes: &'a [u8]) -> Self {
        Self {
            opaque: bytes,
            ..Self::ip(TransportKind::Opaque, 0, TransportUse::DATA_ONLY, &[])
        }
    }

    /// Decodes a transport parameter whose type is known to be a transport
    /// (see `PoolElement::parse` for `mode` and for why it is inlined).
    #[inline(always)]
    pub(crate) fn parse<M: Mode<'a>>(tlv: &Tlv<'a>, mode: &mut M) -> Result<Self, Error> {
        let Some(kind) = TransportKind::from_param_type(tlv.ty()) else {
            return Err(Error::new(ErrorKind::Misplaced, "transport", tlv.raw()));
        };
        let field = param_type::name(tlv.ty());
        let value = tlv.value();
        let truncated = || Error::new(ErrorKind::Truncated, field, tlv.raw());
        let (port, transport_use, service_code, rest) = match kind {
            TransportKind::Opaque => return Ok(Self::opaque(value)),
            TransportKind::Dccp => {
                let (f, rest) = DccpFixed::ref_from_prefix(value).map_err(|_| truncated())?;
                (
                    f.port.get(),
                    TransportUse(f.reserved.get()),
                    f.service_code.get(),
                    rest,
                )
            }
            _ => {
                let (f, rest) = PortUse::ref_from_prefix(value).map_err(|_| truncated())?;
                (f.port.get(), TransportUse(f.use_or_reserved.get()), 0, rest)
            }
        };
        let mut r = Reader::new(rest, field, mode);
        let mut count = 0;
        let mut end = rest;
        while let Some(a) = r.optional_if(is_address)? {
            crate::params::address::parse_address(&a)?;
            count += 1;
            end = r.remaining();
        }
        r.finish()?;
        let region = &rest[..rest.len() - end.len()];
        let ok = match kind {
            TransportKind::Sctp => count >= 1,
            _ => count == 1,
        };
        // A transport that is re-read passed this check when it was validated.
        if M::VALIDATE && !ok {
            return Err(Error::new(ErrorKind::InvalidValue, field, tlv.raw()));
        }
        Ok(Self {
            kind,
            port,
            transport_use,
            service_code,
            addresses: Seq::from_wire(region, count),
            opaque: &[],
        })
    }
}

impl Encode for Transport<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let field = param_type::name(self.kind.param_type());
        let m = w.begin_param(self.kind.param_type(), field);
        match self.kind {
            TransportKind::Opaque => w.put_bytes(self.opaque),
            TransportKind::Dccp => {
                w.put_u16(self.port);
                w.put_u16(self.transport_use.0);
                w.put_u32(self.service_code);
            }
            _ => {
                w.put_u16(self.port);
                w.put_u16(self.transport_use.0);
            }
        }
        let n = self.addresses.len();
        let ok = match self.kind {
            TransportKind::Opaque => n == 0,
            TransportKind::Sctp => n >= 1,
            _ => n == 1,
        };
        if !ok {
            w.fail(EncodeError::InvalidValue { field });
        }
        for a in self.addresses.iter() {
            a.emit(w);
        }
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for Transport<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        let tlv = next_validated(region, is_transport)?;
        Self::parse(&tlv, &mut Revisit).ok()
    }
}
