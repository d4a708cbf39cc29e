//! Operation Error parameter and its causes (RFC 5354 §3.12).
//!
//! Each cause has the shape of a parameter (code, length, info, pad), so the
//! same framing applies; cause codes have no action bits.

use crate::codes::{CauseCode, param_type};
use crate::error::{Error, ErrorKind};
use crate::params::policy::PolicyParam;
use crate::params::transport::{Transport, is_transport};
use crate::seq::{Seq, WireItem};
use crate::tlv::{Reports, Tlv, split_cause, split_tlv};
use crate::writer::{Encode, Writer};

/// The cause-specific information of a cause.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CauseInfo<'a> {
    /// Raw bytes: the unrecognized parameter (0x1), the unrecognized message
    /// (0x2), the offending parameter (0x3), or nothing.
    Bytes(&'a [u8]),
    /// Inconsistent Pooling Policy (0x5): the pool's policy.
    Policy(PolicyParam<'a>),
    /// Inconsistent Transport Type (0x7): a transport of the pool's type.
    Transport(Transport<'a>),
}

/// One error cause.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cause<'a> {
    /// The cause code (RFC or RSPLIB-private).
    pub code: CauseCode,
    /// Its information.
    pub info: CauseInfo<'a>,
}

impl<'a> Cause<'a> {
    /// A cause without information.
    pub const fn new(code: CauseCode) -> Self {
        Self {
            code,
            info: CauseInfo::Bytes(&[]),
        }
    }

    /// A cause carrying raw bytes (e.g. the offending parameter).
    pub const fn with_bytes(code: CauseCode, info: &'a [u8]) -> Self {
        Self {
            code,
            info: CauseInfo::Bytes(info),
        }
    }

    fn parse(tlv: &Tlv<'a>) -> Result<Self, Error> {
        let code = CauseCode(tlv.ty());
        let v = tlv.value();
        // RSPLIB sends 0x3 and 0x5 with no information at all; accept that.
        let info = if v.is_empty() {
            CauseInfo::Bytes(v)
        } else if code == CauseCode::INCONSISTENT_POLICY
            || code == CauseCode::INCONSISTENT_TRANSPORT
        {
            let Some((inner, [])) = split_tlv(v, "error cause")? else {
                return Err(Error::new(
                    ErrorKind::InvalidValue,
                    "error cause",
                    tlv.raw(),
                ));
            };
            if code == CauseCode::INCONSISTENT_POLICY && inner.ty() == param_type::POLICY {
                CauseInfo::Policy(PolicyParam::parse(&inner)?)
            } else if code == CauseCode::INCONSISTENT_TRANSPORT && is_transport(inner.ty()) {
                CauseInfo::Transport(Transport::parse(&inner, &mut Reports::new())?)
            } else {
                return Err(Error::new(
                    ErrorKind::InvalidValue,
                    "error cause",
                    tlv.raw(),
                ));
            }
        } else {
            CauseInfo::Bytes(v)
        };
        Ok(Self { code, info })
    }
}

impl Encode for Cause<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(self.code.0, "error cause");
        match &self.info {
            CauseInfo::Bytes(b) => w.put_bytes(b),
            CauseInfo::Policy(p) => p.emit(w),
            CauseInfo::Transport(t) => t.emit(w),
        }
        w.end_param(m);
    }
}

impl<'a> WireItem<'a> for Cause<'a> {
    fn next_from(region: &mut &'a [u8]) -> Option<Self> {
        let (tlv, rest) = split_cause(region).ok()??;
        *region = rest;
        Cause::parse(&tlv).ok()
    }
}

/// An Operation Error parameter: one or more causes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperationError<'a> {
    /// The causes, in order.
    pub causes: Seq<'a, Cause<'a>>,
}

impl<'a> OperationError<'a> {
    /// An Operation Error with the given causes.
    pub const fn new(causes: &'a [Cause<'a>]) -> Self {
        Self {
            causes: Seq::from_items(causes),
        }
    }

    /// The first cause's code (what most receivers act on).
    pub fn first_code(&self) -> Option<CauseCode> {
        self.causes.iter().next().map(|c| c.code)
    }

    pub(crate) fn parse(tlv: &Tlv<'a>) -> Result<Self, Error> {
        let region = tlv.value();
        let mut rest = region;
        let mut count = 0;
        while let Some((cause, next)) = split_cause(rest)? {
            Cause::parse(&cause)?;
            count += 1;
            rest = next;
        }
        if count == 0 {
            return Err(Error::new(ErrorKind::Missing, "error cause", tlv.raw()));
        }
        Ok(Self {
            causes: Seq::from_wire(region, count),
        })
    }
}

impl Encode for OperationError<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::OPERATION_ERROR, "Operation Error");
        if self.causes.is_empty() {
            w.fail(crate::EncodeError::InvalidValue {
                field: "Operation Error",
            });
        }
        for c in self.causes.iter() {
            c.emit(w);
        }
        w.end_param(m);
    }
}
