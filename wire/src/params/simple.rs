//! Small fixed-layout parameters: Pool Handle, PE Identifier, PE Checksum,
//! Cookie, the Handle Resolution option, and the identifier newtypes.

use core::fmt;

use crate::codes::{consts::MAX_POOL_HANDLE_LEN, param_type};
use crate::error::{EncodeError, Error, ErrorKind};
use crate::tlv::Tlv;
use crate::writer::{Encode, Writer};

/// A PE Identifier (RFC 5352 §2.2.1): random, chosen by the PE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeId(pub u32);

/// An ENRP server identifier (RFC 5353 §2.1): random and non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServerId(pub u32);

impl fmt::Display for PeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// Reads a parameter value that must be exactly `N` bytes.
pub(crate) fn fixed<'a, const N: usize>(
    tlv: &Tlv<'a>,
    field: &'static str,
) -> Result<&'a [u8; N], Error> {
    tlv.value()
        .try_into()
        .map_err(|_| Error::new(ErrorKind::BadLength, field, tlv.raw()))
}

pub(crate) fn be32(b: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*b)
}

/// A pool handle (RFC 5354 §3.9): 1 to 32 opaque bytes, compared byte for
/// byte. The 32-byte cap is RSPLIB's (longer handles crash it); no value of
/// this type can break it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolHandle<'a>(&'a [u8]);

impl<'a> PoolHandle<'a> {
    /// A pool handle, if `bytes` is 1 to 32 bytes long.
    pub const fn new(bytes: &'a [u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_POOL_HANDLE_LEN {
            None
        } else {
            Some(Self(bytes))
        }
    }

    /// The handle's bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    pub(crate) fn parse(tlv: &Tlv<'a>) -> Result<Self, Error> {
        let v = tlv.value();
        if v.len() > MAX_POOL_HANDLE_LEN {
            return Err(Error::new(ErrorKind::TooLong, "Pool Handle", tlv.raw()));
        }
        Self::new(v).ok_or_else(|| Error::new(ErrorKind::InvalidValue, "Pool Handle", tlv.raw()))
    }
}

impl Encode for PoolHandle<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::POOL_HANDLE, "Pool Handle");
        w.put_bytes(self.0);
        w.end_param(m);
    }
}

impl fmt::Debug for PoolHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolHandle({self})")
    }
}

impl fmt::Display for PoolHandle<'_> {
    /// Printable ASCII as text, anything else as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            self.0
                .iter()
                .try_for_each(|&b| fmt::Write::write_char(f, char::from(b)))
        } else {
            f.write_str("0x")?;
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
}

pub(crate) fn parse_pe_id(tlv: &Tlv<'_>) -> Result<PeId, Error> {
    Ok(PeId(be32(fixed::<4>(tlv, "PE Identifier")?)))
}

impl Encode for PeId {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::PE_IDENTIFIER, "PE Identifier");
        w.put_u32(self.0);
        w.end_param(m);
    }
}

/// The PE Checksum parameter (RFC 5354 §3.15): the sender's handlespace
/// checksum over the PEs it owns (RFC 5353 §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeChecksum(pub u16);

impl PeChecksum {
    pub(crate) fn parse(tlv: &Tlv<'_>) -> Result<Self, Error> {
        Ok(Self(u16::from_be_bytes(*fixed::<2>(tlv, "PE Checksum")?)))
    }
}

impl Encode for PeChecksum {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::PE_CHECKSUM, "PE Checksum");
        w.put_u16(self.0);
        w.end_param(m);
    }
}

/// The Cookie parameter (RFC 5354 §3.13): opaque bytes the PU echoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cookie<'a>(pub &'a [u8]);

impl Encode for Cookie<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::COOKIE, "Cookie");
        w.put_bytes(self.0);
        w.end_param(m);
    }
}

/// RSPLIB's Handle Resolution option (type 0x803F,
/// draft-dreibholz-rserpool-asap-hropt): how many PEs the PU wants;
/// `0xFFFFFFFF` means as many as possible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandleResolutionOption {
    /// Requested number of PEs.
    pub items: u32,
}

impl HandleResolutionOption {
    pub(crate) fn parse(tlv: &Tlv<'_>) -> Result<Self, Error> {
        Ok(Self {
            items: be32(fixed::<4>(tlv, "Handle Resolution Option")?),
        })
    }
}

impl Encode for HandleResolutionOption {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(
            param_type::HANDLE_RESOLUTION_OPTION,
            "Handle Resolution Option",
        );
        w.put_u32(self.items);
        w.end_param(m);
    }
}

/// Emits a pool handle, refusing an invalid one (only possible through
/// `PoolHandle`'s invariant being bypassed, which it cannot be).
pub(crate) fn check_handle(w: &mut Writer<'_>, h: &PoolHandle<'_>) {
    if h.0.is_empty() || h.0.len() > MAX_POOL_HANDLE_LEN {
        w.fail(EncodeError::InvalidValue {
            field: "Pool Handle",
        });
    }
}
