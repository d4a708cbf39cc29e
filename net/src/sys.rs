//! Kernel SCTP definitions (from `linux/sctp.h`) that the libc crate lacks,
//! and socket address conversions.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

pub(crate) const IPPROTO_SCTP: libc::c_int = 132;
pub(crate) const SOL_SCTP: libc::c_int = 132;

pub(crate) const SCTP_NODELAY: libc::c_int = 3;
pub(crate) const SCTP_RECVRCVINFO: libc::c_int = 32;
pub(crate) const SCTP_DEFAULT_SNDINFO: libc::c_int = 34;
pub(crate) const SCTP_SOCKOPT_BINDX_ADD: libc::c_int = 100;
pub(crate) const SCTP_GET_PEER_ADDRS: libc::c_int = 108;
pub(crate) const SCTP_GET_LOCAL_ADDRS: libc::c_int = 109;

/// cmsg types.
pub(crate) const SCTP_SNDINFO: libc::c_int = 2;
pub(crate) const SCTP_RCVINFO: libc::c_int = 3;

/// `struct sctp_sndinfo`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct SndInfo {
    pub(crate) sid: u16,
    pub(crate) flags: u16,
    pub(crate) ppid: u32,
    pub(crate) context: u32,
    pub(crate) assoc_id: i32,
}

/// `struct sctp_rcvinfo`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RcvInfo {
    pub(crate) sid: u16,
    pub(crate) ssn: u16,
    pub(crate) flags: u16,
    pub(crate) ppid: u32,
    pub(crate) tsn: u32,
    pub(crate) cumtsn: u32,
    pub(crate) context: u32,
    pub(crate) assoc_id: i32,
}

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub(crate) fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Sets a socket option from a plain value.
pub(crate) fn setsockopt<T: Copy>(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes; the
    // kernel only reads that many bytes.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

/// Decodes a `sockaddr_in`/`sockaddr_in6` at the start of `bytes`; returns it
/// and its size.
pub(crate) fn sockaddr_from_bytes(bytes: &[u8]) -> Option<(SocketAddr, usize)> {
    let family = libc::sa_family_t::from_ne_bytes(bytes.get(..2)?.try_into().ok()?);
    match libc::c_int::from(family) {
        libc::AF_INET => {
            let b = bytes.get(..size_of::<libc::sockaddr_in>())?;
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some((SocketAddr::V4(SocketAddrV4::new(ip, port)), b.len()))
        }
        libc::AF_INET6 => {
            let b = bytes.get(..size_of::<libc::sockaddr_in6>())?;
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let ip: [u8; 16] = b[8..24].try_into().ok()?;
            let scope = u32::from_ne_bytes(b[24..28].try_into().ok()?);
            Some((
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, flow, scope)),
                b.len(),
            ))
        }
        _ => None,
    }
}

/// Encodes a socket address as the kernel's packed `sockaddr_in` /
/// `sockaddr_in6` (what `sctp_bindx` and `sctp_connectx` take).
pub(crate) fn sockaddr_to_bytes(a: &SocketAddr, out: &mut Vec<u8>) {
    match a {
        SocketAddr::V4(v4) => {
            let mut sin: libc::sockaddr_in = zeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            out.extend_from_slice(as_bytes(&sin));
        }
        SocketAddr::V6(v6) => {
            let mut sin6: libc::sockaddr_in6 = zeroed();
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            out.extend_from_slice(as_bytes(&sin6));
        }
    }
}

/// An all-zero value of a plain C struct.
pub(crate) fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for libc's C structs (sockaddrs, msghdrs, cmsg
    // payloads), for which all-zero bytes are a valid value.
    unsafe { MaybeUninit::<T>::zeroed().assume_init() }
}

/// The bytes of a plain C struct.
pub(crate) fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: `v` is a live, initialised `T`; only used for padding-free or
    // zero-initialised C structs, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}
