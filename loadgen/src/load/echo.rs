//! The floor: a trivial echo server over the same transport (TCP) and
//! framing (ASAP's own message length) that sends every complete ASAP frame
//! back as it came. One mio loop per thread, each with its own listening
//! socket on the same port (SO_REUSEPORT), as the registrar does.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rserpool_wire::frame_len;

/// A running echo server.
#[derive(Debug)]
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl EchoServer {
    /// Starts `threads` loops on `listen` (port 0: one the kernel picks),
    /// pinned to `cores` in turn when given.
    pub fn start(listen: SocketAddr, threads: usize, cores: &[usize]) -> io::Result<Self> {
        let first = bind(listen)?;
        let addr = first.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut listeners = vec![first];
        for _ in 1..threads.max(1) {
            listeners.push(bind(addr)?);
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
                        if let Err(e) = serve(l, &stop) {
                            eprintln!("loadgen echo: thread {i}: {e}");
                        }
                    })?,
            );
        }
        Ok(Self {
            addr,
            stop,
            threads: handles,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn sends_whole_frames_back_and_keeps_partial_ones() {
        let srv = EchoServer::start("127.0.0.1:0".parse().unwrap(), 2, &[]).unwrap();
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
