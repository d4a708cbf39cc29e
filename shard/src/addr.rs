//! Checking the addresses a PE registers against the association it
//! registered on (RFC 5352 §3.1: the user transport's addresses must be a
//! subset of the association's) and against a minimum address scope, as
//! RSPLIB's registrar does: unusable addresses are dropped, and the
//! registration fails only if none is left.

use std::net::IpAddr;

/// How far an address reaches, from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), fec0::/10, fc00::/7.
    SiteLocal,
    /// Everything else that is unicast.
    Global,
}

impl Scope {
    /// The scope of a unicast address; `None` for unspecified, multicast and
    /// broadcast addresses, which a PE can never be reached at.
    pub fn of(a: IpAddr) -> Option<Self> {
        match a {
            IpAddr::V4(v) => {
                if v.is_unspecified() || v.is_multicast() || v.is_broadcast() {
                    None
                } else if v.is_loopback() {
                    Some(Self::Loopback)
                } else if v.is_link_local() {
                    Some(Self::LinkLocal)
                } else if v.is_private() {
                    Some(Self::SiteLocal)
                } else {
                    Some(Self::Global)
                }
            }
            IpAddr::V6(v) => {
                if let Some(v4) = v.to_ipv4_mapped() {
                    return Self::of(IpAddr::V4(v4));
                }
                let seg = v.segments()[0];
                if v.is_unspecified() || v.is_multicast() {
                    None
                } else if v.is_loopback() {
                    Some(Self::Loopback)
                } else if seg & 0xffc0 == 0xfe80 {
                    Some(Self::LinkLocal)
                } else if seg & 0xffc0 == 0xfec0 || seg & 0xfe00 == 0xfc00 {
                    Some(Self::SiteLocal)
                } else {
                    Some(Self::Global)
                }
            }
        }
    }

    /// Parses `loopback`, `link-local`, `site-local` or `global` (RSPLIB's
    /// `-minaddressscope` words are accepted too: `linklocal`, `sitelocal`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "loopback" | "hostlocal" => Some(Self::Loopback),
            "linklocal" => Some(Self::LinkLocal),
            "sitelocal" => Some(Self::SiteLocal),
            "global" => Some(Self::Global),
            _ => None,
        }
    }
}

/// Whether a registered user address may be kept.
pub fn usable(
    addr: IpAddr,
    association: &[IpAddr],
    min_scope: Scope,
    require_subset: bool,
) -> bool {
    let in_scope = Scope::of(addr).is_some_and(|s| s >= min_scope);
    in_scope && (!require_subset || association.contains(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn scopes() {
        let cases = [
            ("127.0.0.1", Some(Scope::Loopback)),
            ("::1", Some(Scope::Loopback)),
            ("169.254.1.1", Some(Scope::LinkLocal)),
            ("fe80::1", Some(Scope::LinkLocal)),
            ("10.77.0.254", Some(Scope::SiteLocal)),
            ("192.168.1.1", Some(Scope::SiteLocal)),
            ("fd77::fe", Some(Scope::SiteLocal)),
            ("192.0.2.10", Some(Scope::Global)),
            ("2001:db8::1", Some(Scope::Global)),
            ("::ffff:10.0.0.1", Some(Scope::SiteLocal)),
            ("0.0.0.0", None),
            ("239.0.0.50", None),
        ];
        for (a, s) in cases {
            assert_eq!(Scope::of(ip(a)), s, "{a}");
        }
    }

    #[test]
    fn filter_needs_scope_and_subset() {
        let assoc = [ip("10.0.0.1"), ip("127.0.0.1")];
        assert!(usable(ip("10.0.0.1"), &assoc, Scope::SiteLocal, true));
        assert!(!usable(ip("127.0.0.1"), &assoc, Scope::SiteLocal, true));
        assert!(usable(ip("127.0.0.1"), &assoc, Scope::Loopback, true));
        assert!(!usable(ip("10.0.0.2"), &assoc, Scope::Loopback, true));
        assert!(usable(ip("10.0.0.2"), &assoc, Scope::Loopback, false));
        assert_eq!(Scope::parse("site-local"), Some(Scope::SiteLocal));
        assert_eq!(Scope::parse("bogus"), None);
    }
}
