//! IPv4 and IPv6 Address parameters (RFC 5354 §3.1, §3.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codes::param_type;
use crate::error::Error;
use crate::params::simple::fixed;
use crate::seq::WireItem;
use crate::tlv::{Tlv, next_validated};
use crate::writer::{Encode, Writer};

/// Decodes an address parameter (type already known to be 0x0001 or 0x0002).
/// Inlined like `PoolElement::parse`, whose hot path it is on.
#[inline(always)]
pub(crate) fn parse_address(tlv: &Tlv<'_>) -> Result<IpAddr, Error> {
    if tlv.ty() == param_type::IPV4_ADDRESS {
        Ok(IpAddr::V4(Ipv4Addr::from(*fixed::<4>(
            tlv,
            "IPv4 Address",
        )?)))
    } else {
        Ok(IpAddr::V6(Ipv6Addr::from(*fixed::<16>(
            tlv,
            "IPv6 Address",
        )?)))
    }
}

pub(crate) const fn is_address(ty: u16) -> bool {
    matches!(ty, param_type::IPV4_ADDRESS | param_type::IPV6_ADDRESS)
}

impl Encode for IpAddr {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Self::V4(a) => {
                let m = w.begin_param(param_type::IPV4_ADDRESS, "IPv4 Address");
                w.put_bytes(&a.octets());
                w.end_param(m);
            }
            Self::V6(a) => {
                let m = w.begin_param(param_type::IPV6_ADDRESS, "IPv6 Address");
                w.put_bytes(&a.octets());
                w.end_param(m);
            }
        }
    }
}

impl<'a> WireItem<'a> for IpAddr {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        parse_address(&next_validated(region, is_address)?).ok()
    }
}
