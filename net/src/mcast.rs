//! UDP multicast for announcements (ASAP Server Announce, ENRP presence).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A socket that sends to `group` with `ttl`, from `interface` (IPv4
/// interface address; unspecified = the kernel's choice). Loopback of our own
/// datagrams is on, so local listeners hear them. `source_port` 0 = any.
pub fn sender(
    group: SocketAddr,
    interface: Option<Ipv4Addr>,
    ttl: u32,
    source_port: u16,
) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    match group.ip() {
        IpAddr::V4(_) => {
            s.set_multicast_ttl_v4(ttl)?;
            s.set_multicast_loop_v4(true)?;
            if let Some(i) = interface {
                s.set_multicast_if_v4(&i)?;
            }
            s.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                source_port,
            ))))?;
        }
        IpAddr::V6(_) => {
            s.set_multicast_hops_v6(ttl)?;
            s.set_multicast_loop_v6(true)?;
            s.bind(&SockAddr::from(SocketAddr::from((
                std::net::Ipv6Addr::UNSPECIFIED,
                source_port,
            ))))?;
        }
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A socket bound to `group`'s port that has joined `group` on `interface`
/// (IPv4; unspecified = any), non-blocking. Several listeners may share the
/// port (`SO_REUSEADDR`/`SO_REUSEPORT`).
pub fn listener(group: SocketAddr, interface: Option<Ipv4Addr>) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(group), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    match group.ip() {
        IpAddr::V4(g) => {
            s.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                group.port(),
            ))))?;
            s.join_multicast_v4(&g, &interface.unwrap_or(Ipv4Addr::UNSPECIFIED))?;
        }
        IpAddr::V6(g) => {
            s.bind(&SockAddr::from(SocketAddr::from((
                std::net::Ipv6Addr::UNSPECIFIED,
                group.port(),
            ))))?;
            s.join_multicast_v6(&g, 0)?;
        }
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// IPv4 addresses of the interfaces that are up and can multicast (what an
/// announce is sent out of, one copy per interface). Empty if none.
pub fn ipv4_multicast_interfaces() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `ifap` with a list we free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until
        // freeifaddrs; `ifa_addr` is checked for null and for AF_INET before
        // it is read as a sockaddr_in.
        unsafe {
            let ifa = &*cur;
            let flags = ifa.ifa_flags;
            let wanted = (libc::IFF_UP | libc::IFF_MULTICAST) as libc::c_uint;
            if !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                && flags & wanted == wanted
            {
                let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: `ifap` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(ifap) };
    out
}
