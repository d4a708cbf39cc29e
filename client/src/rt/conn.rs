//! Blocking connections for the runtime: SCTP (one-to-one, PPIDs through
//! rserpool-net) and TCP (framed, see [`crate::framing`]).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::action::ASAP_PPID;
use crate::framing::{Deframer, frame};
use crate::types::Proto;

/// What runs on a connection, which decides the TCP framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// ASAP to or from a registrar.
    Asap,
    /// A PU-PE session (data plus control channel).
    Session,
}

/// One end of a connection (SCTP or TCP).
#[derive(Debug)]
pub(crate) enum Stream {
    Sctp(Socket),
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Sctp(s) => Self::Sctp(s.try_clone()?),
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
        })
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Sctp(s) => s.set_read_timeout(t),
            Self::Tcp(s) => s.set_read_timeout(t),
        }
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Sctp(s) => s.set_write_timeout(t),
            Self::Tcp(s) => s.set_write_timeout(t),
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Self::Sctp(s) => s.shutdown(Shutdown::Both),
            Self::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Sctp(s) => s.peer_addr().ok()?.as_socket(),
            Self::Tcp(s) => s.peer_addr().ok(),
        }
    }
}

/// Connects to the first of `addrs` that answers within `timeout` each.
pub(crate) fn connect(proto: Proto, addrs: &[SocketAddr], timeout: Duration) -> io::Result<Stream> {
    match proto {
        Proto::Sctp => {
            let s = rserpool_net::sctp::connect(addrs, Some(timeout))?;
            rserpool_net::sctp::configure(s.as_raw_fd(), ASAP_PPID)?;
            Ok(Stream::Sctp(s))
        }
        Proto::Tcp => {
            let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
            for a in addrs {
                match TcpStream::connect_timeout(a, timeout) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// A listening socket (SCTP one-to-one or TCP), blocking; accepts honour
/// the read timeout.
pub(crate) fn listen(proto: Proto, local: SocketAddr) -> io::Result<Socket> {
    let s = match proto {
        Proto::Sctp => {
            let s = rserpool_net::sctp::listen(&[local], false, 128)?;
            s.set_nonblocking(false)?;
            s
        }
        Proto::Tcp => {
            let s = Socket::new(
                Domain::for_address(local),
                Type::STREAM,
                Some(Protocol::TCP),
            )?;
            s.set_reuse_address(true)?;
            if local.is_ipv6() {
                s.set_only_v6(false).ok();
            }
            s.bind(&SockAddr::from(local))?;
            s.listen(128)?;
            s
        }
    };
    Ok(s)
}

/// Wraps an accepted socket.
pub(crate) fn accepted(proto: Proto, s: Socket) -> io::Result<Stream> {
    match proto {
        Proto::Sctp => {
            rserpool_net::sctp::configure(s.as_raw_fd(), ASAP_PPID)?;
            Ok(Stream::Sctp(s))
        }
        Proto::Tcp => {
            let t = TcpStream::from(s);
            t.set_nodelay(true)?;
            Ok(Stream::Tcp(t))
        }
    }
}

/// Sends one message: SCTP with `ppid`; TCP raw (ASAP) or framed (session).
pub(crate) fn send(stream: &Stream, use_: Use, ppid: u32, data: &[u8]) -> io::Result<()> {
    match stream {
        Stream::Sctp(s) => {
            if peer_closed(s)? {
                return Err(closed_by_peer());
            }
            rserpool_net::sctp::send_blocking(s.as_raw_fd(), data, ppid).map(drop)
        }
        Stream::Tcp(s) => {
            if peer_closed(s)? {
                // A write would still succeed (the kernel takes it and the
                // peer answers with a reset), and the message would be lost
                // although it was never delivered: fail it, so that the
                // caller keeps it (a session re-sends it to the next PE).
                return Err(closed_by_peer());
            }
            let mut w: &TcpStream = s;
            match use_ {
                Use::Asap => w.write_all(data),
                Use::Session => w.write_all(&frame(ppid, data)),
            }
        }
    }
}

fn closed_by_peer() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the peer has closed the connection",
    )
}

/// Whether the peer of a connection has closed it (a TCP FIN, an SCTP
/// SHUTDOWN: the end of the stream is the next thing to read). Peeks
/// without blocking and without taking anything, so the reader thread
/// still sees whatever comes before the end. None of our protocols
/// half-closes: a peer that closed will not read what we send.
fn peer_closed(s: &impl std::os::fd::AsFd) -> io::Result<bool> {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    match socket2::SockRef::from(s).recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    {
        Ok(0) => Ok(true),
        Ok(_) => Ok(false),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads whole messages from a stream.
#[derive(Debug)]
pub(crate) struct Reader {
    stream: Stream,
    deframer: Deframer,
    buf: Vec<u8>,
    partial: Vec<u8>,
}

/// What one read gave.
#[derive(Debug)]
pub(crate) enum Got {
    /// A complete message and its PPID.
    Message(u32, Vec<u8>),
    /// The peer closed in order.
    Eof,
    /// Nothing within the read timeout.
    Idle,
}

impl Reader {
    pub(crate) fn new(stream: Stream, use_: Use) -> Self {
        Self {
            stream,
            deframer: match use_ {
                Use::Asap => Deframer::asap(),
                Use::Session => Deframer::session(),
            },
            buf: vec![0; 65536],
            partial: Vec::new(),
        }
    }

    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The next message; errors are broken connections.
    pub(crate) fn read(&mut self) -> io::Result<Got> {
        loop {
            match &self.stream {
                Stream::Sctp(s) => {
                    let r = match rserpool_net::sctp::recv(s.as_raw_fd(), &mut self.buf) {
                        Ok(r) => r,
                        Err(e) if is_timeout(&e) => return Ok(Got::Idle),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    if r.len == 0 && r.complete && self.partial.is_empty() {
                        return Ok(Got::Eof);
                    }
                    if r.notification {
                        continue;
                    }
                    self.partial.extend_from_slice(&self.buf[..r.len]);
                    if r.complete {
                        let m = std::mem::take(&mut self.partial);
                        return Ok(Got::Message(r.ppid.unwrap_or(0), m));
                    }
                }
                Stream::Tcp(s) => {
                    match self.deframer.next_message() {
                        Ok(Some((ppid, m))) => return Ok(Got::Message(ppid, m)),
                        Ok(None) => {}
                        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    }
                    let mut r: &TcpStream = s;
                    match r.read(&mut self.buf) {
                        Ok(0) => return Ok(Got::Eof),
                        Ok(n) => self.deframer.push(&self.buf[..n]),
                        Err(e) if is_timeout(&e) => return Ok(Got::Idle),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_tcp_send_to_a_peer_that_closed_fails_instead_of_vanishing() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = connect(
            Proto::Tcp,
            &[l.local_addr().unwrap()],
            Duration::from_secs(5),
        )
        .unwrap();
        let (b, _) = l.accept().unwrap();
        send(&a, Use::Session, 0, b"while open").unwrap();
        let mut r = Reader::new(Stream::Tcp(b.try_clone().unwrap()), Use::Session);
        assert!(matches!(r.read().unwrap(), Got::Message(0, m) if m == b"while open"));
        drop(r);
        drop(b);
        // Wait for the FIN (without sending: a send would draw a reset,
        // which makes later sends fail anyway).
        let Stream::Tcp(t) = &a else { unreachable!() };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !peer_closed(t).unwrap() {
            assert!(std::time::Instant::now() < deadline, "no FIN seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The very first send after it fails (a plain write would succeed
        // and the message would be lost).
        let err = send(&a, Use::Session, 0, b"after close").unwrap_err();
        assert!(matches!(err.kind(), io::ErrorKind::BrokenPipe));
    }
}
