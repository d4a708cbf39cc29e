//! Pool Element (RFC 5354 §3.10) and Server Information (§3.11).

use zerocopy::network_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::codes::param_type;
use crate::error::{Error, ErrorKind};
use crate::params::policy::PolicyParam;
use crate::params::simple::{PeId, ServerId};
use crate::params::transport::{Transport, TransportKind, is_transport};
use crate::seq::WireItem;
use crate::tlv::{Reader, Reports, Tlv, split_tlv};
use crate::writer::{Encode, Writer};

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct PeFixed {
    id: U32,
    home: U32,
    life: U32,
}

/// Registration Life meaning "never expires" in RFC units (-1 as i32).
pub const REGISTRATION_LIFE_INFINITE: u32 = u32::MAX;

/// A Pool Element parameter: one PE as the handlespace knows it.
///
/// Inside it, parameters are positional: the user transport first, then the
/// policy, then optionally the ASAP transport (SCTP only). RFC 5352 §3.1 has
/// the home server fill in the ASAP transport; PEs omit it when registering.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolElement<'a> {
    /// PE Identifier.
    pub id: PeId,
    /// Home ENRP server (0 = not yet known).
    pub home_server: ServerId,
    /// Registration Life as on the wire. RFC 5354 says seconds (signed, -1 =
    /// infinite); RSPLIB sends and reads milliseconds. The codec does not
    /// interpret it.
    pub registration_life: u32,
    /// Where the PE serves its users.
    pub user_transport: Transport<'a>,
    /// The PE's policy and its values.
    pub policy: PolicyParam<'a>,
    /// The SCTP association the PE registered from, filled in by its home.
    pub asap_transport: Option<Transport<'a>>,
}

impl<'a> PoolElement<'a> {
    pub(crate) fn parse(tlv: &Tlv<'a>, reports: &mut Reports<'a>) -> Result<Self, Error> {
        const FIELD: &str = "Pool Element";
        let (fixed, rest) = PeFixed::ref_from_prefix(tlv.value())
            .map_err(|_| Error::new(ErrorKind::Truncated, FIELD, tlv.raw()))?;
        let mut r = Reader::new(rest, FIELD, reports);
        let Some(user) = r.optional_if(is_transport)? else {
            return Err(Error::new(ErrorKind::Missing, "User Transport", tlv.raw()));
        };
        let user_transport = Transport::parse(&user, r.reports())?;
        let policy =
            PolicyParam::parse(&r.expect(param_type::POLICY, "Pool Member Selection Policy")?)?;
        let asap_transport = match r.optional(param_type::SCTP_TRANSPORT)? {
            Some(t) => Some(Transport::parse(&t, r.reports())?),
            None => None,
        };
        r.finish()?;
        Ok(Self {
            id: PeId(fixed.id.get()),
            home_server: ServerId(fixed.home.get()),
            registration_life: fixed.life.get(),
            user_transport,
            policy,
            asap_transport,
        })
    }
}

impl Encode for PoolElement<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::POOL_ELEMENT, "Pool Element");
        w.put_u32(self.id.0);
        w.put_u32(self.home_server.0);
        w.put_u32(self.registration_life);
        self.user_transport.emit(w);
        self.policy.emit(w);
        if let Some(t) = &self.asap_transport {
            if t.kind != TransportKind::Sctp {
                w.fail(crate::EncodeError::InvalidValue {
                    field: "ASAP Transport",
                });
            }
            t.emit(w);
        }
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for PoolElement<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        loop {
            let (tlv, rest) = split_tlv(region, "Pool Element").ok()??;
            *region = rest;
            if tlv.ty() == param_type::POOL_ELEMENT {
                return Self::parse(&tlv, &mut Reports::new()).ok();
            }
        }
    }
}

/// Server Information (RFC 5354 §3.11): an ENRP server's id and where it
/// speaks ENRP. RFC 5354 names an SCTP transport; a TCP one is accepted too
/// (our ENRP-over-TCP extension, for hosts without SCTP).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerInfo<'a> {
    /// The server's id.
    pub server_id: ServerId,
    /// Its ENRP transport.
    pub transport: Transport<'a>,
}

impl<'a> ServerInfo<'a> {
    pub(crate) fn parse(tlv: &Tlv<'a>, reports: &mut Reports<'a>) -> Result<Self, Error> {
        const FIELD: &str = "Server Information";
        let Some((id, rest)) = tlv.value().split_first_chunk::<4>() else {
            return Err(Error::new(ErrorKind::Truncated, FIELD, tlv.raw()));
        };
        let mut r = Reader::new(rest, FIELD, reports);
        let is_enrp_transport =
            |t| t == param_type::SCTP_TRANSPORT || t == param_type::TCP_TRANSPORT;
        let Some(t) = r.optional_if(is_enrp_transport)? else {
            return Err(Error::new(ErrorKind::Missing, "SCTP Transport", tlv.raw()));
        };
        let transport = Transport::parse(&t, r.reports())?;
        r.finish()?;
        Ok(Self {
            server_id: ServerId(u32::from_be_bytes(*id)),
            transport,
        })
    }
}

impl Encode for ServerInfo<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::SERVER_INFORMATION, "Server Information");
        w.put_u32(self.server_id.0);
        if !matches!(
            self.transport.kind,
            TransportKind::Sctp | TransportKind::Tcp
        ) {
            w.fail(crate::EncodeError::InvalidValue {
                field: "Server Information transport",
            });
        }
        self.transport.emit(w);
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for ServerInfo<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        loop {
            let (tlv, rest) = split_tlv(region, "Server Information").ok()??;
            *region = rest;
            if tlv.ty() == param_type::SERVER_INFORMATION {
                return Self::parse(&tlv, &mut Reports::new()).ok();
            }
        }
    }
}
