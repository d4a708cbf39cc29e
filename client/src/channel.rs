//! The registrar channel, shared by both roles: server hunt (RFC 5352
//! section 3.6, with RSPLIB's options), the home registrar connection, and
//! the queue of requests with their response timeouts and retransmissions.
//!
//! Hunt: candidates are the configured registrars (in order) followed by
//! those learnt from announces (in order of learning, expired after the
//! announce timeout). Up to `max_parallel_connects` attempts run at once;
//! each has the connect timeout; a failed or timed-out attempt is replaced
//! by the next untried candidate; the first connection up wins and the
//! others are closed. A round ends when every candidate was tried (and, with
//! announces on, not before one connect timeout has passed, so that an
//! announce can still arrive). After `connect_max_trials` rounds, queued
//! requests fail; if the core still needs a registrar (a registered PE) the
//! hunt resumes after a doubling back-off.
//!
//! Requests are sent in submission order. Responses are matched by kind and
//! key (pool handle, PE id) to the oldest outstanding request, so several
//! requests can be in flight. A response timeout, or the loss of the
//! connection, drops the registrar (RSPLIB aborts it too): outstanding
//! requests with transmissions left are sent again to the next registrar,
//! the others fail.

use std::collections::VecDeque;
use std::time::Duration;

use rserpool_wire::asap::AsapMessage;
use rserpool_wire::{CauseCode, PeId, ServerId};

use crate::action::{ASAP_PPID, Action};
use crate::config::RegistrarConfig;
use crate::time::{Time, earliest};
use crate::types::{AddressScope, ConnId, PoolHandleBuf, RegistrarAddr};

/// Why a request to the registrar failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No registrar could be reached (hunt exhausted).
    #[error("no registrar could be reached")]
    NoRegistrar,
    /// The registrar did not answer in time, on every transmission.
    #[error("the registrar did not answer in time")]
    Timeout,
    /// The registrar answered with an ASAP_ERROR.
    #[error("the registrar answered with an ASAP error (cause {0:?})")]
    AsapError(CauseCode),
}

/// Which response answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Registration(PoolHandleBuf, PeId),
    Deregistration(PoolHandleBuf, PeId),
    Resolution(PoolHandleBuf),
}

impl Key {
    fn of_response(m: &AsapMessage<'_>) -> Option<Self> {
        Some(match m {
            AsapMessage::RegistrationResponse(r) => {
                Self::Registration(r.pool_handle.into(), r.pe_id)
            }
            AsapMessage::DeregistrationResponse(r) => {
                Self::Deregistration(r.pool_handle.into(), r.pe_id)
            }
            AsapMessage::HandleResolutionResponse(r) => Self::Resolution(r.pool_handle.into()),
            _ => return None,
        })
    }
}

/// One message for the registrar.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) tag: u64,
    pub(crate) bytes: Vec<u8>,
    /// The response expected, if any.
    pub(crate) key: Option<Key>,
    /// Send only on this connection (keep-alive acks); dropped if it is gone.
    pub(crate) only_on: Option<ConnId>,
    trials: u32,
}

impl Request {
    pub(crate) fn new(tag: u64, bytes: Vec<u8>, key: Option<Key>) -> Self {
        Self {
            tag,
            bytes,
            key,
            only_on: None,
            trials: 0,
        }
    }
}

#[derive(Debug)]
struct Sent {
    req: Request,
    deadline: Time,
}

/// What the channel tells its core.
#[derive(Debug)]
pub(crate) enum ChanEvent {
    /// A (new) home registrar connection is up.
    Connected,
    /// The home registrar connection was lost (a hunt may follow).
    Lost,
    /// A server hunt ended without a registrar.
    HuntFailed,
    /// The answer to request `tag`.
    Response { tag: u64, bytes: Vec<u8> },
    /// Request `tag` failed for good.
    Failed { tag: u64, error: RequestError },
    /// A message that answers no request (keep-alive, unsolicited
    /// deregistration response, ...), and the connection it came on.
    Unsolicited { conn: ConnId, bytes: Vec<u8> },
}

#[derive(Debug)]
struct Announced {
    server: ServerId,
    addr: RegistrarAddr,
    expires: Time,
}

#[derive(Debug)]
struct Attempt {
    conn: ConnId,
    addr: RegistrarAddr,
    deadline: Time,
}

#[derive(Debug)]
struct Hunt {
    round: u32,
    started: Time,
    tried: Vec<RegistrarAddr>,
    attempts: Vec<Attempt>,
}

#[derive(Debug)]
enum State {
    Idle,
    Hunting(Hunt),
    Backoff { until: Time },
    Connected { conn: ConnId, addr: RegistrarAddr },
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Channel {
    cfg: RegistrarConfig,
    state: State,
    announced: Vec<Announced>,
    side: Vec<(ConnId, RegistrarAddr)>,
    queue: VecDeque<Request>,
    outstanding: VecDeque<Sent>,
    actions: VecDeque<Action>,
    events: VecDeque<ChanEvent>,
    next_conn: u64,
    keep_connected: bool,
    backoff: Duration,
    server_id: Option<ServerId>,
    /// The registrar given up last: tried last by the next hunt.
    avoid: Option<RegistrarAddr>,
}

impl Channel {
    pub(crate) fn new(cfg: RegistrarConfig) -> Self {
        let backoff = cfg.hunt_retry_delay;
        Self {
            cfg,
            state: State::Idle,
            announced: Vec::new(),
            side: Vec::new(),
            queue: VecDeque::new(),
            outstanding: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_conn: 1,
            keep_connected: false,
            backoff,
            server_id: None,
            avoid: None,
        }
    }

    pub(crate) fn config(&self) -> &RegistrarConfig {
        &self.cfg
    }

    /// A fresh connection id (also used by cores for their PE connections).
    pub(crate) fn alloc_conn(&mut self) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        c
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<ChanEvent> {
        self.events.pop_front()
    }

    /// The current home registrar connection and where it goes.
    pub(crate) fn current(&self) -> Option<(ConnId, &RegistrarAddr)> {
        match &self.state {
            State::Connected { conn, addr } => Some((*conn, addr)),
            _ => None,
        }
    }

    /// The home registrar's server id, when known (announce or keep-alive).
    pub(crate) fn server_id(&self) -> Option<ServerId> {
        self.server_id
    }

    pub(crate) fn set_server_id(&mut self, id: ServerId) {
        if id.0 != 0 {
            self.server_id = Some(id);
        }
    }

    /// Whether the core needs a registrar even with nothing queued (a
    /// registered PE must stay reachable for keep-alives).
    pub(crate) fn set_keep_connected(&mut self, now: Time, on: bool) {
        self.keep_connected = on;
        if on {
            self.maybe_hunt(now);
        }
    }

    /// Closes everything (the core is shutting down).
    pub(crate) fn close_all(&mut self) {
        self.keep_connected = false;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Connected { conn, .. } => self.actions.push_back(Action::Close { conn }),
            State::Hunting(h) => {
                for a in h.attempts {
                    self.actions.push_back(Action::Close { conn: a.conn });
                }
            }
            _ => {}
        }
        for (conn, _) in std::mem::take(&mut self.side) {
            self.actions.push_back(Action::Close { conn });
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Time> {
        match &self.state {
            State::Idle => None,
            State::Backoff { until } => Some(*until),
            State::Hunting(h) => {
                let mut t = h.attempts.iter().map(|a| a.deadline).min();
                if h.attempts.is_empty() && self.cfg.announce_group.is_some() {
                    t = earliest(t, Some(h.started + self.cfg.connect_timeout));
                }
                t
            }
            State::Connected { .. } => self.outstanding.iter().map(|s| s.deadline).min(),
        }
    }

    /// Queues a request; sends it now if connected, starts a hunt if not.
    pub(crate) fn submit(&mut self, now: Time, req: Request) {
        self.queue.push_back(req);
        match self.state {
            State::Connected { .. } => self.flush(now),
            State::Backoff { .. } => {
                self.state = State::Idle;
                self.maybe_hunt(now);
            }
            State::Idle => self.maybe_hunt(now),
            State::Hunting(_) => {}
        }
    }

    fn maybe_hunt(&mut self, now: Time) {
        if matches!(self.state, State::Idle) && (self.keep_connected || !self.queue.is_empty()) {
            self.state = State::Hunting(Hunt {
                round: 0,
                started: now,
                tried: Vec::new(),
                attempts: Vec::new(),
            });
            self.fill(now);
        }
    }

    fn candidates(&mut self, now: Time) -> Vec<RegistrarAddr> {
        self.announced.retain(|a| a.expires > now);
        let mut v: Vec<RegistrarAddr> = self.cfg.registrars.clone();
        for a in &self.announced {
            if !v.contains(&a.addr) {
                v.push(a.addr.clone());
            }
        }
        if let Some(bad) = &self.avoid {
            if let Some(i) = v.iter().position(|c| c == bad) {
                let c = v.remove(i);
                v.push(c);
            }
        }
        v
    }

    /// Starts attempts up to the parallel limit; ends the round if nothing is
    /// left to try.
    fn fill(&mut self, now: Time) {
        let candidates = self.candidates(now);
        let State::Hunting(h) = &mut self.state else {
            return;
        };
        let limit = self.cfg.max_parallel_connects.max(1);
        for c in candidates {
            if h.attempts.len() >= limit {
                break;
            }
            if h.tried.contains(&c) {
                continue;
            }
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            h.tried.push(c.clone());
            self.actions.push_back(Action::ConnectRegistrar {
                conn,
                to: c.clone(),
            });
            h.attempts.push(Attempt {
                conn,
                addr: c,
                deadline: now + self.cfg.connect_timeout,
            });
        }
        self.check_round(now);
    }

    fn check_round(&mut self, now: Time) {
        let State::Hunting(h) = &mut self.state else {
            return;
        };
        if !h.attempts.is_empty() {
            return;
        }
        let waiting_for_announces =
            self.cfg.announce_group.is_some() && now < h.started + self.cfg.connect_timeout;
        if waiting_for_announces {
            return;
        }
        // The round is over without a registrar.
        h.round += 1;
        if h.round < self.cfg.connect_max_trials.max(1) {
            h.tried.clear();
            h.started = now;
            self.fill(now);
            return;
        }
        tracing::debug!("server hunt: no registrar reachable");
        self.events.push_back(ChanEvent::HuntFailed);
        self.fail_queue(RequestError::NoRegistrar);
        if self.keep_connected {
            self.state = State::Backoff {
                until: now + self.backoff,
            };
            self.backoff =
                (self.backoff * 2).min(self.cfg.hunt_retry_max.max(self.cfg.hunt_retry_delay));
        } else {
            self.state = State::Idle;
        }
    }

    fn fail_queue(&mut self, error: RequestError) {
        for r in std::mem::take(&mut self.queue) {
            if r.only_on.is_none() {
                self.events
                    .push_back(ChanEvent::Failed { tag: r.tag, error });
            }
        }
    }

    /// Sends what is queued on the current connection.
    fn flush(&mut self, now: Time) {
        let State::Connected { conn, .. } = self.state else {
            return;
        };
        while let Some(mut r) = self.queue.pop_front() {
            let target = match r.only_on {
                Some(c) if c == conn || self.side.iter().any(|(s, _)| *s == c) => c,
                Some(_) => continue,
                None => conn,
            };
            r.trials += 1;
            match r.key {
                Some(_) => {
                    self.actions.push_back(Action::Send {
                        conn: target,
                        ppid: ASAP_PPID,
                        data: r.bytes.clone(),
                    });
                    self.outstanding.push_back(Sent {
                        req: r,
                        deadline: now + self.cfg.response_timeout,
                    });
                }
                None => self.actions.push_back(Action::Send {
                    conn: target,
                    ppid: ASAP_PPID,
                    data: r.bytes,
                }),
            }
        }
    }

    /// A connection the channel asked for is up.
    pub(crate) fn handle_connected(&mut self, now: Time, conn: ConnId) {
        let State::Hunting(h) = &mut self.state else {
            self.actions.push_back(Action::Close { conn });
            return;
        };
        let Some(i) = h.attempts.iter().position(|a| a.conn == conn) else {
            self.actions.push_back(Action::Close { conn });
            return;
        };
        let won = h.attempts.swap_remove(i);
        for a in std::mem::take(&mut h.attempts) {
            self.actions.push_back(Action::Close { conn: a.conn });
        }
        tracing::debug!(registrar = %won.addr, "connected to a registrar");
        self.server_id = self
            .announced
            .iter()
            .find(|a| a.addr == won.addr)
            .map(|a| a.server);
        self.state = State::Connected {
            conn,
            addr: won.addr,
        };
        self.backoff = self.cfg.hunt_retry_delay;
        self.events.push_back(ChanEvent::Connected);
        self.flush(now);
    }

    /// A connection attempt failed.
    pub(crate) fn handle_connect_failed(&mut self, now: Time, conn: ConnId) {
        if let State::Hunting(h) = &mut self.state {
            if let Some(i) = h.attempts.iter().position(|a| a.conn == conn) {
                let a = h.attempts.swap_remove(i);
                tracing::debug!(registrar = %a.addr, "registrar connection failed");
                self.fill(now);
                return;
            }
        }
        self.handle_closed(now, conn);
    }

    /// A connection was closed by the peer or failed.
    pub(crate) fn handle_closed(&mut self, now: Time, conn: ConnId) {
        self.side.retain(|(c, _)| *c != conn);
        match &mut self.state {
            State::Connected { conn: c, .. } if *c == conn => {
                tracing::debug!("registrar connection lost");
                self.drop_registrar(now, RequestError::NoRegistrar, false);
            }
            State::Hunting(h) => {
                if let Some(i) = h.attempts.iter().position(|a| a.conn == conn) {
                    h.attempts.swap_remove(i);
                    self.fill(now);
                }
            }
            _ => {}
        }
    }

    /// Gives up the current registrar: close it (unless already closed),
    /// re-queue or fail what was outstanding, then hunt if needed.
    fn drop_registrar(&mut self, now: Time, error: RequestError, close: bool) {
        if let State::Connected { conn, addr } = std::mem::replace(&mut self.state, State::Idle) {
            if close {
                self.actions.push_back(Action::Close { conn });
            }
            self.avoid = Some(addr);
        }
        self.server_id = None;
        self.requeue_outstanding(error, false);
        self.events.push_back(ChanEvent::Lost);
        self.maybe_hunt(now);
    }

    fn requeue_outstanding(&mut self, error: RequestError, free: bool) {
        let mut again = Vec::new();
        for s in std::mem::take(&mut self.outstanding) {
            if free || s.req.trials < self.cfg.request_max_trials.max(1) {
                again.push(s.req);
            } else {
                self.events.push_back(ChanEvent::Failed {
                    tag: s.req.tag,
                    error,
                });
            }
        }
        for r in again.into_iter().rev() {
            self.queue.push_front(r);
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Time) {
        match &mut self.state {
            State::Idle => {}
            State::Backoff { until } => {
                if *until <= now {
                    self.state = State::Idle;
                    self.maybe_hunt(now);
                }
            }
            State::Hunting(h) => {
                let (expired, kept): (Vec<Attempt>, Vec<Attempt>) = std::mem::take(&mut h.attempts)
                    .into_iter()
                    .partition(|a| a.deadline <= now);
                h.attempts = kept;
                for a in expired {
                    tracing::debug!(registrar = %a.addr, "registrar connect timeout");
                    self.actions.push_back(Action::Close { conn: a.conn });
                }
                self.fill(now);
            }
            State::Connected { .. } => {
                if self.outstanding.iter().any(|s| s.deadline <= now) {
                    tracing::debug!("registrar response timeout: hunting for another");
                    self.drop_registrar(now, RequestError::Timeout, true);
                }
            }
        }
    }

    /// A message arrived on one of the channel's connections. Returns
    /// nothing; results are events.
    pub(crate) fn handle_message(&mut self, _now: Time, conn: ConnId, bytes: &[u8]) {
        let msg = match AsapMessage::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable message from the registrar ignored");
                return;
            }
        };
        let current = matches!(self.state, State::Connected { conn: c, .. } if c == conn);
        if current {
            if let AsapMessage::Error(e) = &msg {
                let cause = e.error.first_code().unwrap_or(CauseCode::UNSPECIFIED);
                tracing::debug!(?cause, "ASAP_ERROR from the registrar");
                if let Some(s) = self.outstanding.pop_front() {
                    self.events.push_back(ChanEvent::Failed {
                        tag: s.req.tag,
                        error: RequestError::AsapError(cause),
                    });
                }
                return;
            }
            if let Some(key) = Key::of_response(&msg) {
                if let Some(i) = self
                    .outstanding
                    .iter()
                    .position(|s| s.req.key.as_ref() == Some(&key))
                {
                    let s = self.outstanding.remove(i).expect("index found above");
                    self.events.push_back(ChanEvent::Response {
                        tag: s.req.tag,
                        bytes: bytes.to_vec(),
                    });
                    return;
                }
            }
        }
        self.events.push_back(ChanEvent::Unsolicited {
            conn,
            bytes: bytes.to_vec(),
        });
    }

    /// A registrar connected to us (RSPLIB registrars do so to send
    /// keep-alives with the H bit after a takeover).
    pub(crate) fn handle_incoming(&mut self, conn: ConnId, from: RegistrarAddr) {
        self.side.push((conn, from));
    }

    /// Makes an incoming connection the home registrar connection (the H
    /// bit). Requests in flight on the old one are sent again on it.
    pub(crate) fn adopt(&mut self, now: Time, conn: ConnId, server: ServerId) {
        let Some(i) = self.side.iter().position(|(c, _)| *c == conn) else {
            return;
        };
        let (_, addr) = self.side.swap_remove(i);
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Connected { conn: old, .. } => {
                self.actions.push_back(Action::Close { conn: old })
            }
            State::Hunting(h) => {
                for a in h.attempts {
                    self.actions.push_back(Action::Close { conn: a.conn });
                }
            }
            _ => {}
        }
        self.requeue_outstanding(RequestError::NoRegistrar, true);
        tracing::debug!(registrar = %addr, server = %server, "adopted a new home registrar (H bit)");
        self.state = State::Connected { conn, addr };
        self.server_id = Some(server);
        self.backoff = self.cfg.hunt_retry_delay;
        self.events.push_back(ChanEvent::Connected);
        self.flush(now);
    }

    /// An ASAP Server Announce heard from `source` (IP and UDP port).
    pub(crate) fn handle_announce(
        &mut self,
        now: Time,
        source: std::net::SocketAddr,
        bytes: &[u8],
    ) {
        let Ok(AsapMessage::ServerAnnounce(a)) = AsapMessage::parse(bytes) else {
            return;
        };
        let proto = self.cfg.announce_proto;
        let want = proto.transport_kind();
        let addr = a
            .transports
            .iter()
            .find(|t| t.kind == want)
            .map(|t| RegistrarAddr {
                proto,
                addrs: t
                    .addresses
                    .iter()
                    .filter(|ip| AddressScope::of(ip) > AddressScope::LinkLocal)
                    .map(|ip| std::net::SocketAddr::new(ip, t.port))
                    .collect(),
            })
            .filter(|r| !r.addrs.is_empty())
            .unwrap_or(RegistrarAddr {
                proto,
                addrs: vec![source],
            });
        let expires = now + self.cfg.announce_timeout;
        match self
            .announced
            .iter_mut()
            .find(|e| e.server == a.server_id && e.addr == addr)
        {
            Some(e) => e.expires = expires,
            None => {
                tracing::debug!(server = %a.server_id, registrar = %addr, "registrar learnt from an announce");
                self.announced.retain(|e| e.server != a.server_id);
                self.announced.push(Announced {
                    server: a.server_id,
                    addr,
                    expires,
                });
            }
        }
        if matches!(self.state, State::Hunting(_)) {
            self.fill(now);
        }
    }

    /// Sends `bytes` on `conn` right away if it is a registrar connection
    /// (keep-alive acks go where the keep-alive came from).
    pub(crate) fn send_on(&mut self, now: Time, conn: ConnId, tag: u64, bytes: Vec<u8>) {
        let mut r = Request::new(tag, bytes, None);
        r.only_on = Some(conn);
        self.queue.push_back(r);
        if matches!(self.state, State::Connected { .. }) {
            self.flush(now);
        } else {
            // Not connected: an ack has nowhere to go.
            self.queue.retain(|r| r.only_on.is_none());
        }
    }
}
