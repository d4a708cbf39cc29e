//! Pool Member Selection Policy parameter (RFC 5354 §3.8) and the policies of
//! RFC 5356 plus RSPLIB's private extensions (0xB000xxxx).
//!
//! Every known policy has a fixed list of 32-bit fields after the policy type;
//! its parameter length must match exactly. An unknown policy type decodes as
//! [`PolicyParam::Unknown`] with its raw field bytes, so a server can reject it
//! with the right cause and a tool can still show it.

use core::fmt;

use zerocopy::FromBytes;
use zerocopy::network_endian::U32;

use crate::codes::param_type;
use crate::error::{Error, ErrorKind};
use crate::tlv::Tlv;
use crate::writer::{Encode, Writer};

/// A policy type code (RFC 5356 §3): bit 31 marks private policies, bit 30
/// adaptive ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyType(pub u32);

impl PolicyType {
    /// Whether bit 30 (adaptive: uses load information) is set.
    pub const fn is_adaptive_bit(self) -> bool {
        self.0 & 0x4000_0000 != 0
    }

    /// Whether bit 31 (private, non-standard) is set.
    pub const fn is_private(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Policy::name_of(*self) {
            Some(n) => write!(f, "{n} (0x{:08x})", self.0),
            None => write!(f, "unknown policy 0x{:08x}", self.0),
        }
    }
}

/// The values of a policy's fields, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PolicyValues {
    buf: [u32; 4],
    len: usize,
}

impl PolicyValues {
    fn from_slice(v: &[u32]) -> Self {
        let mut buf = [0; 4];
        let len = v.len().min(4);
        buf[..len].copy_from_slice(&v[..len]);
        Self { buf, len }
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[u32] {
        &self.buf[..self.len]
    }
}

/// Reads exactly `N` 32-bit fields (network order) from `bytes`; `None` if
/// `bytes` is not `4 * N` bytes long.
#[inline(always)]
fn words<const N: usize>(bytes: &[u8]) -> Option<[u32; N]> {
    let fields = <[U32; N]>::ref_from_bytes(bytes).ok()?;
    Some(fields.map(U32::get))
}

macro_rules! policies {
    ($($(#[$m:meta])* $variant:ident = $code:literal, $cname:ident, $name:literal { $($field:ident),* };)*) => {
        /// A known selection policy with its per-PE values.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Policy {
            $($(#[$m])* $variant { $(#[doc = concat!("The ", stringify!($field), " value.")] $field: u32),* },)*
        }

        impl PolicyType {
            $(#[doc = concat!($name, ".")] pub const $cname: Self = Self($code);)*
        }

        impl Policy {
            /// Every known policy type, in this order.
            pub const ALL_TYPES: &'static [PolicyType] = &[$(PolicyType($code)),*];

            /// This policy's type code.
            pub const fn policy_type(&self) -> PolicyType {
                match self { $(Self::$variant { .. } => PolicyType($code),)* }
            }

            /// The policy's name.
            pub const fn name(&self) -> &'static str {
                match self { $(Self::$variant { .. } => $name,)* }
            }

            /// The name of a policy type, if known.
            pub const fn name_of(ty: PolicyType) -> Option<&'static str> {
                match ty.0 { $($code => Some($name),)* _ => None }
            }

            /// The names of a known policy type's fields, in wire order.
            pub const fn field_names(ty: PolicyType) -> Option<&'static [&'static str]> {
                match ty.0 { $($code => Some(&[$(stringify!($field)),*]),)* _ => None }
            }

            /// The field values in wire order.
            #[allow(unused_variables)]
            pub fn values(&self) -> PolicyValues {
                match self {
                    $(Self::$variant { $($field),* } => PolicyValues::from_slice(&[$(*$field),*]),)*
                }
            }

            /// Decodes a policy from its type and the bytes of its fields, in
            /// one match over the types: `None` for an unknown type,
            /// `Some(None)` for a known one whose fields have the wrong size.
            #[inline(always)]
            pub(crate) fn from_wire(ty: PolicyType, fields: &[u8]) -> Option<Option<Self>> {
                match ty.0 {
                    $($code => Some(words(fields).map(|[$($field),*]| Self::$variant { $($field),* })),)*
                    _ => None,
                }
            }

            /// Builds a policy from its type and field values (in wire order);
            /// `None` for an unknown type or the wrong number of values.
            pub fn from_values(ty: PolicyType, values: &[u32]) -> Option<Self> {
                match ty.0 {
                    $($code => match values {
                        [$($field),*] => Some(Self::$variant { $($field: *$field),* }),
                        _ => None,
                    },)*
                    _ => None,
                }
            }
        }
    };
}

policies! {
    /// Round Robin (RFC 5356 §4.1.1).
    RoundRobin = 0x0000_0001, ROUND_ROBIN, "Round Robin" {};
    /// Weighted Round Robin (RFC 5356 §4.1.2).
    WeightedRoundRobin = 0x0000_0002, WEIGHTED_ROUND_ROBIN, "Weighted Round Robin" { weight };
    /// Random (RFC 5356 §4.1.3).
    Random = 0x0000_0003, RANDOM, "Random" {};
    /// Weighted Random (RFC 5356 §4.1.4).
    WeightedRandom = 0x0000_0004, WEIGHTED_RANDOM, "Weighted Random" { weight };
    /// Priority (RFC 5356 §4.1.5): larger is better.
    Priority = 0x0000_0005, PRIORITY, "Priority" { priority };
    /// Least Used (RFC 5356 §4.2.1).
    LeastUsed = 0x4000_0001, LEAST_USED, "Least Used" { load };
    /// Least Used with Degradation (RFC 5356 §4.2.2).
    LeastUsedDegradation = 0x4000_0002, LEAST_USED_DEGRADATION, "Least Used with Degradation" { load, load_degradation };
    /// Priority Least Used (RFC 5356 §4.2.3).
    PriorityLeastUsed = 0x4000_0003, PRIORITY_LEAST_USED, "Priority Least Used" { load, load_degradation };
    /// Randomized Least Used (RFC 5356 §4.2.4).
    RandomizedLeastUsed = 0x4000_0004, RANDOMIZED_LEAST_USED, "Randomized Least Used" { load };
    /// RSPLIB: Randomized Priority Least Used.
    RandomizedPriorityLeastUsed = 0xb000_1001, RANDOMIZED_PRIORITY_LEAST_USED, "Randomized Priority Least Used" { load, load_degradation };
    /// RSPLIB: Randomized Least Used with Degradation.
    RandomizedLeastUsedDegradation = 0xb000_1002, RANDOMIZED_LEAST_USED_DEGRADATION, "Randomized Least Used with Degradation" { load, load_degradation };
    /// RSPLIB: Priority Least Used with Degradation.
    PriorityLeastUsedDegradation = 0xb000_1003, PRIORITY_LEAST_USED_DEGRADATION, "Priority Least Used with Degradation" { load, load_degradation };
    /// RSPLIB: Randomized Priority Least Used with Degradation.
    RandomizedPriorityLeastUsedDegradation = 0xb000_1004, RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION, "Randomized Priority Least Used with Degradation" { load, load_degradation };
    /// RSPLIB: Weighted Random with Distance Penalty Factor.
    WeightedRandomDpf = 0xb000_2001, WEIGHTED_RANDOM_DPF, "Weighted Random with DPF" { weight, weight_dpf, distance };
    /// RSPLIB: Least Used with Distance Penalty Factor.
    LeastUsedDpf = 0xb000_2002, LEAST_USED_DPF, "Least Used with DPF" { load, load_dpf, distance };
    /// RSPLIB: Least Used with Degradation and Distance Penalty Factor.
    LeastUsedDegradationDpf = 0xb000_2003, LEAST_USED_DEGRADATION_DPF, "Least Used with Degradation and DPF" { load, load_degradation, load_dpf, distance };
}

impl Encode for Policy {
    fn emit(&self, w: &mut Writer<'_>) {
        let m = w.begin_param(param_type::POLICY, "Pool Member Selection Policy");
        w.put_u32(self.policy_type().0);
        for v in self.values().as_slice() {
            w.put_u32(*v);
        }
        w.end_param(m);
    }
}

/// A decoded policy parameter: a known policy, or an unknown type kept raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyParam<'a> {
    /// A policy this implementation knows.
    Known(Policy),
    /// An unknown policy type and the bytes after the type field.
    Unknown {
        /// The policy type code.
        policy_type: PolicyType,
        /// The remaining value bytes.
        data: &'a [u8],
    },
}

impl<'a> PolicyParam<'a> {
    /// The policy type code.
    pub const fn policy_type(&self) -> PolicyType {
        match self {
            Self::Known(p) => p.policy_type(),
            Self::Unknown { policy_type, .. } => *policy_type,
        }
    }

    /// The known policy, if it is one.
    pub const fn known(&self) -> Option<Policy> {
        match self {
            Self::Known(p) => Some(*p),
            Self::Unknown { .. } => None,
        }
    }

    /// Decodes a policy parameter (inlined like `PoolElement::parse`, whose
    /// hot path it is on).
    #[inline(always)]
    pub(crate) fn parse(tlv: &Tlv<'a>) -> Result<Self, Error> {
        const FIELD: &str = "Pool Member Selection Policy";
        let v = tlv.value();
        let Some((ty, rest)) = v.split_first_chunk::<4>() else {
            return Err(Error::new(ErrorKind::Truncated, FIELD, tlv.raw()));
        };
        let ty = PolicyType(u32::from_be_bytes(*ty));
        match Policy::from_wire(ty, rest) {
            Some(Some(policy)) => Ok(Self::Known(policy)),
            Some(None) => Err(Error::new(ErrorKind::BadLength, FIELD, tlv.raw())),
            None => Ok(Self::Unknown {
                policy_type: ty,
                data: rest,
            }),
        }
    }
}

impl From<Policy> for PolicyParam<'_> {
    fn from(p: Policy) -> Self {
        Self::Known(p)
    }
}

impl Encode for PolicyParam<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Self::Known(p) => p.emit(w),
            Self::Unknown { policy_type, data } => {
                let m = w.begin_param(param_type::POLICY, "Pool Member Selection Policy");
                w.put_u32(policy_type.0);
                w.put_bytes(data);
                w.end_param(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_round_trips_through_values() {
        for &ty in Policy::ALL_TYPES {
            let n = Policy::field_names(ty).unwrap().len();
            let vals: Vec<u32> = (1..=n as u32).collect();
            let p = Policy::from_values(ty, &vals).unwrap();
            assert_eq!(p.policy_type(), ty);
            assert_eq!(p.values().as_slice(), &vals[..]);
            assert!(Policy::from_values(ty, &[0; 5]).is_none());
        }
        assert_eq!(Policy::ALL_TYPES.len(), 16);
    }

    #[test]
    fn field_layouts_match_rfc_5356_and_rsplib() {
        let f = |t| Policy::field_names(t).unwrap();
        assert_eq!(f(PolicyType::ROUND_ROBIN), &[] as &[&str]);
        assert_eq!(f(PolicyType::PRIORITY), &["priority"]);
        assert_eq!(
            f(PolicyType::LEAST_USED_DEGRADATION),
            &["load", "load_degradation"]
        );
        assert_eq!(
            f(PolicyType::WEIGHTED_RANDOM_DPF),
            &["weight", "weight_dpf", "distance"]
        );
        assert_eq!(
            f(PolicyType::LEAST_USED_DEGRADATION_DPF),
            &["load", "load_degradation", "load_dpf", "distance"]
        );
    }
}
