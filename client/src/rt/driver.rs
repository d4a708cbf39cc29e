//! The runtime's event loop: one thread owns a sans-IO core and performs its
//! actions; helper threads connect, read connections and hear announces, and
//! feed what they get back through one channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use crate::action::{ASAP_PPID, Action};
use crate::rt::conn::{self, Got, Reader, Stream, Use};
use crate::time::Time;
use crate::types::ConnId;

/// How often blocked reads look at their stop flag.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// What reaches the driver thread.
pub(crate) enum Input<C> {
    Cmd(C),
    Connected {
        conn: ConnId,
        writer: Stream,
    },
    ConnectFailed {
        conn: ConnId,
    },
    Message {
        conn: ConnId,
        ppid: u32,
        data: Vec<u8>,
    },
    Closed {
        conn: ConnId,
        abnormal: bool,
    },
    Announce {
        from: SocketAddr,
        data: Vec<u8>,
    },
}

/// A core plus the bookkeeping of its blocking API.
pub(crate) trait Role: Send + 'static {
    type Cmd: Send + 'static;
    fn poll_action(&mut self) -> Option<Action>;
    fn poll_timeout(&self) -> Option<Time>;
    fn handle_timeout(&mut self, now: Time);
    fn connected(&mut self, now: Time, conn: ConnId);
    fn connect_failed(&mut self, now: Time, conn: ConnId);
    fn closed(&mut self, now: Time, conn: ConnId, abnormal: bool);
    fn message(&mut self, now: Time, conn: ConnId, ppid: u32, data: &[u8]);
    fn send_failed(&mut self, now: Time, conn: ConnId, ppid: u32, data: Vec<u8>);
    fn announce(&mut self, now: Time, from: SocketAddr, data: &[u8]);
    /// Handles a command; `false` stops the driver.
    fn command(&mut self, now: Time, cmd: Self::Cmd) -> bool;
    /// Hands the core's events to whoever waits for them.
    fn dispatch(&mut self, now: Time);
}

/// Timeouts the driver applies to sockets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoSettings {
    pub(crate) registrar_connect: Duration,
    pub(crate) pe_connect: Duration,
    pub(crate) send: Duration,
}

struct Conn {
    writer: Option<Stream>,
    use_: Use,
    stop: Arc<AtomicBool>,
}

/// A running driver: its command channel and thread.
pub(crate) struct Handle<C> {
    pub(crate) tx: Sender<Input<C>>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl<C> std::fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("driver::Handle")
    }
}

impl<C: Send + 'static> Handle<C> {
    pub(crate) fn send(&self, cmd: C) -> bool {
        self.tx.send(Input::Cmd(cmd)).is_ok()
    }

    /// Waits for the driver thread to end (after a stopping command).
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts a driver thread for `role`.
pub(crate) fn spawn<R: Role>(
    name: &str,
    role: R,
    io: IoSettings,
    announce_group: Option<SocketAddr>,
) -> std::io::Result<Handle<R::Cmd>> {
    let (tx, rx) = unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(group) = announce_group {
        match announce_socket(group) {
            Ok(sock) => {
                let tx = tx.clone();
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-announce"))
                    .spawn(move || announce_loop(sock, tx, stop))?;
            }
            Err(e) => tracing::warn!(%group, error = %e, "cannot listen for ASAP announces"),
        }
    }
    let mut d = Driver {
        role,
        rx,
        tx: tx.clone(),
        conns: HashMap::new(),
        start: Instant::now(),
        io,
        stop: stop.clone(),
    };
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || d.run())?;
    Ok(Handle {
        tx,
        thread: Some(thread),
        stop,
    })
}

struct Driver<R: Role> {
    role: R,
    rx: Receiver<Input<R::Cmd>>,
    tx: Sender<Input<R::Cmd>>,
    conns: HashMap<ConnId, Conn>,
    start: Instant,
    io: IoSettings,
    stop: Arc<AtomicBool>,
}

impl<R: Role> Driver<R> {
    fn now(&self) -> Time {
        Time(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn run(&mut self) {
        let mut running = true;
        while running {
            let now = self.now();
            if self.role.poll_timeout().is_some_and(|t| t <= now) {
                self.role.handle_timeout(now);
            }
            self.perform(now);
            self.role.dispatch(now);
            let now = self.now();
            let wait = self
                .role
                .poll_timeout()
                .map_or(Duration::from_secs(60), |t| t.saturating_since(now))
                .min(Duration::from_secs(60));
            match self.rx.recv_timeout(wait) {
                Ok(input) => {
                    let now = self.now();
                    running = self.input(now, input);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => running = false,
            }
        }
        let now = self.now();
        self.perform(now);
        self.role.dispatch(now);
        for (_, c) in self.conns.drain() {
            c.stop.store(true, Ordering::Relaxed);
            if let Some(w) = c.writer {
                w.shutdown();
            }
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn input(&mut self, now: Time, input: Input<R::Cmd>) -> bool {
        match input {
            Input::Cmd(c) => return self.role.command(now, c),
            Input::Connected { conn, writer } => match self.conns.get_mut(&conn) {
                Some(c) => {
                    c.writer = Some(writer);
                    self.role.connected(now, conn);
                }
                None => writer.shutdown(),
            },
            Input::ConnectFailed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.role.connect_failed(now, conn);
                }
            }
            Input::Message { conn, ppid, data } => {
                if let Some(c) = self.conns.get(&conn) {
                    if c.use_ == Use::Asap && ppid != ASAP_PPID {
                        tracing::debug!(ppid, "non-ASAP message from a registrar dropped");
                    } else {
                        self.role.message(now, conn, ppid, &data);
                    }
                }
            }
            Input::Closed { conn, abnormal } => {
                if self.conns.remove(&conn).is_some() {
                    self.role.closed(now, conn, abnormal);
                }
            }
            Input::Announce { from, data } => self.role.announce(now, from, &data),
        }
        true
    }

    fn perform(&mut self, now: Time) {
        while let Some(a) = self.role.poll_action() {
            match a {
                Action::ConnectRegistrar { conn, to } => {
                    self.connect(
                        conn,
                        to.proto,
                        to.addrs,
                        Use::Asap,
                        self.io.registrar_connect,
                    );
                }
                Action::ConnectPe {
                    conn, proto, pe, ..
                } => {
                    self.connect(
                        conn,
                        proto,
                        pe.socket_addrs(),
                        Use::Session,
                        self.io.pe_connect,
                    );
                }
                Action::Send { conn, ppid, data } => {
                    let result = match self.conns.get(&conn) {
                        Some(Conn {
                            writer: Some(w),
                            use_,
                            ..
                        }) => conn::send(w, *use_, ppid, &data),
                        _ => Err(std::io::Error::new(
                            std::io::ErrorKind::NotConnected,
                            "no such connection",
                        )),
                    };
                    if let Err(e) = result {
                        tracing::debug!(conn = conn.0, error = %e, "send failed");
                        if let Some(c) = self.conns.remove(&conn) {
                            c.stop.store(true, Ordering::Relaxed);
                            if let Some(w) = c.writer {
                                w.shutdown();
                            }
                            self.role.send_failed(now, conn, ppid, data);
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        c.stop.store(true, Ordering::Relaxed);
                        if let Some(w) = c.writer {
                            w.shutdown();
                        }
                    }
                }
            }
        }
    }

    fn connect(
        &mut self,
        conn: ConnId,
        proto: crate::Proto,
        addrs: Vec<SocketAddr>,
        use_: Use,
        timeout: Duration,
    ) {
        let stop = Arc::new(AtomicBool::new(false));
        self.conns.insert(
            conn,
            Conn {
                writer: None,
                use_,
                stop: stop.clone(),
            },
        );
        let tx = self.tx.clone();
        let send_timeout = self.io.send;
        let spawned = std::thread::Builder::new()
            .name(format!("rserpool-conn-{}", conn.0))
            .spawn(move || {
                let stream = match conn::connect(proto, &addrs, timeout) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(conn = conn.0, ?addrs, error = %e, "connect failed");
                        let _ = tx.send(Input::ConnectFailed { conn });
                        return;
                    }
                };
                let ready = stream.set_read_timeout(Some(POLL)).and_then(|()| {
                    stream.set_write_timeout(Some(send_timeout))?;
                    stream.try_clone()
                });
                let Ok(writer) = ready else {
                    let _ = tx.send(Input::ConnectFailed { conn });
                    return;
                };
                if tx.send(Input::Connected { conn, writer }).is_err() {
                    return;
                }
                read_loop(tx, conn, Reader::new(stream, use_), stop);
            });
        if spawned.is_err() {
            self.conns.remove(&conn);
            let _ = self.tx.send(Input::ConnectFailed { conn });
        }
    }
}

fn read_loop<C>(tx: Sender<Input<C>>, conn: ConnId, mut r: Reader, stop: Arc<AtomicBool>) {
    loop {
        if stop.load(Ordering::Relaxed) {
            r.stream().shutdown();
            return;
        }
        let input = match r.read() {
            Ok(Got::Idle) => continue,
            Ok(Got::Message(ppid, data)) => Input::Message { conn, ppid, data },
            Ok(Got::Eof) => Input::Closed {
                conn,
                abnormal: false,
            },
            Err(e) => {
                tracing::debug!(conn = conn.0, error = %e, "connection broke");
                Input::Closed {
                    conn,
                    abnormal: true,
                }
            }
        };
        let last = matches!(input, Input::Closed { .. });
        if tx.send(input).is_err() || last {
            return;
        }
    }
}

/// A UDP socket on the announce group, joined on every multicast-capable
/// IPv4 interface (as RSPLIB does), or on the kernel's choice if none.
fn announce_socket(group: SocketAddr) -> std::io::Result<UdpSocket> {
    let ifaces = rserpool_net::mcast::ipv4_multicast_interfaces();
    let sock = rserpool_net::mcast::listener(group, ifaces.first().copied())?;
    if let IpAddr::V4(g) = group.ip() {
        for i in ifaces.iter().skip(1) {
            if let Err(e) = sock.join_multicast_v4(&g, i) {
                tracing::debug!(interface = %i, error = %e, "cannot join the announce group");
            }
        }
    }
    sock.set_nonblocking(false)?;
    let sock = UdpSocket::from(sock);
    sock.set_read_timeout(Some(POLL))?;
    Ok(sock)
}

fn announce_loop<C>(sock: UdpSocket, tx: Sender<Input<C>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let data = buf[..n].to_vec();
                if tx.send(Input::Announce { from, data }).is_err() {
                    return;
                }
            }
            Err(e) if conn::is_timeout(&e) => {}
            Err(e) => {
                tracing::debug!(error = %e, "announce socket failed");
                return;
            }
        }
    }
}
