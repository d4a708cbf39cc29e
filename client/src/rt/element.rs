//! The blocking pool element: registers in the background and hands out
//! sessions from pool users.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam::channel::{Sender, bounded};
use rserpool_wire::{Policy, ServerId, TransportUse};
use socket2::Socket;

use crate::action::{ASAP_PPID, Action};
use crate::channel::RequestError;
use crate::config::{LifeUnit, PeSpec, RegistrarConfig};
use crate::control::ControlMessage;
use crate::element::{PeEvent, PoolElementCore};
use crate::rt::Error;
use crate::rt::conn::{self, Got, Reader, Stream, Use};
use crate::rt::driver::{self, Handle, IoSettings, Role};
use crate::time::Time;
use crate::types::{AddressScope, ConnId, PeId, PeInfo, PoolHandleBuf, Proto, RegistrarAddr};

/// How a pool element registers and serves.
#[derive(Clone, Debug)]
pub struct PeOptions {
    /// Policy and its values (RSPLIB default: Round Robin).
    pub policy: Policy,
    /// Transport the PE serves on (and registers as its user transport).
    pub proto: Proto,
    /// Where to listen (default 0.0.0.0:0: every address, a free port).
    pub local: SocketAddr,
    /// Addresses to register instead of the ones found from `local`.
    pub addresses: Option<Vec<IpAddr>>,
    /// Narrowest scope of a registered address (RSPLIB: site-local; RSPLIB
    /// registrars refuse anything narrower unless told otherwise).
    pub min_address_scope: AddressScope,
    /// PE identifier (default: random, non-zero).
    pub id: Option<PeId>,
    /// Re-registration interval (RSPLIB `-rereginterval=`, 30 s).
    pub reregistration_interval: Duration,
    /// Registration life (default 3 x the re-registration interval).
    pub registration_life: Option<Duration>,
    /// Unit of the registration life on the wire (RSPLIB: milliseconds).
    pub life_unit: LifeUnit,
    /// Whether the PE takes ASAP control messages on its sessions
    /// (Transport Use; RSPLIB's PEs always say yes).
    pub control_channel: bool,
    /// How long [`PoolElement::register`] waits for the first registration.
    pub registration_wait: Duration,
}

impl Default for PeOptions {
    fn default() -> Self {
        Self {
            policy: Policy::RoundRobin {},
            proto: Proto::Sctp,
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            addresses: None,
            min_address_scope: AddressScope::SiteLocal,
            id: None,
            reregistration_interval: Duration::from_secs(30),
            registration_life: None,
            life_unit: LifeUnit::Millis,
            control_channel: true,
            registration_wait: Duration::from_secs(15),
        }
    }
}

/// What a pool element knows about its registration (a snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeStatus {
    /// Whether the last registration was granted.
    pub registered: bool,
    /// The home registrar connection's address.
    pub home: Option<RegistrarAddr>,
    /// The home registrar's id, when known.
    pub home_server: Option<ServerId>,
    /// Granted (re-)registrations so far.
    pub registrations: u64,
    /// Keep-alives answered so far.
    pub keep_alives: u64,
    /// Home registrar changes so far (the first connection counts).
    pub home_changes: u64,
}

enum PeCmd {
    SetLoad(u32),
    SetPolicy(Policy),
    Deregister(Sender<Result<(), RequestError>>),
    Stop,
}

struct PeRole {
    core: PoolElementCore,
    status: Arc<Mutex<PeStatus>>,
    first: Option<Sender<Result<(), Error>>>,
    dereg: Option<Sender<Result<(), RequestError>>>,
}

impl Role for PeRole {
    type Cmd = PeCmd;
    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }
    fn poll_timeout(&self) -> Option<Time> {
        self.core.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Time) {
        self.core.handle_timeout(now);
    }
    fn connected(&mut self, now: Time, conn: ConnId) {
        self.core.handle_connected(now, conn);
    }
    fn connect_failed(&mut self, now: Time, conn: ConnId) {
        self.core.handle_connect_failed(now, conn);
    }
    fn closed(&mut self, now: Time, conn: ConnId, _abnormal: bool) {
        self.core.handle_closed(now, conn);
    }
    fn message(&mut self, now: Time, conn: ConnId, _ppid: u32, data: &[u8]) {
        self.core.handle_message(now, conn, data);
    }
    fn send_failed(&mut self, now: Time, conn: ConnId, _ppid: u32, _data: Vec<u8>) {
        self.core.handle_closed(now, conn);
    }
    fn announce(&mut self, now: Time, from: SocketAddr, data: &[u8]) {
        self.core.handle_announce(now, from, data);
    }
    fn command(&mut self, now: Time, cmd: PeCmd) -> bool {
        match cmd {
            PeCmd::SetLoad(l) => self.core.set_load(now, l),
            PeCmd::SetPolicy(p) => self.core.set_policy(now, p),
            PeCmd::Deregister(reply) => {
                self.dereg = Some(reply);
                self.core.deregister(now);
            }
            PeCmd::Stop => return false,
        }
        true
    }
    fn dispatch(&mut self, _now: Time) {
        while let Some(ev) = self.core.poll_event() {
            let spec = self.core.spec();
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            match &ev {
                PeEvent::Registered { first, server } => {
                    if *first {
                        tracing::info!(pool = %spec.pool, pe = %spec.id, "registered");
                    } else {
                        tracing::debug!(pool = %spec.pool, pe = %spec.id, "re-registered");
                    }
                    st.registered = true;
                    st.registrations += 1;
                    if server.is_some() {
                        st.home_server = *server;
                    }
                    if let Some(f) = self.first.take() {
                        let _ = f.send(Ok(()));
                    }
                }
                PeEvent::Rejected { cause } => {
                    st.registered = false;
                    if let Some(f) = self.first.take() {
                        let _ = f.send(Err(Error::Rejected(*cause)));
                    }
                }
                PeEvent::RegistrationFailed { error } => {
                    tracing::debug!(pool = %spec.pool, pe = %spec.id, %error, "registration got no answer");
                }
                PeEvent::HomeChanged { registrar, server } => {
                    tracing::info!(pool = %spec.pool, pe = %spec.id, %registrar, ?server, "home registrar");
                    st.home = Some(registrar.clone());
                    st.home_server = *server;
                    st.home_changes += 1;
                }
                PeEvent::RegistrarLost => {
                    tracing::info!(pool = %spec.pool, pe = %spec.id, "home registrar lost; hunting");
                    st.home = None;
                }
                PeEvent::KeepAlive { server, .. } => {
                    st.keep_alives += 1;
                    st.home_server = Some(*server);
                }
                PeEvent::Deregistered { result } => {
                    st.registered = false;
                    if let Some(d) = self.dereg.take() {
                        let _ = d.send(*result);
                    }
                }
            }
        }
    }
}

/// A registered pool element (RSerPool's REGISTER primitive): it listens
/// for pool users on its own socket, keeps its registration alive in a
/// background thread (re-registration, keep-alive answers, registrar
/// failover), and deregisters when dropped or asked to.
#[derive(Debug)]
pub struct PoolElement {
    listener: Socket,
    proto: Proto,
    local: SocketAddr,
    pool: PoolHandleBuf,
    id: PeId,
    addresses: Vec<IpAddr>,
    status: Arc<Mutex<PeStatus>>,
    driver: Handle<PeCmd>,
    done: bool,
    response_wait: Duration,
}

fn random_pe_id() -> PeId {
    loop {
        let v: u32 = rand::random();
        if v != 0 && v != u32::MAX {
            return PeId(v);
        }
    }
}

/// The addresses a PE listening on `local` registers.
fn addresses_for(
    listener: &Socket,
    proto: Proto,
    local: SocketAddr,
    reg: &RegistrarConfig,
    min: AddressScope,
) -> Result<Vec<IpAddr>, Error> {
    let mut found: Vec<IpAddr> = if !local.ip().is_unspecified() {
        vec![local.ip()]
    } else if proto == Proto::Sctp {
        rserpool_net::sctp::local_addrs(listener.as_raw_fd())?
            .into_iter()
            .map(|a| a.ip())
            .collect()
    } else {
        // TCP on a wildcard: the address the first configured registrar
        // would see, then the multicast-capable interfaces.
        let mut v = Vec::new();
        if let Some(r) = reg.registrars.first().and_then(|r| r.addrs.first()) {
            let any: SocketAddr = if r.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            if let Ok(u) = UdpSocket::bind(any) {
                if u.connect(r).is_ok() {
                    if let Ok(a) = u.local_addr() {
                        v.push(a.ip());
                    }
                }
            }
        }
        v.extend(
            rserpool_net::mcast::ipv4_multicast_interfaces()
                .into_iter()
                .map(IpAddr::V4),
        );
        v
    };
    if local.is_ipv4() {
        found.retain(IpAddr::is_ipv4);
    }
    found.retain(|a| AddressScope::of(a) >= min);
    found.dedup();
    if found.is_empty() {
        return Err(Error::Config(format!(
            "no address of at least {min:?} scope to register for {local}; listen on an explicit address or lower the minimum address scope"
        )));
    }
    Ok(found)
}

impl PoolElement {
    /// Registers a PE in `pool`: opens its listening socket, finds a
    /// registrar and waits (up to `opts.registration_wait`) for the first
    /// registration to be granted. Afterwards the registration is kept
    /// alive in the background, across registrar failures, without the
    /// application's help.
    pub fn register(
        registrars: &RegistrarConfig,
        pool: impl AsRef<[u8]>,
        opts: PeOptions,
    ) -> Result<Self, Error> {
        let pool = PoolHandleBuf::new(pool.as_ref()).ok_or(Error::InvalidPoolHandle)?;
        let listener = conn::listen(opts.proto, opts.local)?;
        let local = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| Error::Config("listener has no IP address".into()))?;
        let addresses = match &opts.addresses {
            Some(a) if !a.is_empty() => a.clone(),
            _ => addresses_for(
                &listener,
                opts.proto,
                local,
                registrars,
                opts.min_address_scope,
            )?,
        };
        let id = opts.id.unwrap_or_else(random_pe_id);
        let mut spec = PeSpec::new(
            pool.clone(),
            id,
            opts.proto,
            local.port(),
            addresses.clone(),
        );
        spec.policy = opts.policy;
        spec.reregistration_interval = opts.reregistration_interval;
        spec.registration_life = opts.registration_life;
        spec.life_unit = opts.life_unit;
        spec.transport_use = if opts.control_channel {
            TransportUse::DATA_PLUS_CONTROL
        } else {
            TransportUse::DATA_ONLY
        };
        let status = Arc::new(Mutex::new(PeStatus::default()));
        let (first_tx, first_rx) = bounded(1);
        let mut core = PoolElementCore::new(spec, registrars.clone());
        core.register(Time::ZERO);
        let role = PeRole {
            core,
            status: status.clone(),
            first: Some(first_tx),
            dereg: None,
        };
        let io = IoSettings {
            registrar_connect: registrars.connect_timeout,
            pe_connect: registrars.connect_timeout,
            send: registrars.request_timeout,
        };
        let mut driver = driver::spawn("rserpool-pe", role, io, registrars.announce_group)?;
        let fail = |driver: &mut Handle<PeCmd>, e: Error| {
            driver.send(PeCmd::Stop);
            driver.join();
            Err(e)
        };
        match first_rx.recv_timeout(opts.registration_wait) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return fail(&mut driver, e),
            Err(_) => {
                let why = if status.lock().map(|s| s.home.is_some()).unwrap_or(false) {
                    "the registrar did not grant it"
                } else {
                    "no registrar reachable"
                };
                return fail(
                    &mut driver,
                    Error::NotRegistered(opts.registration_wait, why.to_string()),
                );
            }
        }
        Ok(Self {
            listener,
            proto: opts.proto,
            local,
            pool,
            id,
            addresses,
            status,
            driver,
            done: false,
            response_wait: registrars.response_timeout * registrars.request_max_trials.max(1)
                + registrars.connect_timeout,
        })
    }

    /// The PE identifier.
    pub fn id(&self) -> PeId {
        self.id
    }

    /// The pool.
    pub fn pool(&self) -> &PoolHandleBuf {
        &self.pool
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The addresses it registered.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The transport it serves on.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// A snapshot of the registration's state.
    pub fn status(&self) -> PeStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Updates the load of an adaptive policy (registered at once when it
    /// changed by 1 % or more, else with the next re-registration).
    pub fn set_load(&self, load: u32) {
        self.driver.send(PeCmd::SetLoad(load));
    }

    /// Changes the policy or its values; registers again at once.
    pub fn set_policy(&self, policy: Policy) {
        self.driver.send(PeCmd::SetPolicy(policy));
    }

    /// Waits for the next pool user (blocking).
    pub fn accept(&self) -> Result<PeSession, Error> {
        loop {
            if let Some(s) = self.accept_timeout(Duration::from_secs(3600))? {
                return Ok(s);
            }
        }
    }

    /// Waits up to `timeout` for the next pool user. `None` when nobody
    /// came, also when a signal cut the wait short (so that a loop around
    /// it can look at its stop flag) or the pool user gave up before it was
    /// accepted.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<PeSession>, Error> {
        self.listener
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.listener.accept() {
            Ok((s, _)) => {
                let stream = conn::accepted(self.proto, s)?;
                Ok(Some(PeSession::new(stream)?))
            }
            Err(e)
                if conn::is_timeout(&e)
                    || matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                    ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deregisters and stops (RSerPool's DEREGISTER). Waits for the
    /// registrar's answer.
    pub fn deregister(mut self) -> Result<(), Error> {
        self.stop(self.response_wait)
    }

    fn stop(&mut self, wait: Duration) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let (tx, rx) = bounded(1);
        let result = if self.driver.send(PeCmd::Deregister(tx)) {
            match rx.recv_timeout(wait) {
                Ok(r) => r.map_err(Error::from),
                Err(_) => Err(Error::Timeout),
            }
        } else {
            Err(Error::Closed)
        };
        self.driver.send(PeCmd::Stop);
        self.driver.join();
        result
    }
}

impl Drop for PoolElement {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(2));
    }
}

/// What a PE's session delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeMessage {
    /// User data and its PPID.
    Data {
        /// PPID.
        ppid: u32,
        /// Payload.
        data: Vec<u8>,
    },
    /// The pool user failed over to this PE and echoes the cookie it had
    /// from the previous one (first message of the session).
    CookieEcho(Vec<u8>),
    /// A business card from the pool user (a PU that is also a PE).
    BusinessCard {
        /// Its pool.
        pool: PoolHandleBuf,
        /// Its failover candidates.
        elements: Vec<PeInfo>,
    },
    /// The pool user closed the session.
    Closed,
}

/// One pool user's session at a PE: data plus the ASAP control channel.
#[derive(Debug)]
pub struct PeSession {
    reader: Reader,
    writer: Stream,
    peer: Option<SocketAddr>,
}

impl PeSession {
    fn new(stream: Stream) -> Result<Self, Error> {
        let writer = stream.try_clone()?;
        writer.set_write_timeout(Some(Duration::from_secs(10)))?;
        let peer = stream.peer_addr();
        let use_ = Use::Session;
        Ok(Self {
            reader: Reader::new(stream, use_),
            writer,
            peer,
        })
    }

    /// The pool user's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The next message (blocking).
    pub fn recv(&mut self) -> Result<PeMessage, Error> {
        loop {
            if let Some(m) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(m);
            }
        }
    }

    /// The next message within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<PeMessage>, Error> {
        self.reader
            .stream()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        loop {
            return match self.reader.read() {
                Ok(Got::Idle) => Ok(None),
                Ok(Got::Eof) => Ok(Some(PeMessage::Closed)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    Ok(Some(PeMessage::Closed))
                }
                Err(e) => Err(e.into()),
                Ok(Got::Message(ASAP_PPID, m)) => match ControlMessage::parse(&m) {
                    Ok(ControlMessage::CookieEcho(c)) => Ok(Some(PeMessage::CookieEcho(c))),
                    Ok(ControlMessage::BusinessCard { pool, elements }) => {
                        Ok(Some(PeMessage::BusinessCard { pool, elements }))
                    }
                    Ok(other) => {
                        tracing::debug!(?other, "control message ignored");
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "undecodable control message ignored");
                        continue;
                    }
                },
                Ok(Got::Message(ppid, data)) => Ok(Some(PeMessage::Data { ppid, data })),
            };
        }
    }

    /// Sends user data with PPID 0.
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.send_ppid(0, data)
    }

    /// Sends user data with `ppid` (not 11, which is ASAP's).
    pub fn send_ppid(&self, ppid: u32, data: &[u8]) -> Result<(), Error> {
        if ppid == ASAP_PPID {
            return Err(Error::Config("PPID 11 is reserved for ASAP".into()));
        }
        conn::send(&self.writer, Use::Session, ppid, data).map_err(Error::from)
    }

    /// Sends an ASAP Cookie: the pool user keeps the last one and echoes it
    /// to the PE it fails over to.
    pub fn send_cookie(&self, cookie: &[u8]) -> Result<(), Error> {
        let m = ControlMessage::Cookie(cookie.to_vec()).encode();
        conn::send(&self.writer, Use::Session, ASAP_PPID, &m).map_err(Error::from)
    }

    /// Sends an ASAP Business Card naming failover candidates. RSPLIB pool
    /// users cannot parse business cards: send them only to our own.
    pub fn send_business_card(
        &self,
        pool: &PoolHandleBuf,
        elements: &[PeInfo],
    ) -> Result<(), Error> {
        let m = ControlMessage::BusinessCard {
            pool: pool.clone(),
            elements: elements.to_vec(),
        }
        .encode();
        if m.is_empty() {
            return Err(Error::Config(
                "a business card needs at least one SCTP or TCP PE".into(),
            ));
        }
        conn::send(&self.writer, Use::Session, ASAP_PPID, &m).map_err(Error::from)
    }

    /// Closes the session.
    pub fn close(self) {
        self.writer.shutdown();
    }
}
