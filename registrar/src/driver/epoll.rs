//! The default driver: one mio (epoll) loop per core.
//!
//! Per wake-up: accept everything pending; read every readable connection
//! until it would block (TCP: whole buffers, many frames per `read`; SCTP:
//! `recvmmsg` batches), handing each message to the core; run due timers;
//! deliver the core's outputs into per-connection send queues; send the mesh
//! batches; then write each connection with queued data once (`write`,
//! `sendmmsg`). A connection whose send queue passes the limit is not read
//! until it drains, so a slow reader cannot grow memory or stall others.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rserpool_net::sctp;
use rserpool_shard::Time;
use rserpool_wire::{TransportKind, consts::ASAP_PPID, frame_len};

use super::{BATCH, CoreSetup};
use crate::core::{ConnMeta, LocalOut};
use rserpool_shard::mesh::{make_assoc, slot_of};

const WAKE: Token = Token(0);
const FIRST_LISTENER: usize = 1;
const FIRST_CONN: usize = 1 << 16;
/// Bytes read from one connection per wake-up before others get their turn.
const READ_BUDGET: usize = 256 * 1024;
const HOUSEKEEPING: Duration = Duration::from_secs(1);

enum Sock {
    Tcp(TcpStream),
    Sctp(socket2::Socket),
}

struct Conn {
    meta: ConnMeta,
    sock: Sock,
    /// TCP: bytes read, not yet framed. SCTP: a message arriving in pieces.
    rbuf: Vec<u8>,
    /// Queued output: TCP bytes, or SCTP messages back to back.
    out: Vec<u8>,
    /// SCTP: lengths of the queued messages.
    out_lens: VecDeque<u32>,
    /// TCP: bytes of `out` already written.
    out_pos: usize,
    last_active: Instant,
    paused: bool,
    close: Option<Close>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Close {
    Graceful,
    Abort,
}

impl Conn {
    fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }
}

/// Replies produced while handling input, applied to connections afterwards
/// (the core may answer any connection, including the one being read).
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    items: Vec<(u64, u32, u32)>,
    aborts: Vec<u64>,
}

impl LocalOut for Pending {
    fn deliver(&mut self, assoc: u64, msg: &[u8]) {
        self.items
            .push((assoc, self.data.len() as u32, msg.len() as u32));
        self.data.extend_from_slice(msg);
    }

    fn abort(&mut self, assoc: u64) {
        self.aborts.push(assoc);
    }
}

struct Loop {
    setup: CoreSetup,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    open: usize,
    dirty: Vec<u32>,
    again: Vec<u32>,
    /// Slots marked for closing, reaped at the end of the wake-up.
    closing: Vec<u32>,
    pending: Pending,
    recv: sctp::RecvBatch,
    /// The one buffer every TCP read of this core goes into (zeroed once,
    /// at start): a connection keeps only the partial frame a read left,
    /// so an idle connection holds no read buffer and no read pays for
    /// zeroing one.
    tcp_buf: Vec<u8>,
    tcp: Vec<TcpListener>,
    messages: u64,
}

/// Bytes offered to one TCP read.
const TCP_READ: usize = 64 * 1024;

/// Protocol time of `at`: microseconds since the registrar started.
fn time_at(start: Instant, at: Instant) -> Time {
    Time(u64::try_from(at.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX))
}

/// Runs one core until shutdown. `poll` must be the one whose waker was
/// handed out for this core.
pub fn run(setup: CoreSetup, poll: Poll) -> io::Result<()> {
    let mut tcp = Vec::new();
    for l in &setup.tcp {
        tcp.push(TcpListener::from_std(l.try_clone()?));
    }
    let mut lp = Loop {
        poll,
        conns: Vec::new(),
        gens: Vec::new(),
        free: Vec::new(),
        open: 0,
        dirty: Vec::new(),
        again: Vec::new(),
        closing: Vec::new(),
        pending: Pending::default(),
        recv: sctp::RecvBatch::new(64, 4096),
        tcp_buf: vec![0; TCP_READ],
        tcp,
        messages: 0,
        setup,
    };
    lp.run()
}

/// The waker of a core's poll.
pub fn waker(poll: &Poll) -> io::Result<Waker> {
    Waker::new(poll.registry(), WAKE)
}

impl Loop {
    fn run(&mut self) -> io::Result<()> {
        for (i, l) in self.tcp.iter_mut().enumerate() {
            self.poll
                .registry()
                .register(l, Token(FIRST_LISTENER + i), Interest::READABLE)?;
        }
        let n_tcp = self.tcp.len();
        for (i, l) in self.setup.sctp.iter().enumerate() {
            self.poll.registry().register(
                &mut SourceFd(&l.as_raw_fd()),
                Token(FIRST_LISTENER + n_tcp + i),
                Interest::READABLE,
            )?;
        }
        let mut events = Events::with_capacity(1024);
        // The clock is read at most twice per wake-up (a system call in
        // some environments): after the wait, and after the work when there
        // was any (for the latency histogram); the wait's timeout is
        // computed from the latest of those.
        let mut clock = Instant::now();
        let mut next_housekeeping = clock + HOUSEKEEPING;
        while !self.setup.shutdown.load(Ordering::Relaxed) {
            let t = time_at(self.setup.start, clock);
            let mut timeout = next_housekeeping.saturating_duration_since(clock);
            if let Some(due) = self.setup.core.poll_timeout() {
                timeout = timeout.min(Duration::from_micros(due.0.saturating_sub(t.0)));
            }
            if !self.again.is_empty() {
                timeout = Duration::ZERO;
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.setup.metrics.wakeups.inc();
            let woke = Instant::now();
            clock = woke;
            let t = time_at(self.setup.start, woke);
            self.messages = 0;
            for ev in &events {
                match ev.token() {
                    WAKE => self.drain_inbox(t),
                    Token(i) if i < FIRST_CONN => self.accept(i - FIRST_LISTENER),
                    Token(i) => {
                        let slot = (i - FIRST_CONN) as u32;
                        let closing = ev.is_read_closed() || ev.is_error();
                        if ev.is_readable() || closing {
                            self.read(slot, t, woke, closing);
                        }
                        if ev.is_writable() {
                            self.dirty.push(slot);
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.again) {
                self.read(slot, t, woke, true);
            }
            // The waker may have been missed if a batch arrived meanwhile.
            self.drain_inbox(t);
            if self.setup.core.poll_timeout().is_some_and(|d| d <= t) {
                self.setup.core.handle_timeout(t, &mut self.pending);
                self.apply_pending();
            }
            if woke >= next_housekeeping {
                self.housekeeping(t, woke);
                next_housekeeping = woke + HOUSEKEEPING;
            }
            self.send_batches();
            self.flush();
            self.reap(t);
            // Removals of the PEs of connections reaped just now.
            self.setup.core.flush_replication();
            if self.messages > 0 {
                clock = Instant::now();
                let ns = u64::try_from(clock.duration_since(woke).as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1);
                if let Ok(mut h) = self.setup.metrics.latency.lock() {
                    let _ = h.record_n(ns, self.messages);
                }
            }
        }
        self.shutdown();
        Ok(())
    }

    fn drain_inbox(&mut self, t: Time) {
        while let Ok(batch) = self.setup.inbox.try_recv() {
            self.setup.core.handle_batch(t, &batch, &mut self.pending);
            self.apply_pending();
        }
    }

    fn accept(&mut self, listener: usize) {
        loop {
            let n_tcp = self.tcp.len();
            let accepted = if listener < n_tcp {
                match self.tcp[listener].accept() {
                    Ok((s, peer)) => {
                        s.set_nodelay(true).ok();
                        Some((
                            Sock::Tcp(s),
                            TransportKind::Tcp,
                            vec![peer.ip()],
                            peer.port(),
                        ))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept (TCP)");
                        None
                    }
                }
            } else {
                match self.setup.sctp[listener - n_tcp].accept() {
                    Ok((s, peer)) => {
                        let fd = s.as_raw_fd();
                        let ok = s
                            .set_nonblocking(true)
                            .and_then(|()| sctp::configure(fd, ASAP_PPID));
                        let port = peer.as_socket().map_or(0, |a| a.port());
                        let mut addrs: Vec<IpAddr> = sctp::peer_addrs(fd)
                            .unwrap_or_default()
                            .iter()
                            .map(SocketAddr::ip)
                            .collect();
                        if addrs.is_empty() {
                            addrs.extend(peer.as_socket().map(|a| a.ip()));
                        }
                        match ok {
                            Ok(()) => Some((Sock::Sctp(s), TransportKind::Sctp, addrs, port)),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot configure SCTP association");
                                continue;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept (SCTP)");
                        None
                    }
                }
            };
            let Some((sock, transport, addrs, port)) = accepted else {
                return;
            };
            if self.open >= self.setup.settings.max_connections {
                self.setup.metrics.refused.inc();
                drop(sock);
                continue;
            }
            self.add(sock, transport, addrs, port);
        }
    }

    fn add(&mut self, mut sock: Sock, transport: TransportKind, addrs: Vec<IpAddr>, port: u16) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                (self.conns.len() - 1) as u32
            }
        };
        self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1) & 0x00ff_ffff;
        let id = make_assoc(self.setup.index, self.gens[slot as usize], slot);
        let token = Token(FIRST_CONN + slot as usize);
        let interest = Interest::READABLE | Interest::WRITABLE;
        let r = match &mut sock {
            Sock::Tcp(s) => self.poll.registry().register(s, token, interest),
            Sock::Sctp(s) => {
                self.poll
                    .registry()
                    .register(&mut SourceFd(&s.as_raw_fd()), token, interest)
            }
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot register connection");
            self.free.push(slot);
            return;
        }
        self.conns[slot as usize] = Some(Conn {
            meta: ConnMeta::new(id, transport, addrs, port),
            sock,
            rbuf: Vec::new(),
            out: Vec::new(),
            out_lens: VecDeque::new(),
            out_pos: 0,
            last_active: Instant::now(),
            paused: false,
            close: None,
        });
        self.open += 1;
        self.setup.metrics.accepted.inc();
        self.setup.metrics.open.add(1);
        // Data may already be waiting (edge-triggered: read once now).
        self.again.push(slot);
    }

    /// Reads a connection. `drain` reads until the socket would block;
    /// otherwise a short read ends it: the socket was empty then, and any
    /// later arrival raises a new (edge-triggered) event, so the read that
    /// would only say "would block" is saved. Hang-ups and errors always
    /// drain, so that the error a short read may have left is collected.
    fn read(&mut self, slot: u32, t: Time, now: Instant, drain: bool) {
        let Some(mut conn) = self.conns.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        if conn.paused || conn.close.is_some() {
            self.conns[slot as usize] = Some(conn);
            return;
        }
        conn.last_active = now;
        let more = match conn.sock {
            Sock::Tcp(_) => self.read_tcp(&mut conn, t, drain),
            Sock::Sctp(_) => self.read_sctp(&mut conn, t, drain),
        };
        if more {
            self.again.push(slot);
        }
        if conn.close.is_some() {
            self.closing.push(slot);
        }
        self.conns[slot as usize] = Some(conn);
        self.apply_pending();
    }

    /// Reads a TCP connection; returns whether its budget ran out first.
    fn read_tcp(&mut self, conn: &mut Conn, t: Time, drain: bool) -> bool {
        let mut buf = std::mem::take(&mut self.tcp_buf);
        let more = self.read_tcp_into(&mut buf, conn, t, drain);
        self.tcp_buf = buf;
        more
    }

    /// [`Loop::read_tcp`] with the core's read buffer: the partial frame
    /// the connection kept goes first, the read appends to it, every
    /// complete frame is handed over from `buf`, and what is left of a
    /// partial frame goes back to the connection.
    fn read_tcp_into(&mut self, buf: &mut Vec<u8>, conn: &mut Conn, t: Time, drain: bool) -> bool {
        let Sock::Tcp(stream) = &mut conn.sock else {
            return false;
        };
        let max = self.setup.settings.max_message_size;
        let mut budget = READ_BUDGET;
        loop {
            let len = conn.rbuf.len();
            if buf.len() < len + TCP_READ {
                // Only with a large partial frame (up to the message limit).
                buf.resize(len + TCP_READ, 0);
            }
            buf[..len].copy_from_slice(&conn.rbuf);
            let offered = buf.len() - len;
            let n = match stream.read(&mut buf[len..]) {
                Ok(0) => {
                    conn.close = Some(Close::Graceful);
                    return false;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.close = Some(Close::Abort);
                    return false;
                }
            };
            let end = len + n;
            conn.rbuf.clear();
            // Hand over every complete frame, a batch at a time (so that
            // the core can prefetch for the ones ahead).
            let mut pos = 0;
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            let mut n_frames = 0;
            let mut stop = None;
            loop {
                match frame_len(&buf[pos..end]) {
                    Ok(Some(f)) if f > max => {
                        tracing::info!(
                            conn = conn.meta.id,
                            len = f,
                            "message over the size limit; closing"
                        );
                        stop = Some(Close::Graceful);
                    }
                    Ok(Some(f)) if end - pos >= f => {
                        frames[n_frames] = &buf[pos..pos + f];
                        n_frames += 1;
                        pos += f;
                        if n_frames < BATCH {
                            continue;
                        }
                    }
                    Ok(_) => {}
                    // Answers already queued still go out, then the
                    // connection closes: the stream cannot be resynced.
                    Err(_) => stop = Some(Close::Graceful),
                }
                self.messages += n_frames as u64;
                self.setup.core.handle_asap_many(
                    t,
                    &mut conn.meta,
                    &frames[..n_frames],
                    &mut self.pending,
                );
                if n_frames < BATCH || stop.is_some() {
                    break;
                }
                n_frames = 0;
            }
            if stop.is_some() {
                conn.close = stop;
                return false;
            }
            if pos < end {
                conn.rbuf.extend_from_slice(&buf[pos..end]);
            } else if conn.rbuf.capacity() > 4096 {
                // A large partial frame was completed: give its memory back.
                conn.rbuf = Vec::new();
            }
            if n < offered && !drain {
                return false;
            }
            budget = budget.saturating_sub(n);
            if budget == 0 {
                return true;
            }
        }
    }

    /// Reads an SCTP association; returns whether its budget ran out first.
    fn read_sctp(&mut self, conn: &mut Conn, t: Time, drain: bool) -> bool {
        let Sock::Sctp(sock) = &conn.sock else {
            return false;
        };
        let fd = sock.as_raw_fd();
        let max = self.setup.settings.max_message_size;
        for _ in 0..8 {
            let got = match self.recv.recv(fd) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.close = Some(Close::Abort);
                    return false;
                }
            };
            // Whole messages go to the core a batch at a time (so that it
            // can prefetch for the ones ahead); anything else first hands
            // over the batch so far, to keep the order.
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            let mut n = 0;
            let mut stop = None;
            for (data, info) in self.recv.iter() {
                if info.notification {
                    continue;
                }
                let whole = info.complete
                    && info.len != 0
                    && conn.rbuf.is_empty()
                    && info.ppid.is_none_or(|p| p == ASAP_PPID);
                if whole && n < BATCH {
                    frames[n] = data;
                    n += 1;
                    continue;
                }
                self.messages += n as u64;
                self.setup.core.handle_asap_many(
                    t,
                    &mut conn.meta,
                    &frames[..n],
                    &mut self.pending,
                );
                n = 0;
                if whole {
                    frames[0] = data;
                    n = 1;
                    continue;
                }
                if info.len == 0 && info.complete {
                    stop = Some(Close::Graceful);
                    break;
                }
                if info.ppid.is_some_and(|p| p != ASAP_PPID) {
                    self.setup.metrics.wrong_ppid.inc();
                    conn.rbuf.clear();
                    continue;
                }
                conn.rbuf.extend_from_slice(data);
                if conn.rbuf.len() > max {
                    stop = Some(Close::Abort);
                    break;
                }
                if !info.complete {
                    continue;
                }
                self.messages += 1;
                let msg = std::mem::take(&mut conn.rbuf);
                self.setup
                    .core
                    .handle_asap(t, &mut conn.meta, &msg, &mut self.pending);
                conn.rbuf = msg;
                conn.rbuf.clear();
            }
            self.messages += n as u64;
            self.setup
                .core
                .handle_asap_many(t, &mut conn.meta, &frames[..n], &mut self.pending);
            if stop.is_some() {
                conn.close = stop;
                return false;
            }
            if got < self.recv.slots() && !drain {
                return false;
            }
        }
        true
    }

    /// Moves the core's outputs into connection send queues.
    fn apply_pending(&mut self) {
        let p = &mut self.pending;
        for &(assoc, start, len) in &p.items {
            let slot = slot_of(assoc);
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.meta.id != assoc {
                continue;
            }
            let msg = &p.data[start as usize..(start + len) as usize];
            conn.out.extend_from_slice(msg);
            if matches!(conn.sock, Sock::Sctp(_)) {
                conn.out_lens.push_back(len);
            }
            self.dirty.push(slot as u32);
        }
        for &assoc in &p.aborts {
            if let Some(Some(conn)) = self.conns.get_mut(slot_of(assoc)) {
                if conn.meta.id == assoc {
                    conn.close = Some(Close::Abort);
                    self.closing.push(slot_of(assoc) as u32);
                }
            }
        }
        p.items.clear();
        p.data.clear();
        p.aborts.clear();
    }

    fn send_batches(&mut self) {
        self.setup.core.flush_replication();
        let batches: Vec<(usize, Vec<u8>)> = self.setup.core.take_batches().collect();
        for (dest, buf) in batches {
            let Some(tx) = self.setup.outboxes.get(dest) else {
                continue;
            };
            // A bounded wait rather than unbounded memory; two cores can
            // never wait on each other for long.
            match tx.send_timeout(buf, Duration::from_millis(100)) {
                Ok(()) => {
                    self.setup.metrics.batches_sent.inc();
                    if let Some(w) = self.setup.wakers.get(dest) {
                        w();
                    }
                }
                Err(_) => {
                    self.setup.metrics.batches_dropped.inc();
                    tracing::error!(dest, "mesh channel full for 100 ms: batch dropped");
                }
            }
        }
    }

    fn flush(&mut self) {
        let limit = self.setup.settings.send_queue_limit;
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for slot in dirty.drain(..) {
            let Some(Some(conn)) = self.conns.get_mut(slot as usize) else {
                continue;
            };
            if conn.close == Some(Close::Abort) {
                continue;
            }
            match &mut conn.sock {
                Sock::Tcp(s) => {
                    while conn.out_pos < conn.out.len() {
                        match s.write(&conn.out[conn.out_pos..]) {
                            Ok(n) => conn.out_pos += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                conn.close = Some(Close::Abort);
                                self.closing.push(slot);
                                break;
                            }
                        }
                    }
                    if conn.out_pos == conn.out.len() {
                        conn.out.clear();
                        conn.out_pos = 0;
                    }
                }
                Sock::Sctp(s) => {
                    let fd = s.as_raw_fd();
                    while !conn.out_lens.is_empty() {
                        let (lens, _) = conn.out_lens.as_slices();
                        let sent = sctp::send_queue(fd, &conn.out[conn.out_pos..], lens, ASAP_PPID);
                        let all = sent.msgs == lens.len();
                        conn.out_lens.drain(..sent.msgs);
                        conn.out_pos += sent.bytes;
                        if sent.failed {
                            conn.close = Some(Close::Abort);
                            self.closing.push(slot);
                        }
                        if sent.failed || !all {
                            break;
                        }
                    }
                    if conn.out_lens.is_empty() {
                        conn.out.clear();
                        conn.out_pos = 0;
                    }
                }
            }
            // Backpressure: stop reading a connection that does not read.
            let queued = conn.queued();
            if queued > limit {
                if !conn.paused {
                    self.setup.metrics.paused.inc();
                }
                conn.paused = true;
            } else if conn.paused && queued <= limit / 2 {
                conn.paused = false;
                self.again.push(slot);
            }
        }
        self.dirty = dirty;
    }

    fn housekeeping(&mut self, t: Time, now: Instant) {
        if let Some(idle) = self.setup.settings.autoclose {
            let cutoff = now.checked_sub(idle).unwrap_or(self.setup.start);
            for (slot, conn) in self.conns.iter_mut().enumerate() {
                let Some(conn) = conn else { continue };
                if !conn.meta.registered && conn.last_active < cutoff && conn.close.is_none() {
                    conn.close = Some(Close::Graceful);
                    self.closing.push(slot as u32);
                }
            }
        }
        if let Some(s) = self.setup.core.shard() {
            self.setup.metrics.pools.set(s.pool_count() as i64);
            self.setup.metrics.pes.set(s.pe_count() as i64);
        }
        self.reap(t);
    }

    /// Closes connections marked for closing.
    fn reap(&mut self, t: Time) {
        while let Some(slot) = self.closing.pop() {
            let slot = slot as usize;
            let closing = self
                .conns
                .get(slot)
                .and_then(|c| c.as_ref())
                .and_then(|c| c.close);
            let Some(how) = closing else { continue };
            let Some(mut conn) = self.conns[slot].take() else {
                continue;
            };
            match &mut conn.sock {
                Sock::Tcp(s) => {
                    let _ = self.poll.registry().deregister(s);
                    if how == Close::Abort {
                        let _ = socket2::SockRef::from(&*s).set_linger(Some(Duration::ZERO));
                    }
                }
                Sock::Sctp(s) => {
                    let _ = self
                        .poll
                        .registry()
                        .deregister(&mut SourceFd(&s.as_raw_fd()));
                    if how == Close::Abort {
                        // SO_LINGER 0: close sends an SCTP ABORT.
                        let _ = s.set_linger(Some(Duration::ZERO));
                    }
                }
            }
            self.open -= 1;
            self.setup.metrics.open.add(-1);
            self.setup.metrics.closed.inc();
            self.setup.core.connection_closed(
                t,
                conn.meta.id,
                conn.meta.registered,
                &mut self.pending,
            );
            self.free.push(slot as u32);
            drop(conn);
            self.apply_pending();
        }
    }

    fn shutdown(&mut self) {
        self.flush();
        for (slot, conn) in self.conns.iter_mut().enumerate() {
            if let Some(conn) = conn {
                conn.close = Some(Close::Graceful);
                self.closing.push(slot as u32);
            }
        }
        let t = time_at(self.setup.start, Instant::now());
        self.reap(t);
        self.send_batches();
    }
}
