//! Owned values the cores and the runtime hand around: pool handles, PE
//! descriptions, registrar addresses, identifiers, address scopes, and the
//! RSPLIB spelling of policies.

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use rserpool_wire::consts::MAX_POOL_HANDLE_LEN;
use rserpool_wire::{
    Policy, PolicyType, PoolElement, PoolHandle, ServerId, TransportKind, TransportUse,
};

pub use rserpool_wire::PeId;

/// An owned pool handle: 1 to 32 bytes (the 32-byte cap is RSPLIB's: longer
/// handles crash every RSPLIB component).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolHandleBuf(Vec<u8>);

impl PoolHandleBuf {
    /// A pool handle, if `bytes` is 1 to 32 bytes long.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let v = bytes.into();
        (!v.is_empty() && v.len() <= MAX_POOL_HANDLE_LEN).then_some(Self(v))
    }

    /// The handle's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The codec's borrowed form.
    pub fn as_wire(&self) -> PoolHandle<'_> {
        PoolHandle::new(&self.0).expect("a PoolHandleBuf is always a valid pool handle")
    }
}

impl From<PoolHandle<'_>> for PoolHandleBuf {
    fn from(h: PoolHandle<'_>) -> Self {
        Self(h.as_bytes().to_vec())
    }
}

impl fmt::Display for PoolHandleBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_wire().fmt(f)
    }
}

impl fmt::Debug for PoolHandleBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolHandleBuf({self})")
    }
}

/// A connection a core asked its runtime to open (registrar or PE), unique
/// within one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A pool-user session (RFC 5352 section 3.8), unique within one
/// [`crate::PoolUserCore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A request to the registrar, unique within one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// The transport of a connection: to a registrar (ASAP) or to a PE (data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Proto {
    /// SCTP (RFC 5352's mapping; PPID 11 for ASAP).
    #[default]
    Sctp,
    /// TCP (our extension; see the crate documentation for the framing).
    Tcp,
}

impl Proto {
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sctp => "sctp",
            Self::Tcp => "tcp",
        }
    }

    /// The user-transport kind of this protocol.
    pub const fn transport_kind(self) -> TransportKind {
        match self {
            Self::Sctp => TransportKind::Sctp,
            Self::Tcp => TransportKind::Tcp,
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sctp" => Ok(Self::Sctp),
            "tcp" => Ok(Self::Tcp),
            _ => Err(format!("unknown transport {s:?} (sctp or tcp)")),
        }
    }
}

/// Where a registrar speaks ASAP: one transport, one port, one or more
/// addresses (an SCTP endpoint may be multi-homed; the runtime tries them in
/// order).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistrarAddr {
    /// SCTP or TCP.
    pub proto: Proto,
    /// The addresses, all with the registrar's port.
    pub addrs: Vec<SocketAddr>,
}

impl RegistrarAddr {
    /// One address over SCTP.
    pub fn sctp(addr: SocketAddr) -> Self {
        Self {
            proto: Proto::Sctp,
            addrs: vec![addr],
        }
    }

    /// One address over TCP.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            proto: Proto::Tcp,
            addrs: vec![addr],
        }
    }
}

impl std::str::FromStr for RegistrarAddr {
    type Err = String;

    /// `ADDR:PORT` (SCTP), `sctp:ADDR:PORT` or `tcp:ADDR:PORT`; IPv6 as
    /// `[ADDR]:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (proto, rest) = match s.split_once(':') {
            Some((p, rest)) if p.eq_ignore_ascii_case("sctp") => (Proto::Sctp, rest),
            Some((p, rest)) if p.eq_ignore_ascii_case("tcp") => (Proto::Tcp, rest),
            _ => (Proto::Sctp, s),
        };
        let addr: SocketAddr = rest.parse().map_err(|e| {
            format!("bad registrar address {s:?} ({e}; want [sctp:|tcp:]ADDR:PORT)")
        })?;
        Ok(Self {
            proto,
            addrs: vec![addr],
        })
    }
}

impl fmt::Display for RegistrarAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.proto.name())?;
        for (i, a) in self.addrs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// One pool element as a handle resolution (or business card) described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeInfo {
    /// PE identifier.
    pub id: PeId,
    /// Its home registrar (0 = unknown).
    pub home_server: ServerId,
    /// Registration life as on the wire.
    pub registration_life: u32,
    /// User transport protocol.
    pub transport: TransportKind,
    /// Whether the PE expects ASAP control messages on its data connection.
    pub transport_use: TransportUse,
    /// User transport port.
    pub port: u16,
    /// User transport addresses.
    pub addresses: Vec<IpAddr>,
    /// The PE's policy type (its own Policy parameter).
    pub policy_type: PolicyType,
    /// The PE's policy values, when the policy type is known.
    pub policy: Option<Policy>,
}

impl PeInfo {
    /// Copies a decoded Pool Element parameter.
    pub fn from_wire(e: &PoolElement<'_>) -> Self {
        Self {
            id: e.id,
            home_server: e.home_server,
            registration_life: e.registration_life,
            transport: e.user_transport.kind,
            transport_use: e.user_transport.transport_use,
            port: e.user_transport.port,
            addresses: e.user_transport.addresses.iter().collect(),
            policy_type: e.policy.policy_type(),
            policy: e.policy.known(),
        }
    }

    /// The user transport's addresses with its port.
    pub fn socket_addrs(&self) -> Vec<SocketAddr> {
        self.addresses
            .iter()
            .map(|a| SocketAddr::new(*a, self.port))
            .collect()
    }

    /// The session protocol to reach this PE with, if it is one we speak.
    pub fn proto(&self) -> Option<Proto> {
        match self.transport {
            TransportKind::Sctp => Some(Proto::Sctp),
            TransportKind::Tcp => Some(Proto::Tcp),
            _ => None,
        }
    }
}

/// The scope of an address, narrowest first (RSPLIB's notion: PEs register
/// only addresses of at least site-local scope by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AddressScope {
    /// Unspecified and loopback addresses.
    Loopback,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// RFC 1918 networks, fc00::/7, fec0::/10.
    #[default]
    SiteLocal,
    /// Everything else.
    Global,
}

impl AddressScope {
    /// The scope of `ip` (multicast counts as global; callers never register
    /// multicast addresses).
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => {
                let o = a.octets();
                if a.is_unspecified() || a.is_loopback() {
                    Self::Loopback
                } else if o[0] == 169 && o[1] == 254 {
                    Self::LinkLocal
                } else if a.is_private() {
                    Self::SiteLocal
                } else {
                    Self::Global
                }
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return Self::of(&IpAddr::V4(v4));
                }
                let s = a.segments();
                if a.is_unspecified() || a.is_loopback() {
                    Self::Loopback
                } else if s[0] & 0xffc0 == 0xfe80 {
                    Self::LinkLocal
                } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
                    Self::SiteLocal
                } else {
                    Self::Global
                }
            }
        }
    }
}

impl std::str::FromStr for AddressScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "loopback" => Ok(Self::Loopback),
            "linklocal" => Ok(Self::LinkLocal),
            "sitelocal" => Ok(Self::SiteLocal),
            "global" => Ok(Self::Global),
            _ => Err(format!(
                "unknown address scope {s:?} (loopback, link-local, site-local, global)"
            )),
        }
    }
}

/// Parses a policy in RSPLIB's `rspserver -policy=` spelling
/// (`RoundRobin`, `WeightedRandom:7`, `Priority:3`, `LeastUsed`,
/// `LeastUsedDegradation:0.1`, `WeightedRandomDPF:5:0.2`, ...; names are
/// case-insensitive). Weights and priorities are decimal u32; degradation and
/// DPF values are fractions 0..1 scaled to 0..0xFFFFFFFF. Loads start at 0
/// (a PE reports its load through re-registration).
pub fn parse_policy(s: &str) -> Result<Policy, String> {
    let mut parts = s.split(':');
    let name = parts.next().unwrap_or_default().to_ascii_lowercase();
    let args: Vec<&str> = parts.collect();
    let int = |i: usize| -> Result<u32, String> {
        args.get(i)
            .ok_or_else(|| format!("policy {s:?} needs a value"))?
            .parse::<u32>()
            .map_err(|e| format!("policy {s:?}: {e}"))
    };
    let frac = |i: usize| -> Result<u32, String> {
        let v: f64 = args
            .get(i)
            .ok_or_else(|| format!("policy {s:?} needs a value"))?
            .parse()
            .map_err(|e| format!("policy {s:?}: {e}"))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("policy {s:?}: fraction out of 0..1"));
        }
        Ok((v * f64::from(u32::MAX)).round() as u32)
    };
    let want = |n: usize| -> Result<(), String> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("policy {s:?} takes {n} value(s)"))
        }
    };
    let p = match name.as_str() {
        "roundrobin" => {
            want(0)?;
            Policy::RoundRobin {}
        }
        "weightedroundrobin" => {
            want(1)?;
            Policy::WeightedRoundRobin { weight: int(0)? }
        }
        "random" => {
            want(0)?;
            Policy::Random {}
        }
        "weightedrandom" => {
            want(1)?;
            Policy::WeightedRandom { weight: int(0)? }
        }
        "priority" => {
            want(1)?;
            Policy::Priority { priority: int(0)? }
        }
        "leastused" => {
            want(0)?;
            Policy::LeastUsed { load: 0 }
        }
        "leastuseddegradation" => {
            want(1)?;
            Policy::LeastUsedDegradation {
                load: 0,
                load_degradation: frac(0)?,
            }
        }
        "priorityleastused" => {
            want(1)?;
            Policy::PriorityLeastUsed {
                load: 0,
                load_degradation: frac(0)?,
            }
        }
        "randomizedleastused" => {
            want(0)?;
            Policy::RandomizedLeastUsed { load: 0 }
        }
        "randomizedpriorityleastused" => {
            want(0)?;
            Policy::RandomizedPriorityLeastUsed {
                load: 0,
                load_degradation: 0,
            }
        }
        "priorityleastuseddegradation" => {
            want(1)?;
            Policy::PriorityLeastUsedDegradation {
                load: 0,
                load_degradation: frac(0)?,
            }
        }
        "weightedrandomdpf" => {
            want(2)?;
            Policy::WeightedRandomDpf {
                weight: int(0)?,
                weight_dpf: frac(1)?,
                distance: 0,
            }
        }
        "leastuseddpf" => {
            want(1)?;
            Policy::LeastUsedDpf {
                load: 0,
                load_dpf: frac(0)?,
                distance: 0,
            }
        }
        "leastuseddegradationdpf" => {
            want(2)?;
            Policy::LeastUsedDegradationDpf {
                load: 0,
                load_degradation: frac(0)?,
                load_dpf: frac(1)?,
                distance: 0,
            }
        }
        _ => return Err(format!("unknown policy {s:?}")),
    };
    Ok(p)
}

/// Returns `policy` with its load field set to `load`, if it has one.
pub fn with_load(policy: Policy, load: u32) -> Policy {
    let names = Policy::field_names(policy.policy_type()).unwrap_or(&[]);
    match names.iter().position(|n| *n == "load") {
        Some(i) => {
            let mut vals = policy.values().as_slice().to_vec();
            vals[i] = load;
            Policy::from_values(policy.policy_type(), &vals).unwrap_or(policy)
        }
        None => policy,
    }
}

/// The load field of `policy`, if it has one.
pub fn load_of(policy: &Policy) -> Option<u32> {
    let names = Policy::field_names(policy.policy_type())?;
    let i = names.iter().position(|n| *n == "load")?;
    policy.values().as_slice().get(i).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsplib_policy_spellings() {
        assert_eq!(parse_policy("RoundRobin"), Ok(Policy::RoundRobin {}));
        assert_eq!(
            parse_policy("WeightedRandom:7"),
            Ok(Policy::WeightedRandom { weight: 7 })
        );
        assert_eq!(
            parse_policy("priority:3"),
            Ok(Policy::Priority { priority: 3 })
        );
        assert_eq!(
            parse_policy("LeastUsedDegradation:1"),
            Ok(Policy::LeastUsedDegradation {
                load: 0,
                load_degradation: u32::MAX
            })
        );
        assert!(parse_policy("Random:3").is_err());
        assert!(parse_policy("Nonsense").is_err());
        assert!(parse_policy("WeightedRandom").is_err());
    }

    #[test]
    fn loads_are_found_and_replaced() {
        let p = Policy::LeastUsedDegradation {
            load: 1,
            load_degradation: 9,
        };
        assert_eq!(load_of(&p), Some(1));
        assert_eq!(
            with_load(p, 5),
            Policy::LeastUsedDegradation {
                load: 5,
                load_degradation: 9
            }
        );
        assert_eq!(load_of(&Policy::RoundRobin {}), None);
        assert_eq!(with_load(Policy::RoundRobin {}, 5), Policy::RoundRobin {});
    }

    #[test]
    fn scopes() {
        let s = |a: &str| AddressScope::of(&a.parse().unwrap());
        assert_eq!(s("127.0.0.1"), AddressScope::Loopback);
        assert_eq!(s("0.0.0.0"), AddressScope::Loopback);
        assert_eq!(s("169.254.1.1"), AddressScope::LinkLocal);
        assert_eq!(s("10.77.0.254"), AddressScope::SiteLocal);
        assert_eq!(s("192.0.2.1"), AddressScope::Global);
        assert_eq!(s("::1"), AddressScope::Loopback);
        assert_eq!(s("fe80::1"), AddressScope::LinkLocal);
        assert_eq!(s("fd77::fe"), AddressScope::SiteLocal);
        assert_eq!(s("2001:db8::1"), AddressScope::Global);
        assert_eq!(s("::ffff:10.0.0.1"), AddressScope::SiteLocal);
    }

    #[test]
    fn pool_handles_are_1_to_32_bytes() {
        assert!(PoolHandleBuf::new("").is_none());
        assert!(PoolHandleBuf::new(vec![b'x'; 33]).is_none());
        assert_eq!(
            PoolHandleBuf::new("EchoPool").unwrap().to_string(),
            "EchoPool"
        );
    }
}
