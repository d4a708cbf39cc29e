//! The blocking pool user: resolution, failure reports and sessions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use crate::action::{ASAP_PPID, Action};
use crate::config::{RegistrarConfig, UserConfig};
use crate::rt::Error;
use crate::rt::driver::{self, Handle, IoSettings, Role};
use crate::time::Time;
use crate::types::{ConnId, PeId, PeInfo, PoolHandleBuf, RequestId, SessionId};
use crate::user::{PoolUserCore, PuEvent, ResolveError, Selection};

enum PuCmd {
    Select {
        pool: PoolHandleBuf,
        failed: Option<PeId>,
        reply: Sender<Result<PeInfo, ResolveError>>,
    },
    Report {
        pool: PoolHandleBuf,
        pe: PeId,
    },
    Resolve {
        pool: PoolHandleBuf,
        reply: Sender<Result<Vec<PeInfo>, ResolveError>>,
    },
    Open {
        pool: PoolHandleBuf,
        events: Sender<SessionEvent>,
        status: Arc<Mutex<SessionStatus>>,
        reply: Sender<SessionId>,
    },
    Send {
        session: SessionId,
        ppid: u32,
        data: Vec<u8>,
    },
    Failover {
        session: SessionId,
        unreachable: bool,
    },
    Close {
        session: SessionId,
    },
    Stop,
}

struct PuRole {
    core: PoolUserCore,
    selects: HashMap<RequestId, Sender<Result<PeInfo, ResolveError>>>,
    resolves: HashMap<RequestId, Sender<Result<Vec<PeInfo>, ResolveError>>>,
    sessions: HashMap<SessionId, (Sender<SessionEvent>, Arc<Mutex<SessionStatus>>)>,
}

impl Role for PuRole {
    type Cmd = PuCmd;
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
    fn closed(&mut self, now: Time, conn: ConnId, abnormal: bool) {
        self.core.handle_closed(now, conn, abnormal);
    }
    fn message(&mut self, now: Time, conn: ConnId, ppid: u32, data: &[u8]) {
        self.core.handle_message(now, conn, ppid, data);
    }
    fn send_failed(&mut self, now: Time, conn: ConnId, ppid: u32, data: Vec<u8>) {
        self.core.handle_send_failed(now, conn, ppid, data);
    }
    fn announce(&mut self, now: Time, from: SocketAddr, data: &[u8]) {
        self.core.handle_announce(now, from, data);
    }
    fn command(&mut self, now: Time, cmd: PuCmd) -> bool {
        match cmd {
            PuCmd::Select {
                pool,
                failed,
                reply,
            } => {
                let s = match failed {
                    Some(pe) => self.core.select_next(now, &pool, pe),
                    None => self.core.select(now, &pool),
                };
                match s {
                    Selection::Ready(pe) => {
                        let _ = reply.send(Ok(pe));
                    }
                    Selection::Pending(r) => {
                        self.selects.insert(r, reply);
                    }
                }
            }
            PuCmd::Report { pool, pe } => {
                self.core.report_failure(now, &pool, pe);
            }
            PuCmd::Resolve { pool, reply } => {
                let r = self.core.resolve(now, &pool);
                self.resolves.insert(r, reply);
            }
            PuCmd::Open {
                pool,
                events,
                status,
                reply,
            } => {
                // Register the session's channel before its first event.
                let s = SessionId(u64::MAX);
                self.sessions.insert(s, (events, status));
                let id = self.core.open_session(now, &pool);
                if let Some(v) = self.sessions.remove(&s) {
                    self.sessions.insert(id, v);
                }
                let _ = reply.send(id);
            }
            PuCmd::Send {
                session,
                ppid,
                data,
            } => {
                if !self.core.session_send(now, session, ppid, data) {
                    if let Some((tx, _)) = self.sessions.get(&session) {
                        let _ = tx.send(SessionEvent::Failed(ResolveError::NoReachablePe));
                    }
                }
            }
            PuCmd::Failover {
                session,
                unreachable,
            } => self.core.session_failover(now, session, unreachable),
            PuCmd::Close { session } => {
                self.sessions.remove(&session);
                self.core.close_session(now, session);
            }
            PuCmd::Stop => {
                self.core.shutdown();
                return false;
            }
        }
        true
    }
    fn dispatch(&mut self, _now: Time) {
        while let Some(ev) = self.core.poll_event() {
            match ev {
                PuEvent::Resolved {
                    request, result, ..
                } => {
                    if let Some(r) = self.resolves.remove(&request) {
                        let _ = r.send(result);
                    }
                }
                PuEvent::Selected {
                    request, result, ..
                } => {
                    if let Some(r) = self.selects.remove(&request) {
                        let _ = r.send(result);
                    }
                }
                PuEvent::SessionUp {
                    session,
                    pe,
                    failover,
                    cookie_echoed,
                } => self.deliver(
                    session,
                    SessionEvent::Up {
                        pe,
                        failover,
                        cookie_echoed,
                    },
                ),
                PuEvent::SessionData {
                    session,
                    ppid,
                    data,
                } => self.deliver(session, SessionEvent::Data { ppid, data }),
                PuEvent::SessionCookie { session, cookie } => {
                    self.deliver(session, SessionEvent::Cookie(cookie));
                }
                PuEvent::SessionDown { session, pe } => {
                    self.deliver(session, SessionEvent::Down { pe });
                }
                PuEvent::SessionFailed { session, error } => {
                    self.deliver(session, SessionEvent::Failed(error));
                }
            }
        }
    }
}

impl PuRole {
    fn deliver(&mut self, session: SessionId, ev: SessionEvent) {
        let Some((tx, status)) = self.sessions.get(&session) else {
            return;
        };
        {
            let mut st = status.lock().unwrap_or_else(|p| p.into_inner());
            match &ev {
                SessionEvent::Up { pe, failover, .. } => {
                    st.pe = Some(*pe);
                    if *failover {
                        st.failovers += 1;
                    }
                }
                SessionEvent::Down { .. } => st.pe = None,
                SessionEvent::Failed(e) => {
                    st.pe = None;
                    st.failed = Some(*e);
                }
                SessionEvent::Data { .. } | SessionEvent::Cookie(_) => {}
            }
            st.cookie = self.core.session_cookie(session).map(<[u8]>::to_vec);
        }
        let _ = tx.send(ev);
    }
}

/// A pool user (RSerPool's PU side): resolves pool handles through its
/// home registrar, picks PEs by the pool's policy, reports failed ones, and
/// opens sessions that fail over by themselves.
#[derive(Debug)]
pub struct PoolUser {
    driver: Handle<PuCmd>,
    wait: Duration,
    failover_wait: Duration,
}

impl PoolUser {
    /// Starts a pool user (its background thread; no connection is opened
    /// before the first request).
    pub fn new(registrars: &RegistrarConfig, user: &UserConfig) -> Result<Self, Error> {
        let core = PoolUserCore::new(registrars.clone(), user.clone(), rand::random());
        let role = PuRole {
            core,
            selects: HashMap::new(),
            resolves: HashMap::new(),
            sessions: HashMap::new(),
        };
        let io = IoSettings {
            registrar_connect: registrars.connect_timeout,
            pe_connect: user.pe_connect_timeout,
            send: registrars.request_timeout,
        };
        let driver = driver::spawn("rserpool-pu", role, io, registrars.announce_group)?;
        // A bound on any one request: a full hunt plus every transmission.
        let wait = registrars.connect_timeout * (registrars.connect_max_trials.max(1) + 1)
            + registrars.response_timeout * (registrars.request_max_trials.max(1) + 1);
        Ok(Self {
            driver,
            wait,
            failover_wait: user.failover_timeout + user.pe_connect_timeout + wait,
        })
    }

    fn pool(pool: impl AsRef<[u8]>) -> Result<PoolHandleBuf, Error> {
        PoolHandleBuf::new(pool.as_ref()).ok_or(Error::InvalidPoolHandle)
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> PuCmd) -> Result<T, Error> {
        let (tx, rx) = bounded(1);
        if !self.driver.send(make(tx)) {
            return Err(Error::Closed);
        }
        match rx.recv_timeout(self.wait) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// GETPRIMARYSERVER: a PE of `pool` chosen by the pool's policy (from
    /// the cache while it is fresh).
    pub fn resolve(&self, pool: impl AsRef<[u8]>) -> Result<PeInfo, Error> {
        let pool = Self::pool(pool)?;
        Ok(self.ask(|reply| PuCmd::Select {
            pool,
            failed: None,
            reply,
        })??)
    }

    /// GETNEXTSERVER: reports `failed` as unreachable (once per failure)
    /// and returns another PE of `pool`.
    pub fn report_failure_and_next(
        &self,
        pool: impl AsRef<[u8]>,
        failed: PeId,
    ) -> Result<PeInfo, Error> {
        let pool = Self::pool(pool)?;
        Ok(self.ask(|reply| PuCmd::Select {
            pool,
            failed: Some(failed),
            reply,
        })??)
    }

    /// Reports a PE as unreachable (at most once per failure event).
    pub fn report_failure(&self, pool: impl AsRef<[u8]>, pe: PeId) -> Result<(), Error> {
        let pool = Self::pool(pool)?;
        if self.driver.send(PuCmd::Report { pool, pe }) {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// A handle resolution as the registrar answers it (all PEs it lists).
    pub fn handle_resolution(&self, pool: impl AsRef<[u8]>) -> Result<Vec<PeInfo>, Error> {
        let pool = Self::pool(pool)?;
        Ok(self.ask(|reply| PuCmd::Resolve { pool, reply })??)
    }

    /// Opens a session to a PE of `pool` and waits until it is connected.
    pub fn session(&self, pool: impl AsRef<[u8]>) -> Result<Session, Error> {
        let pool = Self::pool(pool)?;
        let (etx, erx) = unbounded();
        let status = Arc::new(Mutex::new(SessionStatus::default()));
        let st = status.clone();
        let id = self.ask(|reply| PuCmd::Open {
            pool,
            events: etx,
            status: st,
            reply,
        })?;
        let session = Session {
            id,
            tx: self.driver.tx.clone(),
            events: erx,
            status,
        };
        match session.wait_up(self.failover_wait)? {
            Ok(()) => Ok(session),
            Err(e) => Err(Error::Resolve(e)),
        }
    }
}

impl Drop for PoolUser {
    fn drop(&mut self) {
        self.driver.send(PuCmd::Stop);
        self.driver.join();
    }
}

/// What happens on a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// Connected to a PE (after a failover when `failover`; the last cookie
    /// was echoed to it first when `cookie_echoed`).
    Up {
        /// The PE.
        pe: PeId,
        /// Whether this ends a failover.
        failover: bool,
        /// Whether a Cookie Echo went first.
        cookie_echoed: bool,
    },
    /// Data from the PE.
    Data {
        /// Its PPID.
        ppid: u32,
        /// The payload.
        data: Vec<u8>,
    },
    /// The PE sent an ASAP Cookie (now [`SessionStatus::cookie`]; echoed
    /// to the next PE on failover).
    Cookie(Vec<u8>),
    /// The PE was lost; failing over.
    Down {
        /// The PE.
        pe: PeId,
    },
    /// No PE could be reached within the failover timeout.
    Failed(ResolveError),
}

/// A session's state (a snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStatus {
    /// The PE it is connected to.
    pub pe: Option<PeId>,
    /// Failovers completed.
    pub failovers: u64,
    /// The last cookie the PE sent.
    pub cookie: Option<Vec<u8>>,
    /// Why it failed, if it did.
    pub failed: Option<ResolveError>,
}

/// A session with a pool (RFC 5352 section 3.8): one PE at a time, failing
/// over by itself, with cookies echoed and unsent data carried over.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    tx: Sender<driver::Input<PuCmd>>,
    events: Receiver<SessionEvent>,
    status: Arc<Mutex<SessionStatus>>,
}

impl Session {
    fn cmd(&self, c: PuCmd) -> Result<(), Error> {
        self.tx
            .send(driver::Input::Cmd(c))
            .map_err(|_| Error::Closed)
    }

    fn wait_up(&self, wait: Duration) -> Result<Result<(), ResolveError>, Error> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(SessionEvent::Up { .. }) => return Ok(Ok(())),
                Ok(SessionEvent::Failed(e)) => return Ok(Err(e)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout),
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Closed),
            }
        }
    }

    /// A snapshot of the session's state.
    pub fn status(&self) -> SessionStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The PE it is connected to now.
    pub fn pe(&self) -> Option<PeId> {
        self.status().pe
    }

    /// Sends data with PPID 0 (what RSPLIB's terminal and echo use).
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.send_ppid(0, data)
    }

    /// Sends data with `ppid` (not 11, which is ASAP's). Data is queued
    /// while the session fails over and goes to the new PE.
    pub fn send_ppid(&self, ppid: u32, data: &[u8]) -> Result<(), Error> {
        if ppid == ASAP_PPID {
            return Err(Error::Config("PPID 11 is reserved for ASAP".into()));
        }
        if let Some(e) = self.status().failed {
            return Err(Error::Resolve(e));
        }
        self.cmd(PuCmd::Send {
            session: self.id,
            ppid,
            data: data.to_vec(),
        })
    }

    /// The next event within `timeout`.
    pub fn recv_event(&self, timeout: Duration) -> Result<Option<SessionEvent>, Error> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    /// The next data message within `timeout` (failover events are skipped;
    /// a failed session is an error).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<(u32, Vec<u8>)>, Error> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.recv_event(left)? {
                None => return Ok(None),
                Some(SessionEvent::Data { ppid, data }) => return Ok(Some((ppid, data))),
                Some(SessionEvent::Failed(e)) => return Err(Error::Resolve(e)),
                Some(_) => {}
            }
        }
    }

    /// The next data message (blocking).
    pub fn recv(&self) -> Result<Vec<u8>, Error> {
        loop {
            if let Some((_, d)) = self.recv_timeout(Duration::from_secs(3600))? {
                return Ok(d);
            }
        }
    }

    /// Forces a failover (RSPLIB's `rsp_forcefailover`); with `unreachable`
    /// the current PE is reported to the registrar.
    pub fn failover(&self, unreachable: bool) -> Result<(), Error> {
        self.cmd(PuCmd::Failover {
            session: self.id,
            unreachable,
        })
    }

    /// Closes the session.
    pub fn close(self) {}
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.cmd(PuCmd::Close { session: self.id });
    }
}
