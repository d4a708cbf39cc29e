//! The pool element role, sans I/O: registration with the home registrar,
//! re-registration on its interval (carrying load changes), keep-alive
//! answers, home changes (failure, H bit) and deregistration.
//!
//! Drive it like every core of this crate: feed `handle_*` inputs with the
//! current [`Time`], then drain [`PoolElementCore::poll_action`] (things for
//! the runtime to do) and [`PoolElementCore::poll_event`] (things to tell
//! the application), and call [`PoolElementCore::handle_timeout`] at
//! [`PoolElementCore::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;

use rserpool_wire::asap::{
    AsapMessage, Deregistration, EndpointKeepAliveAck, Registration, RegistrationResponse,
};
use rserpool_wire::{CauseCode, Encode, Policy, PoolElement, ServerId, Transport, TransportKind};

use crate::action::Action;
use crate::channel::{ChanEvent, Channel, Key, Request, RequestError};
use crate::config::{PeSpec, RegistrarConfig};
use crate::time::{Time, earliest};
use crate::types::{ConnId, Proto, RegistrarAddr, load_of, with_load};

/// Where a pool element stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeState {
    /// Not asked to register yet.
    Idle,
    /// First registration sent or waiting for a registrar.
    Registering,
    /// A registrar granted the registration (re-registrations keep it so).
    Registered,
    /// The first registration was refused with this cause.
    Rejected(CauseCode),
    /// Deregistration sent.
    Deregistering,
    /// Deregistered (or gave up doing so); the core is finished.
    Deregistered,
}

/// What a pool element core tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeEvent {
    /// A (re-)registration was granted by the registrar with this id (if
    /// known). `first` for the very first one.
    Registered {
        /// The first grant of this PE.
        first: bool,
        /// The home registrar's id, when known.
        server: Option<ServerId>,
    },
    /// The registrar refused a (re-)registration.
    Rejected {
        /// Why.
        cause: CauseCode,
    },
    /// A registration got no answer (it is sent again once a registrar is
    /// reachable).
    RegistrationFailed {
        /// Why.
        error: RequestError,
    },
    /// A new home registrar connection is up (after a failure, or adopted
    /// on a keep-alive with the H bit); the PE registers there at once.
    HomeChanged {
        /// Where it is.
        registrar: RegistrarAddr,
        /// Its id, when known.
        server: Option<ServerId>,
    },
    /// The home registrar connection was lost; a hunt follows.
    RegistrarLost,
    /// A keep-alive was answered.
    KeepAlive {
        /// The registrar that sent it.
        server: ServerId,
        /// Its H bit.
        home: bool,
    },
    /// Deregistration finished: `Ok` when the registrar confirmed it.
    Deregistered {
        /// The outcome.
        result: Result<(), RequestError>,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct PoolElementCore {
    ch: Channel,
    spec: PeSpec,
    state: PeState,
    registered_once: bool,
    reg_tag: Option<u64>,
    reg_dirty: bool,
    dereg_tag: Option<u64>,
    next_tag: u64,
    next_rereg: Option<Time>,
    events: VecDeque<PeEvent>,
}

impl PoolElementCore {
    /// A core for one PE (one pool handle and PE identifier).
    pub fn new(spec: PeSpec, registrars: RegistrarConfig) -> Self {
        Self {
            ch: Channel::new(registrars),
            spec,
            state: PeState::Idle,
            registered_once: false,
            reg_tag: None,
            reg_dirty: false,
            dereg_tag: None,
            next_tag: 1,
            next_rereg: None,
            events: VecDeque::new(),
        }
    }

    /// What is registered.
    pub fn spec(&self) -> &PeSpec {
        &self.spec
    }

    /// Where the PE stands.
    pub fn state(&self) -> PeState {
        self.state
    }

    /// The home registrar connection, if one is up.
    pub fn home(&self) -> Option<(ConnId, &RegistrarAddr)> {
        self.ch.current()
    }

    /// The home registrar's id, when known.
    pub fn home_server(&self) -> Option<ServerId> {
        self.ch.server_id()
    }

    /// Starts registering: hunts for a registrar and sends the registration.
    pub fn register(&mut self, now: Time) {
        if matches!(self.state, PeState::Idle | PeState::Rejected(_)) {
            self.state = PeState::Registering;
            self.ch.set_keep_connected(now, true);
            self.send_registration(now);
            self.pump(now);
        }
    }

    /// Changes the policy (or its values); registers again at once.
    pub fn set_policy(&mut self, now: Time, policy: Policy) {
        self.spec.policy = policy;
        self.reregister_now(now);
    }

    /// Updates the load of an adaptive policy. As RSPLIB, a change of at
    /// least 1 % of the load range is registered at once; smaller ones go
    /// with the next periodic re-registration. Policies without a load
    /// ignore it.
    pub fn set_load(&mut self, now: Time, load: u32) {
        let Some(old) = load_of(&self.spec.policy) else {
            return;
        };
        self.spec.policy = with_load(self.spec.policy, load);
        if old.abs_diff(load) >= u32::MAX / 100 {
            self.reregister_now(now);
        }
    }

    fn reregister_now(&mut self, now: Time) {
        if matches!(self.state, PeState::Registered | PeState::Registering) {
            if self.reg_tag.is_some() {
                self.reg_dirty = true;
            } else {
                self.send_registration(now);
            }
            self.pump(now);
        }
    }

    /// Deregisters; [`PeEvent::Deregistered`] follows.
    pub fn deregister(&mut self, now: Time) {
        match self.state {
            PeState::Deregistering | PeState::Deregistered => return,
            PeState::Idle | PeState::Rejected(_) => {
                self.finish(Ok(()));
                return;
            }
            _ => {}
        }
        self.state = PeState::Deregistering;
        self.next_rereg = None;
        let tag = self.tag();
        self.dereg_tag = Some(tag);
        let m = AsapMessage::Deregistration(Deregistration {
            pool_handle: self.spec.pool.as_wire(),
            pe_id: self.spec.id,
        });
        self.ch.set_keep_connected(now, false);
        self.ch.submit(
            now,
            Request::new(
                tag,
                encode(&m),
                Some(Key::Deregistration(self.spec.pool.clone(), self.spec.id)),
            ),
        );
        self.pump(now);
    }

    fn finish(&mut self, result: Result<(), RequestError>) {
        self.state = PeState::Deregistered;
        self.next_rereg = None;
        self.ch.close_all();
        self.events.push_back(PeEvent::Deregistered { result });
    }

    fn tag(&mut self) -> u64 {
        let t = self.next_tag;
        self.next_tag += 1;
        t
    }

    /// The registration message as it would be sent now.
    pub fn registration_message(&self) -> Vec<u8> {
        let addrs = match self.spec.proto {
            Proto::Sctp => &self.spec.addresses[..],
            Proto::Tcp => &self.spec.addresses[..self.spec.addresses.len().min(1)],
        };
        let user_transport = match self.spec.proto {
            Proto::Sctp => Transport::sctp(self.spec.port, self.spec.transport_use, addrs),
            Proto::Tcp => Transport::tcp(self.spec.port, self.spec.transport_use, addrs),
        };
        debug_assert!(matches!(
            user_transport.kind,
            TransportKind::Sctp | TransportKind::Tcp
        ));
        encode(&AsapMessage::Registration(Registration {
            pool_handle: self.spec.pool.as_wire(),
            element: PoolElement {
                id: self.spec.id,
                home_server: self.ch.server_id().unwrap_or_default(),
                registration_life: self.spec.registration_life_wire(),
                user_transport,
                policy: self.spec.policy.into(),
                asap_transport: None,
            },
        }))
    }

    /// Sends the registration if a registrar is connected; otherwise it goes
    /// out when one is (built then, so that it names the home registrar).
    fn send_registration(&mut self, now: Time) {
        if self.ch.current().is_none() {
            return;
        }
        let tag = self.tag();
        self.reg_tag = Some(tag);
        self.reg_dirty = false;
        let bytes = self.registration_message();
        self.ch.submit(
            now,
            Request::new(
                tag,
                bytes,
                Some(Key::Registration(self.spec.pool.clone(), self.spec.id)),
            ),
        );
    }

    /// The next thing for the runtime to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.ch.poll_action()
    }

    /// The next thing to tell the application.
    pub fn poll_event(&mut self) -> Option<PeEvent> {
        self.events.pop_front()
    }

    /// When [`PoolElementCore::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Time> {
        earliest(self.ch.poll_timeout(), self.next_rereg)
    }

    /// Timers: hunt and response timeouts, re-registration.
    pub fn handle_timeout(&mut self, now: Time) {
        self.ch.handle_timeout(now);
        if self.next_rereg.is_some_and(|t| t <= now) {
            self.next_rereg = Some(now + self.spec.reregistration_interval);
            if self.state == PeState::Registered && self.reg_tag.is_none() {
                self.send_registration(now);
            }
        }
        self.pump(now);
    }

    /// A connection asked for with [`Action::ConnectRegistrar`] is up.
    pub fn handle_connected(&mut self, now: Time, conn: ConnId) {
        self.ch.handle_connected(now, conn);
        self.pump(now);
    }

    /// A connection attempt failed.
    pub fn handle_connect_failed(&mut self, now: Time, conn: ConnId) {
        self.ch.handle_connect_failed(now, conn);
        self.pump(now);
    }

    /// A connection was closed or broke.
    pub fn handle_closed(&mut self, now: Time, conn: ConnId) {
        self.ch.handle_closed(now, conn);
        self.pump(now);
    }

    /// A registrar opened a connection to the PE (RSPLIB registrars do after
    /// a takeover, to send a keep-alive with the H bit).
    pub fn handle_incoming(&mut self, now: Time, conn: ConnId, from: SocketAddr, proto: Proto) {
        self.ch.handle_incoming(
            conn,
            RegistrarAddr {
                proto,
                addrs: vec![from],
            },
        );
        self.pump(now);
    }

    /// A fresh connection id for [`PoolElementCore::handle_incoming`].
    pub fn alloc_conn(&mut self) -> ConnId {
        self.ch.alloc_conn()
    }

    /// One ASAP message received on a registrar connection.
    pub fn handle_message(&mut self, now: Time, conn: ConnId, bytes: &[u8]) {
        self.ch.handle_message(now, conn, bytes);
        self.pump(now);
    }

    /// An ASAP Server Announce heard from `source` (IP address and UDP port).
    pub fn handle_announce(&mut self, now: Time, source: SocketAddr, bytes: &[u8]) {
        self.ch.handle_announce(now, source, bytes);
        self.pump(now);
    }

    fn pump(&mut self, now: Time) {
        while let Some(ev) = self.ch.poll_event() {
            match ev {
                ChanEvent::Connected => {
                    if let Some((_, addr)) = self.ch.current() {
                        self.events.push_back(PeEvent::HomeChanged {
                            registrar: addr.clone(),
                            server: self.ch.server_id(),
                        });
                    }
                    if matches!(self.state, PeState::Registered | PeState::Registering)
                        && self.reg_tag.is_none()
                    {
                        self.send_registration(now);
                    }
                }
                ChanEvent::Lost => self.events.push_back(PeEvent::RegistrarLost),
                ChanEvent::HuntFailed => {
                    if matches!(self.state, PeState::Registered | PeState::Registering) {
                        self.events.push_back(PeEvent::RegistrationFailed {
                            error: RequestError::NoRegistrar,
                        });
                    }
                }
                ChanEvent::Response { tag, bytes } => self.on_response(now, tag, &bytes),
                ChanEvent::Failed { tag, error } => {
                    if Some(tag) == self.reg_tag {
                        self.reg_tag = None;
                        self.events.push_back(PeEvent::RegistrationFailed { error });
                        if self.ch.current().is_some()
                            && matches!(self.state, PeState::Registered | PeState::Registering)
                        {
                            // The registrar is there but refused to parse
                            // it: try again later rather than in a loop.
                            self.next_rereg = Some(now + self.ch.config().response_timeout);
                        }
                    } else if Some(tag) == self.dereg_tag {
                        self.dereg_tag = None;
                        self.finish(Err(error));
                    }
                }
                ChanEvent::Unsolicited { conn, bytes } => self.on_unsolicited(now, conn, &bytes),
            }
        }
    }

    fn on_response(&mut self, now: Time, tag: u64, bytes: &[u8]) {
        let Ok(msg) = AsapMessage::parse(bytes) else {
            return;
        };
        if Some(tag) == self.reg_tag {
            self.reg_tag = None;
            let AsapMessage::RegistrationResponse(RegistrationResponse { reject, error, .. }) = msg
            else {
                return;
            };
            if reject {
                let cause = error
                    .and_then(|e| e.first_code())
                    .unwrap_or(CauseCode::UNSPECIFIED);
                tracing::warn!(pool = %self.spec.pool, pe = %self.spec.id, ?cause, "registration refused");
                self.events.push_back(PeEvent::Rejected { cause });
                if !self.registered_once {
                    self.state = PeState::Rejected(cause);
                    self.next_rereg = None;
                    self.ch.set_keep_connected(now, false);
                } else {
                    self.next_rereg = Some(now + self.spec.reregistration_interval);
                }
                return;
            }
            let first = !self.registered_once;
            self.registered_once = true;
            if self.state == PeState::Registering {
                self.state = PeState::Registered;
            }
            self.next_rereg = Some(now + self.spec.reregistration_interval);
            self.events.push_back(PeEvent::Registered {
                first,
                server: self.ch.server_id(),
            });
            if self.reg_dirty && self.state == PeState::Registered {
                self.send_registration(now);
            }
        } else if Some(tag) == self.dereg_tag {
            self.dereg_tag = None;
            let ok = matches!(msg, AsapMessage::DeregistrationResponse(d) if d.error.is_none());
            let result = if ok {
                Ok(())
            } else {
                Err(RequestError::AsapError(match msg {
                    AsapMessage::DeregistrationResponse(d) => d
                        .error
                        .and_then(|e| e.first_code())
                        .unwrap_or(CauseCode::UNSPECIFIED),
                    _ => CauseCode::UNSPECIFIED,
                }))
            };
            self.finish(result);
        }
    }

    fn on_unsolicited(&mut self, now: Time, conn: ConnId, bytes: &[u8]) {
        let Ok(msg) = AsapMessage::parse(bytes) else {
            return;
        };
        match msg {
            AsapMessage::EndpointKeepAlive(ka) => {
                if ka.pool_handle.as_bytes() != self.spec.pool.as_bytes()
                    || ka.pe_id.is_some_and(|id| id != self.spec.id)
                {
                    // RFC 5352 KA1: not ours, discard (RSPLIB: no ACK for an
                    // unknown PE, so the registrar gives up on it).
                    return;
                }
                if !matches!(self.state, PeState::Registered | PeState::Registering) {
                    return;
                }
                let current = self.ch.current().map(|(c, _)| c);
                if current != Some(conn) {
                    if ka.home {
                        self.ch.adopt(now, conn, ka.server_id);
                    }
                } else {
                    self.ch.set_server_id(ka.server_id);
                }
                let ack = encode(&AsapMessage::EndpointKeepAliveAck(EndpointKeepAliveAck {
                    pool_handle: self.spec.pool.as_wire(),
                    pe_id: self.spec.id,
                }));
                let tag = self.tag();
                self.ch.send_on(now, conn, tag, ack);
                self.events.push_back(PeEvent::KeepAlive {
                    server: ka.server_id,
                    home: ka.home,
                });
            }
            AsapMessage::DeregistrationResponse(d)
                if d.pool_handle.as_bytes() == self.spec.pool.as_bytes()
                    && d.pe_id == self.spec.id
                    && self.state == PeState::Registered =>
            {
                // The registrar let the registration expire (RFC 5352
                // section 3.2): register again at once.
                tracing::info!(pool = %self.spec.pool, pe = %self.spec.id, "registration expired at the registrar; registering again");
                if self.reg_tag.is_none() {
                    self.send_registration(now);
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn encode(m: &AsapMessage<'_>) -> Vec<u8> {
    m.to_vec()
        .expect("messages built by the client always encode")
}
