//! The floor: a trivial echo server over the same transport and framing as
//! the registrar that sends every complete ASAP message back as it came.
//! One mio loop per thread, each with its own listening socket on the same
//! port (SO_REUSEPORT), as the registrar does.
//!
//! * TCP: ASAP's own message length cuts the byte stream into frames; every
//!   complete frame goes back, partial ones wait for the rest.
//! * SCTP (one-to-one style sockets, one per association, as the registrar
//!   and the load generator use): every message is read with its PPID, many
//!   per wake-up (`recvmmsg`), and sent back on the same association with
//!   the PPID it came with, the replies of a wake-up in batches
//!   (`sendmmsg`). A message whose ASAP length is not its own length ends
//!   the association, as a broken TCP frame ends the connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rserpool_client::{ASAP_PPID, Proto};
use rserpool_net::sctp;
use rserpool_wire::frame_len;

/// Parses an echo listen address, `[tcp:|sctp:]ADDR:PORT` (IPv6 as
/// `[ADDR]:PORT`); `transport` (`tcp` or `sctp`, default tcp) applies when
/// there is no prefix, as `--transport` does for `--registrar`.
pub fn parse_listen(s: &str, transport: Option<&str>) -> Result<(Proto, SocketAddr), String> {
    let default = match transport.unwrap_or("tcp") {
        t if t.eq_ignore_ascii_case("tcp") => Proto::Tcp,
        t if t.eq_ignore_ascii_case("sctp") => Proto::Sctp,
        t => return Err(format!("unknown transport {t:?} (tcp or sctp)")),
    };
    let (proto, rest) = match s.split_once(':') {
        Some((p, rest)) if p.eq_ignore_ascii_case("sctp") => (Proto::Sctp, rest),
        Some((p, rest)) if p.eq_ignore_ascii_case("tcp") => (Proto::Tcp, rest),
        _ => (default, s),
    };
    let addr = rest
        .parse()
        .map_err(|e| format!("bad listen address {s:?} ({e}; want [tcp:|sctp:]ADDR:PORT)"))?;
    Ok((proto, addr))
}

/// A running echo server.
#[derive(Debug)]
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Over which transport.
    pub proto: Proto,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

enum Listener {
    Tcp(std::net::TcpListener),
    Sctp(socket2::Socket),
}

impl Listener {
    fn bind(proto: Proto, addr: SocketAddr) -> io::Result<Self> {
        match proto {
            Proto::Tcp => bind(addr).map(Self::Tcp),
            Proto::Sctp => {
                if let Some(why) = sctp::unavailable_reason() {
                    return Err(io::Error::new(io::ErrorKind::Unsupported, why));
                }
                sctp::listen(&[addr], true, 4096).map(Self::Sctp)
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr(),
            Self::Sctp(s) => s.local_addr()?.as_socket().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address")
            }),
        }
    }
}

impl EchoServer {
    /// Starts `threads` loops on `listen` over `proto` (port 0: one the
    /// kernel picks), pinned to `cores` in turn when given. Over SCTP
    /// without kernel SCTP it fails with a one-line reason
    /// ([`sctp::unavailable_reason`]).
    pub fn start(
        proto: Proto,
        listen: SocketAddr,
        threads: usize,
        cores: &[usize],
    ) -> io::Result<Self> {
        let first = Listener::bind(proto, listen)?;
        let addr = first.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut listeners = vec![first];
        for _ in 1..threads.max(1) {
            listeners.push(Listener::bind(proto, addr)?);
        }
        let mut handles = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let stop = stop.clone();
            let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("echo-{i}"))
                    .spawn(move || {
                        if let Some(c) = core {
                            core_affinity::set_for_current(core_affinity::CoreId { id: c });
                        }
                        let r = match l {
                            Listener::Tcp(l) => serve(l, &stop),
                            Listener::Sctp(l) => serve_sctp(l, &stop),
                        };
                        if let Err(e) = r {
                            eprintln!("loadgen echo: thread {i}: {e}");
                        }
                    })?,
            );
        }
        Ok(Self {
            addr,
            proto,
            stop,
            threads: handles,
        })
    }

    /// Where it listens, as `--registrar` takes it (`sctp:ADDR:PORT`).
    pub fn target(&self) -> String {
        format!("{}:{}", self.proto.name(), self.addr)
    }

    /// Blocks until the threads end (they do not unless stopped).
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops and joins the threads.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
    len: usize,
    out: Vec<u8>,
}

const LISTENER: Token = Token(usize::MAX);

fn serve(l: std::net::TcpListener, stop: &AtomicBool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut l = TcpListener::from_std(l);
    poll.registry()
        .register(&mut l, LISTENER, Interest::READABLE)?;
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut closed = Vec::new();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.set_nodelay(true);
                            let i = free.pop().unwrap_or_else(|| {
                                peers.push(None);
                                peers.len() - 1
                            });
                            poll.registry().register(
                                &mut s,
                                Token(i),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            peers[i] = Some(Peer {
                                s,
                                buf: vec![0; 64 * 1024],
                                len: 0,
                                out: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let Some(p) = peers.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if !pump(p) {
                closed.push(i);
            }
        }
        for i in closed {
            if let Some(mut p) = peers[i].take() {
                let _ = poll.registry().deregister(&mut p.s);
                free.push(i);
            }
        }
    }
    Ok(())
}

/// Reads what is there, queues every complete frame back, writes. False
/// when the peer is gone or sent something that is not ASAP framing.
fn pump(p: &mut Peer) -> bool {
    let mut alive = true;
    loop {
        if p.len == p.buf.len() {
            if p.buf.len() >= 1 << 20 {
                return false;
            }
            let n = p.buf.len() * 2;
            p.buf.resize(n, 0);
        }
        match p.s.read(&mut p.buf[p.len..]) {
            Ok(0) => {
                alive = false;
                break;
            }
            Ok(n) => {
                p.len += n;
                if p.len < p.buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let mut pos = 0;
    while pos < p.len {
        match frame_len(&p.buf[pos..p.len]) {
            Ok(Some(n)) if pos + n <= p.len => pos += n,
            Ok(_) => break,
            Err(_) => return false,
        }
    }
    p.out.extend_from_slice(&p.buf[..pos]);
    p.buf.copy_within(pos..p.len, 0);
    p.len -= pos;
    let mut off = 0;
    while off < p.out.len() {
        match p.s.write(&p.out[off..]) {
            Ok(0) => return false,
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    p.out.drain(..off);
    alive
}

/// One SCTP association of the echo server.
struct Assoc {
    s: socket2::Socket,
    /// The first pieces of a message received in parts.
    partial: Vec<u8>,
    /// Replies queued back to back, with their lengths and PPIDs.
    out: Vec<u8>,
    lens: Vec<u32>,
    ppids: Vec<u32>,
}

/// Longest message echoed (longer ones end the association).
const MAX_MESSAGE: usize = 1 << 20;

fn serve_sctp(l: socket2::Socket, stop: &AtomicBool) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let lfd = l.as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&lfd), LISTENER, Interest::READABLE)?;
    let mut assocs: Vec<Option<Assoc>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut rb = sctp::RecvBatch::new(64, 8192);
    while !stop.load(Ordering::Relaxed) {
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut closed = Vec::new();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match l.accept() {
                        Ok((s, _)) => {
                            let fd = s.as_raw_fd();
                            if s.set_nonblocking(true).is_err()
                                || sctp::configure(fd, ASAP_PPID).is_err()
                            {
                                continue;
                            }
                            let i = free.pop().unwrap_or_else(|| {
                                assocs.push(None);
                                assocs.len() - 1
                            });
                            poll.registry().register(
                                &mut SourceFd(&fd),
                                Token(i),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            assocs[i] = Some(Assoc {
                                s,
                                partial: Vec::new(),
                                out: Vec::new(),
                                lens: Vec::new(),
                                ppids: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let Some(a) = assocs.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if !pump_sctp(a, &mut rb) {
                closed.push(i);
            }
        }
        for i in closed {
            if let Some(a) = assocs[i].take() {
                let _ = poll.registry().deregister(&mut SourceFd(&a.s.as_raw_fd()));
                free.push(i);
            }
        }
    }
    Ok(())
}

/// Reads every waiting message (batches of `rb`'s size), queues each back
/// with its PPID, sends the queue. False when the association is gone or a
/// message is not one ASAP message.
fn pump_sctp(a: &mut Assoc, rb: &mut sctp::RecvBatch) -> bool {
    let fd = a.s.as_raw_fd();
    loop {
        let n = match rb.recv(fd) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        for (data, m) in rb.iter() {
            if m.notification {
                continue;
            }
            if m.len == 0 && m.complete {
                // The peer closed the association.
                return false;
            }
            if a.partial.len() + data.len() > MAX_MESSAGE {
                return false;
            }
            if !m.complete {
                a.partial.extend_from_slice(data);
                continue;
            }
            let start = a.out.len();
            a.out.extend_from_slice(&a.partial);
            a.out.extend_from_slice(data);
            a.partial.clear();
            let len = a.out.len() - start;
            if !one_asap_message(&a.out[start..]) {
                return false;
            }
            a.lens.push(len as u32);
            a.ppids.push(m.ppid.unwrap_or(ASAP_PPID));
        }
        if n < rb.slots() {
            break;
        }
    }
    flush_sctp(a)
}

/// Whether `msg` is exactly one ASAP message: its length field, padded or
/// not (both conventions are in use), covers the whole message.
fn one_asap_message(msg: &[u8]) -> bool {
    let Some(field) = msg.get(2..4) else {
        return false;
    };
    let field = usize::from(u16::from_be_bytes([field[0], field[1]]));
    matches!(frame_len(msg), Ok(Some(padded)) if field <= msg.len() && msg.len() <= padded)
}

/// Sends the queued replies, each run of equal PPIDs with `sendmmsg`, as
/// many as the socket takes; the rest waits for the next writable event.
fn flush_sctp(a: &mut Assoc) -> bool {
    let fd = a.s.as_raw_fd();
    let (mut off, mut done) = (0usize, 0usize);
    let mut alive = true;
    while done < a.lens.len() {
        let ppid = a.ppids[done];
        let run = a.ppids[done..].iter().take_while(|p| **p == ppid).count();
        let sent = sctp::send_queue(fd, &a.out[off..], &a.lens[done..done + run], ppid);
        off += sent.bytes;
        done += sent.msgs;
        if sent.failed {
            alive = false;
        }
        if sent.failed || sent.msgs < run {
            break;
        }
    }
    a.out.drain(..off);
    a.lens.drain(..done);
    a.ppids.drain(..done);
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn listen_addresses_parse_with_or_without_a_transport() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(parse_listen("127.0.0.1:4000", None), Ok((Proto::Tcp, a)));
        assert_eq!(
            parse_listen("127.0.0.1:4000", Some("sctp")),
            Ok((Proto::Sctp, a))
        );
        assert_eq!(
            parse_listen("sctp:127.0.0.1:4000", Some("tcp")),
            Ok((Proto::Sctp, a))
        );
        assert_eq!(
            parse_listen("TCP:[::1]:9", None),
            Ok((Proto::Tcp, "[::1]:9".parse().unwrap()))
        );
        for bad in ["", "sctp:", "udp:1.2.3.4:5", "127.0.0.1"] {
            assert!(parse_listen(bad, None).is_err(), "{bad}");
        }
        assert!(parse_listen("127.0.0.1:1", Some("udp")).is_err());
    }

    #[test]
    fn asap_message_lengths_padded_or_not() {
        // Length 7 (RSPLIB: unpadded), sent with and without the padding.
        assert!(one_asap_message(&[3, 0, 0, 7, 1, 2, 3]));
        assert!(one_asap_message(&[3, 0, 0, 7, 1, 2, 3, 0]));
        assert!(one_asap_message(&[3, 0, 0, 8, 1, 2, 3, 4]));
        // Shorter or longer than the length field says; no header.
        assert!(!one_asap_message(&[3, 0, 0, 8, 1, 2, 3]));
        assert!(!one_asap_message(&[3, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert!(!one_asap_message(&[3, 0, 0, 2]));
        assert!(!one_asap_message(&[3, 0]));
    }

    #[test]
    fn sctp_without_kernel_sctp_is_one_line() {
        let Some(why) = sctp::unavailable_reason() else {
            eprintln!("this kernel has SCTP; sctp_echoes_messages_with_their_ppids covers it");
            return;
        };
        let e = EchoServer::start(Proto::Sctp, "127.0.0.1:0".parse().unwrap(), 1, &[])
            .expect_err("no SCTP here");
        let msg = e.to_string();
        assert_eq!(msg, why);
        assert!(!msg.contains('\n'), "{msg}");
    }

    /// Reads one whole message (joining pieces) with its PPID.
    fn recv_whole(fd: std::os::fd::RawFd) -> (Vec<u8>, Option<u32>) {
        let mut buf = vec![0u8; 4096];
        let mut whole = Vec::new();
        loop {
            let r = sctp::recv(fd, &mut buf).expect("a message within the read timeout");
            if r.notification {
                continue;
            }
            whole.extend_from_slice(&buf[..r.len]);
            if r.complete {
                return (whole, r.ppid);
            }
        }
    }

    #[test]
    fn sctp_echoes_messages_with_their_ppids() {
        if !rserpool_tests::lab::here(
            "load::echo::tests::sctp_echoes_messages_with_their_ppids",
            rserpool_tests::lab::Hosts(0),
        ) {
            return;
        }
        let srv = EchoServer::start(Proto::Sctp, "127.0.0.1:0".parse().unwrap(), 2, &[]).unwrap();
        assert_eq!(srv.target(), format!("sctp:{}", srv.addr));
        let c = sctp::connect(&[srv.addr], Some(Duration::from_secs(5))).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let fd = c.as_raw_fd();
        sctp::configure(fd, ASAP_PPID).unwrap();
        let small = [3u8, 0, 0, 8, 1, 2, 3, 4];
        let odd = [3u8, 0, 0, 7, 9, 9, 9];
        // Longer than the server's 8192-byte receive slots: arrives there in
        // pieces, must come back whole.
        let mut big = vec![0x5au8; 20_000];
        big[..4].copy_from_slice(&[5, 0, (20_000u16 >> 8) as u8, (20_000u16 & 0xff) as u8]);
        assert_eq!(sctp::send_batch(fd, &[&small, &odd], ASAP_PPID).unwrap(), 2);
        sctp::send_blocking(fd, &big, ASAP_PPID).unwrap();
        sctp::send(fd, &small, 99).unwrap();
        assert_eq!(recv_whole(fd), (small.to_vec(), Some(ASAP_PPID)));
        assert_eq!(recv_whole(fd), (odd.to_vec(), Some(ASAP_PPID)));
        assert_eq!(recv_whole(fd), (big.clone(), Some(ASAP_PPID)));
        assert_eq!(recv_whole(fd), (small.to_vec(), Some(99)), "PPID kept");
        // Many at once: all come back, in order.
        let many: Vec<[u8; 8]> = (0..200u8).map(|i| [3, 0, 0, 8, i, 0, 0, i]).collect();
        let refs: Vec<&[u8]> = many.iter().map(|m| &m[..]).collect();
        let mut sent = 0;
        while sent < refs.len() {
            match sctp::send_batch(fd, &refs[sent..], ASAP_PPID) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        for m in &many {
            assert_eq!(recv_whole(fd), (m.to_vec(), Some(ASAP_PPID)));
        }
        // Not ASAP framing (the length field says 12, the message has 8):
        // the association ends.
        sctp::send(fd, &[3, 0, 0, 12, 1, 2, 3, 4], ASAP_PPID).unwrap();
        let mut buf = [0u8; 64];
        let r = loop {
            let r = sctp::recv(fd, &mut buf);
            match r {
                Ok(r) if r.notification => continue,
                other => break other,
            }
        };
        assert!(
            matches!(r, Ok(sctp::Received { len: 0, .. }) | Err(_)),
            "closed: {r:?}"
        );
        srv.stop();
    }

    #[test]
    fn sends_whole_frames_back_and_keeps_partial_ones() {
        let srv = EchoServer::start(Proto::Tcp, "127.0.0.1:0".parse().unwrap(), 2, &[]).unwrap();
        let mut c = std::net::TcpStream::connect(srv.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // An ASAP header: type 3 (handle resolution), flags 0, length 8.
        let frame = [3u8, 0, 0, 8, 1, 2, 3, 4];
        c.write_all(&frame).unwrap();
        c.write_all(&frame[..5]).unwrap();
        let mut got = [0u8; 8];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, frame);
        c.write_all(&frame[5..]).unwrap();
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, frame);
        srv.stop();
    }
}
