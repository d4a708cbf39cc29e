//! Kernel SCTP, one-to-one style (RFC 6458 §4): each association is its own
//! file descriptor, like a TCP connection, but reads and writes keep message
//! boundaries and every message carries a PPID.
//!
//! Receiving: [`configure`] turns on `SCTP_RECVRCVINFO`, so every received
//! message comes with its PPID ([`Received::ppid`]). [`RecvBatch`] reads up
//! to a batch of messages with one `recvmmsg` call. A message longer than a
//! batch slot arrives in pieces ([`Received::complete`] is false until the
//! last); the caller joins them.
//!
//! Sending: [`configure`] sets the default PPID (`SCTP_DEFAULT_SNDINFO`), so
//! plain writes carry it; [`send_batch`] sends several messages with one
//! `sendmmsg` call.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use smallvec::SmallVec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::sys::{self, IPPROTO_SCTP, RcvInfo, SOL_SCTP, SndInfo, cvt, cvt_size, setsockopt};

/// Whether this kernel has SCTP (the module may need loading; creating a
/// socket triggers that).
pub fn available() -> bool {
    Socket::new(
        Domain::IPV4,
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    )
    .is_ok()
}

/// Why SCTP cannot be used, in one line, or `None` if it can.
pub fn unavailable_reason() -> Option<String> {
    match Socket::new(
        Domain::IPV4,
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    ) {
        Ok(_) => None,
        Err(e) => Some(format!("this kernel has no SCTP ({e})")),
    }
}

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    )
}

/// A listening one-to-one SCTP socket bound to `addrs` (the first with
/// `bind`, the others added with `sctp_bindx`: a multi-homed endpoint),
/// non-blocking. With `reuse_port`, several sockets (one per core) can
/// listen on the same port and the kernel spreads associations over them.
pub fn listen(addrs: &[SocketAddr], reuse_port: bool, backlog: i32) -> io::Result<Socket> {
    let first = addrs
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
    let s = socket_for(first)?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if first.is_ipv6() {
        // An IPv6 wildcard also takes IPv4 peers (v4-mapped).
        s.set_only_v6(false).ok();
    }
    s.bind(&SockAddr::from(*first))?;
    if addrs.len() > 1 {
        bindx_add(s.as_raw_fd(), &addrs[1..])?;
    }
    s.listen(backlog)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A connected one-to-one SCTP socket to the first of `addrs` that answers
/// (blocking connect; the socket is left blocking). `timeout` bounds each
/// attempt.
pub fn connect(addrs: &[SocketAddr], timeout: Option<std::time::Duration>) -> io::Result<Socket> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for a in addrs {
        let s = socket_for(a)?;
        let r = match timeout {
            Some(t) => s.connect_timeout(&SockAddr::from(*a), t),
            None => s.connect(&SockAddr::from(*a)),
        };
        match r {
            Ok(()) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Prepares an association's socket: no Nagle-style delay, PPIDs reported on
/// receive, `ppid` on every send by default.
pub fn configure(fd: RawFd, ppid: u32) -> io::Result<()> {
    setsockopt(fd, SOL_SCTP, sys::SCTP_NODELAY, &1i32)?;
    setsockopt(fd, SOL_SCTP, sys::SCTP_RECVRCVINFO, &1i32)?;
    let info = SndInfo {
        ppid: ppid.to_be(),
        ..SndInfo::default()
    };
    setsockopt(fd, SOL_SCTP, sys::SCTP_DEFAULT_SNDINFO, &info)
}

/// Adds local addresses to a bound socket (multihoming).
pub fn bindx_add(fd: RawFd, addrs: &[SocketAddr]) -> io::Result<()> {
    let mut packed = Vec::new();
    for a in addrs {
        sys::sockaddr_to_bytes(a, &mut packed);
    }
    // SAFETY: `packed` holds `addrs.len()` packed sockaddrs, the layout
    // SCTP_SOCKOPT_BINDX_ADD expects; the kernel reads `packed.len()` bytes.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_SCTP,
            sys::SCTP_SOCKOPT_BINDX_ADD,
            packed.as_ptr().cast(),
            packed.len() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

fn addrs(fd: RawFd, opt: libc::c_int) -> io::Result<Vec<SocketAddr>> {
    // struct sctp_getaddrs { sctp_assoc_t assoc_id; u32 addr_num; u8 addrs[]; }
    let mut buf = vec![0u8; 8 + 64 * size_of::<libc::sockaddr_in6>()];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes; assoc id 0 (the first eight
    // bytes, zero) means "this one-to-one socket's association".
    let r = unsafe { libc::getsockopt(fd, SOL_SCTP, opt, buf.as_mut_ptr().cast(), &mut len) };
    cvt(r)?;
    let n = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let mut out = Vec::with_capacity(n);
    let mut rest = &buf[8..(len as usize).min(buf.len())];
    for _ in 0..n {
        let Some((a, used)) = sys::sockaddr_from_bytes(rest) else {
            break;
        };
        out.push(a);
        rest = &rest[used..];
    }
    Ok(out)
}

/// All addresses of the peer of a connected socket (`sctp_getpaddrs`).
pub fn peer_addrs(fd: RawFd) -> io::Result<Vec<SocketAddr>> {
    addrs(fd, sys::SCTP_GET_PEER_ADDRS)
}

/// All local addresses of a connected or bound socket (`sctp_getladdrs`).
pub fn local_addrs(fd: RawFd) -> io::Result<Vec<SocketAddr>> {
    addrs(fd, sys::SCTP_GET_LOCAL_ADDRS)
}

/// What one receive delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// The message's PPID (host order), when the kernel reported it.
    pub ppid: Option<u32>,
    /// Whether this ends a message (`MSG_EOR`); if not, more follows.
    pub complete: bool,
    /// Whether this is an SCTP notification rather than data.
    pub notification: bool,
}

const CMSG_SPACE: usize = 64;

fn parse_cmsgs(msg: &libc::msghdr) -> Option<u32> {
    let mut ppid = None;
    // SAFETY: `msg` was filled by a successful recvmsg/recvmmsg with a control
    // buffer we own; CMSG_FIRSTHDR/NXTHDR stay within `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == IPPROTO_SCTP && (*c).cmsg_type == sys::SCTP_RCVINFO {
                let data = libc::CMSG_DATA(c).cast::<RcvInfo>();
                ppid = Some(u32::from_be(data.read_unaligned().ppid));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    ppid
}

/// Reads one message (or piece of one) into `buf`. `len` 0 with `complete`
/// means the peer closed the association.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = [0u64; CMSG_SPACE / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = sys::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_SPACE as _;
    // SAFETY: `msg` points to `iov` (into `buf`) and `cmsg`, all live and
    // writable for the lengths given.
    let n = cvt_size(unsafe { libc::recvmsg(fd, &mut msg, 0) })?;
    Ok(Received {
        len: n,
        ppid: parse_cmsgs(&msg),
        complete: n == 0 || msg.msg_flags & libc::MSG_EOR != 0,
        notification: msg.msg_flags & 0x8000 != 0,
    })
}

/// Buffers for receiving up to `slots` messages of up to `slot_size` bytes
/// with one system call. Allocated once, reused for every call: the
/// message headers too, which point into the batch's own buffers.
pub struct RecvBatch {
    slot_size: usize,
    data: Vec<u8>,
    /// One control buffer per slot; the kernel writes them through `hdrs`.
    #[allow(dead_code)]
    cmsgs: Vec<[u64; CMSG_SPACE / 8]>,
    meta: Vec<Received>,
    /// One per slot, over its part of `data`; the kernel reads them through
    /// `hdrs`.
    #[allow(dead_code)]
    iovs: Vec<libc::iovec>,
    /// One per slot, pointing at its iovec and its control buffer. None of
    /// these vectors is ever resized, so the pointers stay valid when the
    /// batch moves (their heap buffers do not).
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point only into buffers the
// batch owns (never shared, never resized), so moving the batch to another
// thread moves everything they refer to with it.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.meta.len())
            .field("slot_size", &self.slot_size)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// Room for `slots` messages of `slot_size` bytes each.
    pub fn new(slots: usize, slot_size: usize) -> Self {
        let slots = slots.max(1);
        let mut data = vec![0; slots * slot_size];
        let mut cmsgs = vec![[0; CMSG_SPACE / 8]; slots];
        let mut iovs: Vec<libc::iovec> = (0..slots)
            .map(|i| libc::iovec {
                iov_base: data[i * slot_size..].as_mut_ptr().cast(),
                iov_len: slot_size,
            })
            .collect();
        let hdrs = iovs
            .iter_mut()
            .zip(cmsgs.iter_mut())
            .map(|(iov, cmsg)| {
                let mut h: libc::mmsghdr = sys::zeroed();
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_control = cmsg.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = CMSG_SPACE as _;
                h
            })
            .collect();
        Self {
            slot_size,
            data,
            cmsgs,
            meta: vec![
                Received {
                    len: 0,
                    ppid: None,
                    complete: true,
                    notification: false
                };
                slots
            ],
            iovs,
            hdrs,
            count: 0,
        }
    }

    /// How many messages one [`RecvBatch::recv`] can return.
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    /// Reads as many messages as are waiting (up to the batch size) without
    /// blocking. Returns how many; `Err(WouldBlock)` if none was waiting.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let slots = self.meta.len();
        // The kernel wrote lengths and flags into the headers last time.
        for h in &mut self.hdrs {
            h.msg_len = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_hdr.msg_controllen = CMSG_SPACE as _;
        }
        // SAFETY: every header points to an iovec over a distinct slot of
        // `data` and to its own control buffer (built in `new`, owned by
        // `self`, never resized), all live for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = cvt(n)? as usize;
        for (h, m) in self.hdrs.iter().zip(self.meta.iter_mut()).take(n) {
            let len = h.msg_len as usize;
            *m = Received {
                len,
                ppid: parse_cmsgs(&h.msg_hdr),
                complete: len == 0 || h.msg_hdr.msg_flags & libc::MSG_EOR != 0,
                notification: h.msg_hdr.msg_flags & 0x8000 != 0,
            };
        }
        self.count = n;
        Ok(n)
    }

    /// The messages of the last [`RecvBatch::recv`].
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Received)> + '_ {
        self.meta.iter().take(self.count).enumerate().map(|(i, m)| {
            (
                &self.data[i * self.slot_size..i * self.slot_size + m.len],
                *m,
            )
        })
    }
}

/// Sends one message with `ppid`.
pub fn send(fd: RawFd, buf: &[u8], ppid: u32) -> io::Result<usize> {
    send_batch(fd, &[buf], ppid).map(|_| buf.len())
}

/// Sends one message with `ppid`, waiting while the socket's send buffer is
/// full (for blocking clients; bounded by the socket's send timeout,
/// `SO_SNDTIMEO`, after which it fails with `WouldBlock`).
pub fn send_blocking(fd: RawFd, buf: &[u8], ppid: u32) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut _,
        iov_len: buf.len(),
    };
    send_iovs_flags(fd, std::iter::once(iov), 1, ppid, libc::MSG_NOSIGNAL).map(|_| buf.len())
}

/// Sends several messages, each with `ppid`, with one `sendmmsg` call, not
/// blocking. Returns how many were sent (possibly fewer when the socket
/// buffer is full; `Err(WouldBlock)` if none).
pub fn send_batch(fd: RawFd, msgs: &[&[u8]], ppid: u32) -> io::Result<usize> {
    let iovs = msgs.iter().map(|m| libc::iovec {
        iov_base: m.as_ptr() as *mut _,
        iov_len: m.len(),
    });
    send_iovs(fd, iovs, msgs.len(), ppid)
}

/// Like [`send_batch`], for messages stored back to back in `buf` with
/// lengths `lens` (a connection's send queue).
pub fn send_batch_lens(fd: RawFd, buf: &[u8], lens: &[u32], ppid: u32) -> io::Result<usize> {
    let mut at = 0usize;
    let iovs = lens.iter().map_while(|&l| {
        let m = buf.get(at..at + l as usize)?;
        at += l as usize;
        Some(libc::iovec {
            iov_base: m.as_ptr() as *mut _,
            iov_len: m.len(),
        })
    });
    send_iovs(fd, iovs, lens.len(), ppid)
}

/// What [`send_queue`] got out of a send queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Messages sent (the first `msgs` of the queue).
    pub msgs: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The socket failed (anything but "would block"): the association is
    /// gone.
    pub failed: bool,
}

/// Sends the messages stored back to back in `buf` with lengths `lens`,
/// all with `ppid`, batch after batch ([`send_batch_lens`]) until all are
/// sent, the socket would block, or it fails. The caller drops what
/// [`Sent`] says went out; the rest waits for the socket to be writable.
pub fn send_queue(fd: RawFd, buf: &[u8], lens: &[u32], ppid: u32) -> Sent {
    let mut sent = Sent::default();
    while sent.msgs < lens.len() {
        match send_batch_lens(fd, &buf[sent.bytes..], &lens[sent.msgs..], ppid) {
            Ok(0) => break,
            Ok(n) => {
                let n = n.min(lens.len() - sent.msgs);
                sent.bytes += lens[sent.msgs..sent.msgs + n]
                    .iter()
                    .map(|&l| l as usize)
                    .sum::<usize>();
                sent.msgs += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                sent.failed = true;
                break;
            }
        }
    }
    sent
}

fn send_iovs(
    fd: RawFd,
    iovs: impl Iterator<Item = libc::iovec>,
    count: usize,
    ppid: u32,
) -> io::Result<usize> {
    send_iovs_flags(
        fd,
        iovs,
        count,
        ppid,
        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
    )
}

fn send_iovs_flags(
    fd: RawFd,
    iovs: impl Iterator<Item = libc::iovec>,
    count: usize,
    ppid: u32,
    flags: libc::c_int,
) -> io::Result<usize> {
    const SPACE: usize = 64;
    // Up to 16 messages (most calls) without touching the heap.
    type Small<T> = SmallVec<[T; 16]>;
    let n = count.min(1024);
    let mut iovs: Small<libc::iovec> = iovs.take(n).collect();
    let n = iovs.len();
    let mut cmsgs: Small<[u64; SPACE / 8]> = smallvec::smallvec![[0u64; SPACE / 8]; n];
    let mut hdrs: Small<libc::mmsghdr> = SmallVec::with_capacity(n);
    let info = SndInfo {
        ppid: ppid.to_be(),
        ..SndInfo::default()
    };
    for (iov, cmsg) in iovs.iter_mut().zip(cmsgs.iter_mut()) {
        let mut h: libc::mmsghdr = sys::zeroed();
        h.msg_hdr.msg_iov = iov;
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = cmsg.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure size computation.
        h.msg_hdr.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<SndInfo>() as u32) } as _;
        // SAFETY: the control buffer holds SPACE >= CMSG_SPACE(sndinfo) bytes;
        // CMSG_FIRSTHDR points into it and CMSG_DATA has room for `info`.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            (*c).cmsg_level = IPPROTO_SCTP;
            (*c).cmsg_type = sys::SCTP_SNDINFO;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<SndInfo>() as u32) as _;
            libc::CMSG_DATA(c).cast::<SndInfo>().write_unaligned(info);
        }
        hdrs.push(h);
    }
    // SAFETY: each header points to one iovec over a live message (only read)
    // and to its own control buffer.
    let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, flags) };
    Ok(cvt(r)? as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs only where the kernel has SCTP (in the project's lab); says so
    /// loudly otherwise.
    fn sctp_or_skip(name: &str) -> bool {
        if let Some(why) = unavailable_reason() {
            eprintln!("SKIPPED {name}: {why} (run it with tests/lab/sctp-lab)");
            if std::env::var_os("RSERPOOL_REQUIRE_SCTP").is_some() {
                panic!("{name}: SCTP required but {why}");
            }
            return false;
        }
        true
    }

    #[test]
    fn ppid_batches_and_peer_addresses() {
        if !sctp_or_skip("ppid_batches_and_peer_addresses") {
            return;
        }
        let l = listen(&["127.0.0.1:0".parse().unwrap()], true, 16).unwrap();
        let port = l.local_addr().unwrap().as_socket().unwrap().port();
        let c = connect(&[format!("127.0.0.1:{port}").parse().unwrap()], None).unwrap();
        configure(c.as_raw_fd(), 11).unwrap();
        let (a, _) = loop {
            match l.accept() {
                Ok(x) => break x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        configure(a.as_raw_fd(), 11).unwrap();
        // Three messages in one sendmmsg, with PPIDs 11, 11 (batch) and 12.
        assert_eq!(
            send_batch(c.as_raw_fd(), &[b"one", b"second"], 11).unwrap(),
            2
        );
        send(c.as_raw_fd(), b"third!", 12).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut b = RecvBatch::new(8, 4);
        let n = b.recv(a.as_raw_fd()).unwrap();
        let got: Vec<(Vec<u8>, Received)> = b.iter().map(|(d, r)| (d.to_vec(), r)).collect();
        assert_eq!(n, got.len());
        // Slots of 4 bytes: "second" and "third!" arrive in two pieces each.
        assert_eq!(got[0].0, b"one");
        assert_eq!((got[0].1.ppid, got[0].1.complete), (Some(11), true));
        assert_eq!(got[1].0, b"seco");
        assert!(!got[1].1.complete);
        let all: Vec<u8> = got.iter().flat_map(|(d, _)| d.clone()).collect();
        let mut rest = Vec::new();
        while let Ok(n) = b.recv(a.as_raw_fd()) {
            if n == 0 {
                break;
            }
            rest.extend(b.iter().flat_map(|(d, r)| {
                assert!(r.ppid.is_some());
                d.to_vec()
            }));
        }
        assert_eq!([all, rest].concat(), b"onesecondthird!");
        // Plain writes carry the default PPID.
        use std::io::Write;
        (&c).write_all(b"dflt").unwrap();
        let mut buf = [0u8; 64];
        let r = loop {
            match recv(a.as_raw_fd(), &mut buf) {
                Ok(r) => break r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!((&buf[..r.len], r.ppid), (&b"dflt"[..], Some(11)));
        let peers = peer_addrs(a.as_raw_fd()).unwrap();
        assert!(
            peers.iter().any(|p| p.ip().to_string() == "127.0.0.1"),
            "{peers:?}"
        );
        assert!(!local_addrs(c.as_raw_fd()).unwrap().is_empty());
        drop(c);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let r = recv(a.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((r.len, r.complete), (0, true), "closed");
    }

    #[test]
    fn availability_is_reported() {
        // On this host it may be either; the reason is present exactly when
        // SCTP is not.
        assert_eq!(available(), unavailable_reason().is_none());
    }
}
