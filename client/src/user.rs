//! The pool user role, sans I/O: handle resolution through the home
//! registrar (with RSPLIB's item-count option), the cache and local
//! selection (the `cache` module), Endpoint Unreachable reports, and sessions
//! with failover (RFC 5352 sections 3.3, 3.5, 3.8, 3.9).
//!
//! # Requests
//!
//! * [`PoolUserCore::resolve`] asks the registrar (always) and reports the
//!   whole answer ([`PuEvent::Resolved`]); poolctl's view.
//! * [`PoolUserCore::select`] is GETPRIMARYSERVER: a PE chosen by the pool's
//!   policy from a fresh cache, or after a resolution
//!   ([`PuEvent::Selected`]).
//! * [`PoolUserCore::select_next`] is GETNEXTSERVER: reports the failed PE
//!   ([`PoolUserCore::report_failure`]) and selects another.
//!
//! # Endpoint Unreachable
//!
//! Sent at most once per failure event: a PE reported once is not reported
//! again until a fresh resolution lists it again (then a new failure is a
//! new event). A reported PE leaves the cache at once.
//!
//! # Sessions
//!
//! A session keeps one connection to one PE of its pool. It queues data
//! while it has no PE and sends it, in order, once connected. The PE may
//! send ASAP Cookies: the session keeps the last one and, after a failover,
//! sends it in a Cookie Echo as the very first message to the new PE. A
//! Business Card from the PE, when enabled, gives the failover order.
//!
//! Failover happens when the connection attempt fails or times out, when
//! the connection closes or breaks, when data could not be handed to the
//! transport ([`PoolUserCore::handle_send_failed`] gives it back; it goes
//! to the new PE), or on request. Connection failures and abnormal closes
//! are reported with Endpoint Unreachable; a graceful close by the PE is not
//! (RSPLIB's FFF_NONE). The failed PE is removed from the cache and not
//! tried again during the same outage unless nothing else is left; if every
//! candidate failed, the session waits the resolution retry delay, resolves
//! again and tries all of them again, until the failover timeout.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use rserpool_wire::asap::{AsapMessage, EndpointUnreachable, HandleResolution};
use rserpool_wire::{CauseCode, HandleResolutionOption, PolicyType};

use crate::action::{ASAP_PPID, Action};
use crate::cache::Cache;
use crate::channel::{ChanEvent, Channel, Key, Request, RequestError};
use crate::config::{RegistrarConfig, UserConfig};
use crate::control::ControlMessage;
use crate::element::encode;
use crate::rng::Rng;
use crate::time::{Time, earliest};
use crate::types::{ConnId, PeId, PeInfo, PoolHandleBuf, RegistrarAddr, RequestId, SessionId};

/// Why no PE could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The registrar does not know the pool (cause 0x9; RSPLIB registrars
    /// also answer so when rate-limiting).
    #[error("unknown pool handle")]
    UnknownPool,
    /// The registrar refused with another cause.
    #[error("the registrar refused the resolution (cause {0:?})")]
    Refused(CauseCode),
    /// The request got no answer.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The answer had no PE this client can use (or every one was excluded).
    #[error("no usable pool element")]
    NoUsablePe,
    /// A session found no reachable PE within its failover timeout.
    #[error("no reachable pool element within the failover timeout")]
    NoReachablePe,
}

/// What a pool user core tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PuEvent {
    /// The answer to [`PoolUserCore::resolve`].
    Resolved {
        /// The request.
        request: RequestId,
        /// The pool.
        pool: PoolHandleBuf,
        /// The PEs, in the registrar's order, or why not.
        result: Result<Vec<PeInfo>, ResolveError>,
    },
    /// The answer to a pending [`PoolUserCore::select`] /
    /// [`PoolUserCore::select_next`].
    Selected {
        /// The request.
        request: RequestId,
        /// The pool.
        pool: PoolHandleBuf,
        /// The PE, or why not.
        result: Result<PeInfo, ResolveError>,
    },
    /// A session is connected to a PE (first time, or after a failover).
    SessionUp {
        /// The session.
        session: SessionId,
        /// The PE.
        pe: PeId,
        /// Whether this ends a failover.
        failover: bool,
        /// Whether a Cookie Echo was sent to the PE first.
        cookie_echoed: bool,
    },
    /// Data from the session's PE.
    SessionData {
        /// The session.
        session: SessionId,
        /// Its PPID.
        ppid: u32,
        /// The payload.
        data: Vec<u8>,
    },
    /// The session's PE sent an ASAP Cookie; it is now the one the session
    /// keeps (see [`PoolUserCore::session_cookie`]) and echoes on failover.
    SessionCookie {
        /// The session.
        session: SessionId,
        /// The cookie.
        cookie: Vec<u8>,
    },
    /// The session lost its PE; a failover is under way.
    SessionDown {
        /// The session.
        session: SessionId,
        /// The PE it lost.
        pe: PeId,
    },
    /// The session gave up (no PE within the failover timeout). Data still
    /// queued is dropped.
    SessionFailed {
        /// The session.
        session: SessionId,
        /// The last reason.
        error: ResolveError,
    },
}

/// The result of [`PoolUserCore::select`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Chosen from a fresh cache.
    Ready(PeInfo),
    /// A resolution is needed; [`PuEvent::Selected`] will carry this id.
    Pending(RequestId),
}

#[derive(Debug)]
enum Waiter {
    Resolve(RequestId),
    Select(RequestId, Vec<PeId>),
    Session(SessionId),
}

#[derive(Debug, Clone)]
enum SState {
    /// Needs a PE: choose one now.
    Selecting,
    /// Waiting for a resolution of its pool.
    Resolving,
    Connecting {
        conn: ConnId,
        pe: PeInfo,
        deadline: Time,
    },
    Connected {
        conn: ConnId,
        pe: PeInfo,
    },
    /// Every candidate failed: resolve again at `until`.
    Waiting {
        until: Time,
    },
    Failed,
}

#[derive(Debug)]
struct Session {
    pool: PoolHandleBuf,
    state: SState,
    cookie: Option<Vec<u8>>,
    card: Vec<PeInfo>,
    queue: VecDeque<(u32, Vec<u8>)>,
    tried: Vec<PeId>,
    outage_since: Option<Time>,
    connected_once: bool,
    last_error: ResolveError,
}

/// See the module documentation.
#[derive(Debug)]
pub struct PoolUserCore {
    ch: Channel,
    cfg: UserConfig,
    rng: Rng,
    cache: Cache,
    resolving: HashMap<PoolHandleBuf, u64>,
    tag_pool: HashMap<u64, PoolHandleBuf>,
    waiters: Vec<(PoolHandleBuf, Waiter)>,
    reported: HashSet<(PoolHandleBuf, PeId)>,
    sessions: BTreeMap<SessionId, Session>,
    conns: HashMap<ConnId, SessionId>,
    next_id: u64,
    actions: VecDeque<Action>,
    events: VecDeque<PuEvent>,
}

impl PoolUserCore {
    /// A pool user; `seed` drives the random policies.
    pub fn new(registrars: RegistrarConfig, cfg: UserConfig, seed: u64) -> Self {
        Self {
            ch: Channel::new(registrars),
            cfg,
            rng: Rng::new(seed),
            cache: Cache::default(),
            resolving: HashMap::new(),
            tag_pool: HashMap::new(),
            waiters: Vec::new(),
            reported: HashSet::new(),
            sessions: BTreeMap::new(),
            conns: HashMap::new(),
            next_id: 1,
            actions: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &UserConfig {
        &self.cfg
    }

    /// The home registrar connection, if one is up.
    pub fn home(&self) -> Option<(ConnId, &RegistrarAddr)> {
        self.ch.current()
    }

    fn id(&mut self) -> u64 {
        let i = self.next_id;
        self.next_id += 1;
        i
    }

    /// Asks the registrar for `pool`'s PEs; [`PuEvent::Resolved`] follows.
    pub fn resolve(&mut self, now: Time, pool: &PoolHandleBuf) -> RequestId {
        let r = RequestId(self.id());
        self.waiters.push((pool.clone(), Waiter::Resolve(r)));
        self.start_resolution(now, pool);
        self.pump(now);
        r
    }

    /// The PEs cached for `pool` (whatever their age).
    pub fn cached(&self, pool: &PoolHandleBuf) -> Vec<PeInfo> {
        self.cache.list(pool)
    }

    /// GETPRIMARYSERVER: a PE of `pool` by the pool's policy.
    pub fn select(&mut self, now: Time, pool: &PoolHandleBuf) -> Selection {
        self.select_excluding(now, pool, Vec::new())
    }

    fn select_excluding(
        &mut self,
        now: Time,
        pool: &PoolHandleBuf,
        exclude: Vec<PeId>,
    ) -> Selection {
        if self.cache.is_fresh(now, pool, self.cfg.cache_lifetime) {
            if let Some(pe) = self.cache.select(pool, &exclude, &mut self.rng) {
                return Selection::Ready(pe);
            }
        }
        let r = RequestId(self.id());
        self.waiters
            .push((pool.clone(), Waiter::Select(r, exclude)));
        self.start_resolution(now, pool);
        self.pump(now);
        Selection::Pending(r)
    }

    /// GETNEXTSERVER: reports `failed` as unreachable and selects another PE
    /// (never `failed` itself).
    pub fn select_next(&mut self, now: Time, pool: &PoolHandleBuf, failed: PeId) -> Selection {
        self.report_failure(now, pool, failed);
        self.select_excluding(now, pool, vec![failed])
    }

    /// Reports a PE as unreachable (ASAP_ENDPOINT_UNREACHABLE), at most once
    /// per failure event, and drops it from the cache. Returns whether a
    /// report was sent.
    pub fn report_failure(&mut self, now: Time, pool: &PoolHandleBuf, pe: PeId) -> bool {
        self.cache.remove(pool, pe);
        if !self.reported.insert((pool.clone(), pe)) {
            return false;
        }
        tracing::debug!(%pool, %pe, "reporting an unreachable pool element");
        let m = AsapMessage::EndpointUnreachable(EndpointUnreachable {
            pool_handle: pool.as_wire(),
            pe_id: pe,
        });
        let tag = self.id();
        self.ch.submit(now, Request::new(tag, encode(&m), None));
        self.pump(now);
        true
    }

    fn start_resolution(&mut self, now: Time, pool: &PoolHandleBuf) {
        if self.resolving.contains_key(pool) {
            return;
        }
        let tag = self.id();
        let items = self.cfg.resolution_items;
        let m = AsapMessage::HandleResolution(HandleResolution {
            subscribe: false,
            pool_handle: pool.as_wire(),
            option: (items > 0).then_some(HandleResolutionOption { items }),
        });
        self.resolving.insert(pool.clone(), tag);
        self.tag_pool.insert(tag, pool.clone());
        self.ch.submit(
            now,
            Request::new(tag, encode(&m), Some(Key::Resolution(pool.clone()))),
        );
    }

    // ----- sessions -----

    /// Opens a session to `pool`: it selects a PE and connects.
    pub fn open_session(&mut self, now: Time, pool: &PoolHandleBuf) -> SessionId {
        let s = SessionId(self.id());
        self.sessions.insert(
            s,
            Session {
                pool: pool.clone(),
                state: SState::Selecting,
                cookie: None,
                card: Vec::new(),
                queue: VecDeque::new(),
                tried: Vec::new(),
                outage_since: Some(now),
                connected_once: false,
                last_error: ResolveError::NoUsablePe,
            },
        );
        self.advance(now, s);
        self.pump(now);
        s
    }

    /// The PE a session is connected to.
    pub fn session_pe(&self, session: SessionId) -> Option<&PeInfo> {
        match &self.sessions.get(&session)?.state {
            SState::Connected { pe, .. } => Some(pe),
            _ => None,
        }
    }

    /// The last cookie the session received.
    pub fn session_cookie(&self, session: SessionId) -> Option<&[u8]> {
        self.sessions.get(&session)?.cookie.as_deref()
    }

    /// Messages queued in a session (not yet handed to a transport).
    pub fn session_queued(&self, session: SessionId) -> usize {
        self.sessions.get(&session).map_or(0, |s| s.queue.len())
    }

    /// Sends user data (PPID `ppid`, not 11) on a session: now if it is
    /// connected, after the next (re)connection otherwise. Returns false if
    /// the session is unknown or failed.
    pub fn session_send(
        &mut self,
        now: Time,
        session: SessionId,
        ppid: u32,
        data: Vec<u8>,
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        match &s.state {
            SState::Failed => return false,
            SState::Connected { conn, .. } => self.actions.push_back(Action::Send {
                conn: *conn,
                ppid,
                data,
            }),
            _ => s.queue.push_back((ppid, data)),
        }
        self.pump(now);
        true
    }

    /// Forces a failover (RSPLIB's `rsp_forcefailover`); with `unreachable`
    /// the current PE is reported.
    pub fn session_failover(&mut self, now: Time, session: SessionId, unreachable: bool) {
        self.lose_pe(now, session, unreachable, None);
        self.pump(now);
    }

    /// Closes a session.
    pub fn close_session(&mut self, now: Time, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            if let SState::Connecting { conn, .. } | SState::Connected { conn, .. } = s.state {
                self.conns.remove(&conn);
                self.actions.push_back(Action::Close { conn });
            }
        }
        self.waiters
            .retain(|(_, w)| !matches!(w, Waiter::Session(x) if *x == session));
        self.pump(now);
    }

    /// Chooses the next PE for a session in state Selecting.
    fn advance(&mut self, now: Time, sid: SessionId) {
        loop {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            if !matches!(s.state, SState::Selecting) {
                return;
            }
            if s.outage_since
                .is_some_and(|t| now >= t + self.cfg.failover_timeout)
            {
                let error = s.last_error;
                s.state = SState::Failed;
                s.queue.clear();
                tracing::debug!(session = sid.0, ?error, "session gave up");
                self.events.push_back(PuEvent::SessionFailed {
                    session: sid,
                    error,
                });
                return;
            }
            let pool = s.pool.clone();
            // Business card first, then the cache.
            let from_card = if self.cfg.use_business_cards {
                s.card.iter().find(|p| !s.tried.contains(&p.id)).cloned()
            } else {
                None
            };
            let pe = match from_card {
                Some(pe) => pe,
                None => {
                    if !self.cache.is_fresh(now, &pool, self.cfg.cache_lifetime) {
                        s.state = SState::Resolving;
                        self.waiters.push((pool.clone(), Waiter::Session(sid)));
                        self.start_resolution(now, &pool);
                        return;
                    }
                    let tried = s.tried.clone();
                    match self.cache.select(&pool, &tried, &mut self.rng) {
                        Some(pe) => pe,
                        None => {
                            // Every candidate failed in this outage: pause,
                            // then resolve again and try them all again.
                            let s = self.sessions.get_mut(&sid).expect("session exists");
                            s.last_error = ResolveError::NoReachablePe;
                            s.state = SState::Waiting {
                                until: now + self.cfg.resolution_retry_delay,
                            };
                            return;
                        }
                    }
                }
            };
            let s = self.sessions.get_mut(&sid).expect("session exists");
            let Some(proto) = pe.proto() else {
                s.tried.push(pe.id);
                continue;
            };
            let conn = self.ch.alloc_conn();
            self.conns.insert(conn, sid);
            tracing::debug!(session = sid.0, pe = %pe.id, "connecting to a pool element");
            self.actions.push_back(Action::ConnectPe {
                conn,
                session: sid,
                proto,
                pe: pe.clone(),
            });
            s.state = SState::Connecting {
                conn,
                pe,
                deadline: now + self.cfg.pe_connect_timeout,
            };
            return;
        }
    }

    /// The session lost (or gives up) its PE: report if asked, forget the PE
    /// for this outage, and select another.
    fn lose_pe(
        &mut self,
        now: Time,
        sid: SessionId,
        unreachable: bool,
        unsent: Option<(u32, Vec<u8>)>,
    ) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let (conn, pe, was_up) = match &s.state {
            SState::Connecting { conn, pe, .. } => (*conn, pe.clone(), false),
            SState::Connected { conn, pe } => (*conn, pe.clone(), true),
            _ => return,
        };
        if let Some(m) = unsent {
            s.queue.push_front(m);
        }
        self.conns.remove(&conn);
        self.actions.push_back(Action::Close { conn });
        s.tried.push(pe.id);
        s.card.retain(|p| p.id != pe.id);
        if s.outage_since.is_none() {
            s.outage_since = Some(now);
        }
        s.state = SState::Selecting;
        let pool = s.pool.clone();
        if was_up {
            self.events.push_back(PuEvent::SessionDown {
                session: sid,
                pe: pe.id,
            });
        }
        if unreachable {
            self.report_failure(now, &pool, pe.id);
        } else {
            self.cache.remove(&pool, pe.id);
        }
        self.advance(now, sid);
    }

    // ----- runtime inputs -----

    /// The next thing for the runtime to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.ch.poll_action().or_else(|| self.actions.pop_front())
    }

    /// The next thing to tell the application.
    pub fn poll_event(&mut self) -> Option<PuEvent> {
        self.events.pop_front()
    }

    /// When [`PoolUserCore::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Time> {
        let mut t = self.ch.poll_timeout();
        for s in self.sessions.values() {
            match s.state {
                SState::Connecting { deadline, .. } => t = earliest(t, Some(deadline)),
                SState::Waiting { until } => t = earliest(t, Some(until)),
                _ => {}
            }
        }
        t
    }

    /// Timers: registrar timeouts, PE connect timeouts, retry pauses.
    pub fn handle_timeout(&mut self, now: Time) {
        self.ch.handle_timeout(now);
        let due: Vec<(SessionId, bool)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| match s.state {
                SState::Connecting { deadline, .. } if deadline <= now => Some((*id, true)),
                SState::Waiting { until } if until <= now => Some((*id, false)),
                _ => None,
            })
            .collect();
        for (sid, connecting) in due {
            if connecting {
                tracing::debug!(session = sid.0, "pool element connect timeout");
                self.lose_pe(now, sid, true, None);
            } else if let Some(s) = self.sessions.get_mut(&sid) {
                s.tried.clear();
                s.state = SState::Selecting;
                let pool = s.pool.clone();
                self.cache.invalidate(&pool);
                self.advance(now, sid);
            }
        }
        self.pump(now);
    }

    /// A connection asked for (registrar or PE) is up.
    pub fn handle_connected(&mut self, now: Time, conn: ConnId) {
        if let Some(&sid) = self.conns.get(&conn) {
            self.pe_connected(now, sid, conn);
        } else {
            self.ch.handle_connected(now, conn);
        }
        self.pump(now);
    }

    fn pe_connected(&mut self, _now: Time, sid: SessionId, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let SState::Connecting { conn: c, pe, .. } = &s.state else {
            return;
        };
        if *c != conn {
            return;
        }
        let pe = pe.clone();
        let mut cookie_echoed = false;
        if let Some(cookie) = &s.cookie {
            self.actions.push_back(Action::Send {
                conn,
                ppid: ASAP_PPID,
                data: ControlMessage::CookieEcho(cookie.clone()).encode(),
            });
            cookie_echoed = true;
        }
        for (ppid, data) in s.queue.drain(..) {
            self.actions.push_back(Action::Send { conn, ppid, data });
        }
        let failover = s.connected_once;
        s.connected_once = true;
        s.tried.clear();
        s.outage_since = None;
        tracing::debug!(session = sid.0, pe = %pe.id, failover, cookie_echoed, "session connected");
        s.state = SState::Connected {
            conn,
            pe: pe.clone(),
        };
        self.events.push_back(PuEvent::SessionUp {
            session: sid,
            pe: pe.id,
            failover,
            cookie_echoed,
        });
    }

    /// A connection attempt failed.
    pub fn handle_connect_failed(&mut self, now: Time, conn: ConnId) {
        if let Some(&sid) = self.conns.get(&conn) {
            tracing::debug!(session = sid.0, "pool element connection failed");
            self.lose_pe(now, sid, true, None);
        } else {
            self.ch.handle_connect_failed(now, conn);
        }
        self.pump(now);
    }

    /// A connection closed: `abnormal` for a reset/abort/error, false for an
    /// orderly close by the peer.
    pub fn handle_closed(&mut self, now: Time, conn: ConnId, abnormal: bool) {
        if let Some(&sid) = self.conns.get(&conn) {
            tracing::debug!(session = sid.0, abnormal, "pool element connection closed");
            self.lose_pe(now, sid, abnormal, None);
        } else {
            self.ch.handle_closed(now, conn);
        }
        self.pump(now);
    }

    /// A message the runtime could not hand to the transport of session
    /// connection `conn` (the connection broke): it is queued again for the
    /// next PE, and the session fails over.
    pub fn handle_send_failed(&mut self, now: Time, conn: ConnId, ppid: u32, data: Vec<u8>) {
        if let Some(&sid) = self.conns.get(&conn) {
            let keep = (ppid != ASAP_PPID).then_some((ppid, data));
            self.lose_pe(now, sid, true, keep);
        } else {
            self.ch.handle_closed(now, conn);
        }
        self.pump(now);
    }

    /// One message received: ASAP from a registrar, or (`ppid`) from a
    /// session's PE.
    pub fn handle_message(&mut self, now: Time, conn: ConnId, ppid: u32, bytes: &[u8]) {
        let Some(&sid) = self.conns.get(&conn) else {
            self.ch.handle_message(now, conn, bytes);
            self.pump(now);
            return;
        };
        if ppid == ASAP_PPID {
            match ControlMessage::parse(bytes) {
                Ok(ControlMessage::Cookie(c)) => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.cookie = Some(c.clone());
                        self.events.push_back(PuEvent::SessionCookie {
                            session: sid,
                            cookie: c,
                        });
                    }
                }
                Ok(ControlMessage::BusinessCard { pool, elements }) => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        if self.cfg.use_business_cards && pool == s.pool {
                            s.card = elements;
                        }
                    }
                }
                Ok(other) => tracing::debug!(?other, "control message ignored"),
                Err(e) => tracing::debug!(error = %e, "undecodable control message ignored"),
            }
        } else {
            self.events.push_back(PuEvent::SessionData {
                session: sid,
                ppid,
                data: bytes.to_vec(),
            });
        }
        self.pump(now);
    }

    /// An ASAP Server Announce heard from `source` (IP address and UDP port).
    pub fn handle_announce(&mut self, now: Time, source: SocketAddr, bytes: &[u8]) {
        self.ch.handle_announce(now, source, bytes);
        self.pump(now);
    }

    /// Closes everything.
    pub fn shutdown(&mut self) {
        for (conn, _) in self.conns.drain() {
            self.actions.push_back(Action::Close { conn });
        }
        self.sessions.clear();
        self.ch.close_all();
    }

    fn pump(&mut self, now: Time) {
        while let Some(ev) = self.ch.poll_event() {
            match ev {
                ChanEvent::Connected
                | ChanEvent::Lost
                | ChanEvent::HuntFailed
                | ChanEvent::Unsolicited { .. } => {}
                ChanEvent::Response { tag, bytes } => self.on_resolution(now, tag, Ok(&bytes)),
                ChanEvent::Failed { tag, error } => self.on_resolution(now, tag, Err(error)),
            }
        }
    }

    fn on_resolution(&mut self, now: Time, tag: u64, answer: Result<&[u8], RequestError>) {
        let Some(pool) = self.tag_pool.remove(&tag) else {
            return; // an Endpoint Unreachable (no answer expected) or stale
        };
        self.resolving.remove(&pool);
        let result: Result<Vec<PeInfo>, ResolveError> = match answer {
            Err(e) => Err(ResolveError::Request(e)),
            Ok(bytes) => match AsapMessage::parse(bytes) {
                Ok(AsapMessage::HandleResolutionResponse(r)) => match r.error {
                    Some(e) => {
                        let cause = e.first_code().unwrap_or(CauseCode::UNSPECIFIED);
                        if cause == CauseCode::UNKNOWN_POOL_HANDLE {
                            Err(ResolveError::UnknownPool)
                        } else {
                            Err(ResolveError::Refused(cause))
                        }
                    }
                    None => {
                        let pes: Vec<PeInfo> =
                            r.elements.iter().map(|e| PeInfo::from_wire(&e)).collect();
                        let policy = r
                            .policy
                            .map_or(PolicyType::ROUND_ROBIN, |p| p.policy_type());
                        for p in &pes {
                            self.reported.remove(&(pool.clone(), p.id));
                        }
                        self.cache.store(now, pool.clone(), policy, pes.clone());
                        if pes.is_empty() {
                            Err(ResolveError::NoUsablePe)
                        } else {
                            Ok(pes)
                        }
                    }
                },
                _ => Err(ResolveError::NoUsablePe),
            },
        };
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(p, _)| *p == pool);
        self.waiters = rest;
        for (_, w) in mine {
            match w {
                Waiter::Resolve(request) => self.events.push_back(PuEvent::Resolved {
                    request,
                    pool: pool.clone(),
                    result: result.clone(),
                }),
                Waiter::Select(request, exclude) => {
                    let r = match &result {
                        Ok(_) => self
                            .cache
                            .select(&pool, &exclude, &mut self.rng)
                            .ok_or(ResolveError::NoUsablePe),
                        Err(e) => Err(*e),
                    };
                    self.events.push_back(PuEvent::Selected {
                        request,
                        pool: pool.clone(),
                        result: r,
                    });
                }
                Waiter::Session(sid) => {
                    let Some(s) = self.sessions.get_mut(&sid) else {
                        continue;
                    };
                    if !matches!(s.state, SState::Resolving) {
                        continue;
                    }
                    match &result {
                        Ok(_) => {
                            s.state = SState::Selecting;
                            self.advance_fresh(now, sid);
                        }
                        Err(e) => {
                            s.last_error = *e;
                            s.state = SState::Waiting {
                                until: now + self.cfg.resolution_retry_delay,
                            };
                        }
                    }
                }
            }
        }
    }

    /// Like `advance`, right after a resolution for the session's pool was
    /// stored (usable even with a zero cache lifetime: same `now`).
    fn advance_fresh(&mut self, now: Time, sid: SessionId) {
        self.advance(now, sid);
    }
}
