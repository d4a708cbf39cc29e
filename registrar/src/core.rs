//! What one core does with ASAP messages, independent of the I/O runtime.
//!
//! A message is parsed on the core whose socket received it. Errors are
//! answered there (an ASAP_ERROR with the cause the codec maps the error
//! to). A request is then routed by its pool handle to the shard that owns
//! the pool: the local one is called directly, a remote one gets the message
//! through the mesh ([`rserpool_shard::mesh`]) and its answer comes back the same way.
//! Shard outputs (keep-alives, unsolicited notices, association aborts) go to
//! the connection's core; replication events go to the replication core.
//!
//! The driver owns the sockets and calls: [`Core::handle_asap`] per received
//! message, [`Core::handle_batch`] per mesh batch, [`Core::handle_timeout`]
//! when [`Core::poll_timeout`] says, [`Core::connection_closed`], and sends
//! what [`Core::take_batches`] returns.

use std::net::IpAddr;

use crossbeam::channel::Sender;
use rserpool_shard::{Association, Event, Shard, Target, Time};
use rserpool_wire::asap::AsapError;
use rserpool_wire::enrp::EnrpMessage;
use rserpool_wire::{
    AsapMessage, AsapType, Cause, CauseCode, Encode, OperationError, Reports, ServerId,
    TransportKind,
};

use crate::metrics::CoreMetrics;
use crate::ratelimit::Limiter;
use rserpool_shard::mesh::{self, Batch, Record, Route, core_of};

/// What a connection is, as the protocol logic needs it.
#[derive(Debug)]
pub struct ConnMeta {
    /// Connection id (names its core, see [`mesh::core_of`]).
    pub id: u64,
    /// SCTP or TCP.
    pub transport: TransportKind,
    /// The peer's addresses.
    pub addrs: Vec<IpAddr>,
    /// The peer's port.
    pub port: u16,
    /// Handle-resolution rate limiter (created on first use, if limited).
    pub hr_limit: Option<Limiter>,
    /// Unreachable-report rate limiter.
    pub eu_limit: Option<Limiter>,
    /// Whether the peer has registered PEs here (then it is never closed
    /// for idleness).
    pub registered: bool,
}

impl ConnMeta {
    /// A new connection's metadata.
    pub fn new(id: u64, transport: TransportKind, addrs: Vec<IpAddr>, port: u16) -> Self {
        Self {
            id,
            transport,
            addrs,
            port,
            hr_limit: None,
            eu_limit: None,
            registered: false,
        }
    }

    fn association(&self) -> Association<'_> {
        Association {
            id: self.id,
            transport: self.transport,
            addrs: &self.addrs,
            port: self.port,
        }
    }
}

/// Where the core puts messages for its own connections.
pub trait LocalOut {
    /// Queue `msg` for local connection `assoc` (dropped if it is gone).
    fn deliver(&mut self, assoc: u64, msg: &[u8]);
    /// Abort local connection `assoc`.
    fn abort(&mut self, assoc: u64);
}

/// Something for the replication core.
#[derive(Debug)]
pub enum ToReplication {
    /// A shard's replication events of one wake-up, in order (one channel
    /// message and one wake-up of the replication core per batch, not per
    /// event).
    Shard(Vec<Event>),
}

/// Limits the core enforces.
#[derive(Clone, Debug)]
pub struct CoreLimits {
    /// HR per second per association and pool.
    pub max_hr_rate: Option<f64>,
    /// EU per second per association and pool.
    pub max_eu_rate: Option<f64>,
    /// How far ahead [`Core::handle_asap_many`] prefetches (0: not at all;
    /// see [`rserpool_shard::pipeline::pipeline`]).
    pub prefetch_distance: usize,
    /// Prefetch only from this many PEs in the shard on: below, the whole
    /// handlespace stays in the caches and the prefetch stages cost more
    /// than they save ([`PREFETCH_MIN_PES`] in the registrar).
    pub prefetch_min_pes: usize,
}

/// Where prefetching starts to pay (measured with `benches/benches/core.rs`
/// on a 32 MiB-L3 host: at 10^3 PEs batches were 20-25 % slower with it, at
/// 10^4 already 1.4x faster).
pub const PREFETCH_MIN_PES: usize = 4096;

/// Messages [`Core::handle_asap_many`] pipelines at a time.
const MANY: usize = 64;

/// One core's protocol state.
pub struct Core {
    index: usize,
    shards: usize,
    shard: Option<Shard>,
    batches: Vec<Batch>,
    repl: Option<Sender<ToReplication>>,
    limits: CoreLimits,
    metrics: std::sync::Arc<CoreMetrics>,
    scratch: Vec<u8>,
    addrs: Vec<IpAddr>,
    transmits: Vec<(u64, usize, usize)>,
    events: Vec<Event>,
    repl_pending: Vec<Event>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("index", &self.index)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Core `index` of a layout with `shards` shards and `cores` cores in all
    /// (the replication core is index `shards`). `shard` is this core's
    /// shard if it is a shard core.
    pub fn new(
        index: usize,
        shards: usize,
        cores: usize,
        shard: Option<Shard>,
        repl: Option<Sender<ToReplication>>,
        limits: CoreLimits,
        metrics: std::sync::Arc<CoreMetrics>,
    ) -> Self {
        Self {
            index,
            shards,
            shard,
            batches: (0..cores).map(|_| Batch::default()).collect(),
            repl,
            limits,
            metrics,
            scratch: Vec::with_capacity(4096),
            addrs: Vec::new(),
            transmits: Vec::new(),
            events: Vec::new(),
            repl_pending: Vec::new(),
        }
    }

    /// This core's shard, if any.
    pub fn shard(&self) -> Option<&Shard> {
        self.shard.as_ref()
    }

    fn send(&mut self, assoc: u64, msg: &[u8], out: &mut impl LocalOut) {
        let core = core_of(assoc);
        if core == self.index {
            out.deliver(assoc, msg);
        } else if let Some(b) = self.batches.get_mut(core) {
            b.reply(assoc, msg);
        }
    }

    fn abort(&mut self, assoc: u64, out: &mut impl LocalOut) {
        let core = core_of(assoc);
        if core == self.index {
            out.abort(assoc);
        } else if let Some(b) = self.batches.get_mut(core) {
            b.abort(assoc);
        }
    }

    /// Answers a message that could not be decoded, if the RFC asks for a
    /// report (cause 0x1, 0x2, 0x3 with the offending bytes).
    fn report_error(
        &mut self,
        conn: &ConnMeta,
        bytes: &[u8],
        err: &rserpool_wire::Error,
        out: &mut impl LocalOut,
    ) {
        self.metrics.errors.inc();
        let Some(code) = err.cause() else { return };
        let info = err.offending(bytes).unwrap_or(&[]);
        // Keep the report within one message.
        let info = &info[..info.len().min(60_000)];
        let causes = [Cause::with_bytes(code, info)];
        let msg = AsapMessage::Error(AsapError {
            error: OperationError::new(&causes),
        });
        self.scratch.clear();
        push(&mut self.scratch, &msg);
        let reply = std::mem::take(&mut self.scratch);
        self.send(conn.id, &reply, out);
        self.scratch = reply;
    }

    /// One ASAP message from a connection of this core.
    pub fn handle_asap(
        &mut self,
        now: Time,
        conn: &mut ConnMeta,
        bytes: &[u8],
        out: &mut impl LocalOut,
    ) {
        self.handle_asap_routed(now, conn, bytes, None, out);
    }

    /// [`Core::handle_asap`], with the route of the pool handle peeked from
    /// `bytes` if the caller already computed it (`hint`: that handle and
    /// its route; used only if the parsed handle is the same).
    fn handle_asap_routed(
        &mut self,
        now: Time,
        conn: &mut ConnMeta,
        bytes: &[u8],
        hint: Option<(&[u8], Route)>,
        out: &mut impl LocalOut,
    ) {
        self.metrics.received.inc();
        let mut reports = Reports::new();
        let msg = match AsapMessage::parse_reporting(bytes, &mut reports) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(conn = conn.id, error = %e, "malformed ASAP message");
                return self.report_error(conn, bytes, &e, out);
            }
        };
        if !reports.is_empty() {
            // "Skip and report" parameters: the message is processed, the
            // sender is told (one cause 0x1 per parameter).
            let causes: Vec<Cause<'_>> = reports
                .iter()
                .map(|p| Cause::with_bytes(CauseCode::UNRECOGNIZED_PARAMETER, p))
                .collect();
            let m = AsapMessage::Error(AsapError {
                error: OperationError::new(&causes),
            });
            let mut buf = Vec::new();
            push(&mut buf, &m);
            self.send(conn.id, &buf, out);
        }
        let handle = match &msg {
            AsapMessage::Registration(r) => {
                conn.registered = true;
                r.pool_handle
            }
            AsapMessage::Deregistration(d) => d.pool_handle,
            AsapMessage::HandleResolution(h) => {
                if let Some(max) = self.limits.max_hr_rate {
                    let ok = conn.hr_limit.get_or_insert_with(Limiter::default).allow(
                        h.pool_handle.as_bytes(),
                        now.0,
                        max,
                    );
                    if !ok {
                        // RSPLIB answers like an unknown pool; so do we.
                        self.metrics.rate_limited.inc();
                        return self.unknown_pool(conn.id, h.pool_handle, out);
                    }
                }
                h.pool_handle
            }
            AsapMessage::EndpointKeepAliveAck(a) => a.pool_handle,
            AsapMessage::EndpointUnreachable(u) => {
                if let Some(max) = self.limits.max_eu_rate {
                    let ok = conn.eu_limit.get_or_insert_with(Limiter::default).allow(
                        u.pool_handle.as_bytes(),
                        now.0,
                        max,
                    );
                    if !ok {
                        self.metrics.rate_limited.inc();
                        return;
                    }
                }
                u.pool_handle
            }
            AsapMessage::Error(e) => {
                tracing::info!(conn = conn.id, cause = ?e.error.first_code(), "ASAP_ERROR from peer");
                return;
            }
            other => {
                // Messages a registrar does not take (cookies, business
                // cards, responses, announces): ignored.
                tracing::debug!(conn = conn.id, ty = %other.message_type(), "message not for a registrar");
                self.metrics.ignored.inc();
                return;
            }
        };
        let route = match hint {
            Some((h, r)) if h == handle.as_bytes() => r,
            _ => mesh::route_pool(handle.as_bytes(), self.shards),
        };
        match route {
            Route::Shard(s) if s == self.index => {
                self.run_local(now, &conn.association(), &msg, out)
            }
            Route::Shard(s) => {
                self.metrics.forwarded.inc();
                if let Some(b) = self.batches.get_mut(s) {
                    b.request(conn.id, conn.transport, conn.port, &conn.addrs, bytes);
                }
            }
            Route::All => {}
        }
    }

    /// Several ASAP messages from one connection, in order, as one read
    /// delivered them: exactly as [`Core::handle_asap`] on each in turn,
    /// with the memory of the local shard's pools fetched ahead (see
    /// [`Shard::pipelined`]) when [`CoreLimits::prefetch_distance`] is not 0
    /// and the shard is large enough ([`CoreLimits::prefetch_min_pes`]).
    /// At large handlespaces most of a request's time is waiting for main
    /// memory; this overlaps the waits of the messages of a batch.
    pub fn handle_asap_many(
        &mut self,
        now: Time,
        conn: &mut ConnMeta,
        msgs: &[&[u8]],
        out: &mut impl LocalOut,
    ) {
        let distance = self.limits.prefetch_distance;
        let big =
            (self.shard.as_ref()).is_some_and(|s| s.pe_count() >= self.limits.prefetch_min_pes);
        if distance == 0 || msgs.len() < 2 || !big {
            for m in msgs {
                self.handle_asap(now, conn, m, out);
            }
            return;
        }
        for chunk in msgs.chunks(MANY) {
            // Which messages name a pool of this core's shard (looked up
            // once, not at every stage).
            // For a message about one PE, also that PE and this association.
            // The routes are kept, so that no message is hashed twice.
            let mut local: [Option<Target<'_>>; MANY] = [None; MANY];
            let mut routes: [Option<(&[u8], Route)>; MANY] = [None; MANY];
            let mut any = false;
            for ((slot, route), m) in local.iter_mut().zip(routes.iter_mut()).zip(chunk) {
                let Some(h) = rserpool_wire::peek_pool_handle(m) else {
                    continue;
                };
                let r = mesh::route_pool(h, self.shards);
                *route = Some((h, r));
                if r == Route::Shard(self.index) {
                    *slot = Some(match rserpool_wire::peek_pe_id(m) {
                        Some(pe) => pe_target(m, h, pe, conn.id),
                        None => Target::pool(h),
                    });
                    any = true;
                }
            }
            if !any {
                for (m, &hint) in chunk.iter().zip(&routes) {
                    self.handle_asap_routed(now, conn, m, hint, out);
                }
                continue;
            }
            rserpool_shard::pipeline::pipeline(
                self,
                chunk.len(),
                distance,
                |core, j, state, stage| {
                    if let Some(shard) = &core.shard
                        && let Some(t) = local[j]
                    {
                        shard.prefetch_step(t, state, stage);
                    }
                },
                |core, j| core.handle_asap_routed(now, conn, chunk[j], routes[j], out),
            );
        }
    }

    fn unknown_pool(
        &mut self,
        assoc: u64,
        handle: rserpool_wire::PoolHandle<'_>,
        out: &mut impl LocalOut,
    ) {
        let causes = [Cause::new(CauseCode::UNKNOWN_POOL_HANDLE)];
        let m =
            AsapMessage::HandleResolutionResponse(rserpool_wire::asap::HandleResolutionResponse {
                accept: false,
                pool_handle: handle,
                policy: None,
                elements: rserpool_wire::Seq::empty(),
                error: Some(OperationError::new(&causes)),
            });
        self.scratch.clear();
        push(&mut self.scratch, &m);
        let reply = std::mem::take(&mut self.scratch);
        self.send(assoc, &reply, out);
        self.scratch = reply;
    }

    /// Runs a request against this core's shard and sends the answer.
    fn run_local(
        &mut self,
        now: Time,
        from: &Association<'_>,
        msg: &AsapMessage<'_>,
        out: &mut impl LocalOut,
    ) {
        let Some(shard) = self.shard.as_mut() else {
            return;
        };
        let mut reply = std::mem::take(&mut self.scratch);
        reply.clear();
        match msg {
            AsapMessage::Registration(r) => {
                self.metrics.registrations.inc();
                shard.handle_registration(now, from, r, &mut reply);
            }
            AsapMessage::Deregistration(d) => {
                self.metrics.deregistrations.inc();
                shard.handle_deregistration(now, from, d, &mut reply);
            }
            AsapMessage::HandleResolution(h) => {
                self.metrics.resolutions.inc();
                shard.handle_resolution(now, h, &mut reply);
            }
            AsapMessage::EndpointKeepAliveAck(a) => shard.handle_keep_alive_ack(now, from, a),
            AsapMessage::EndpointUnreachable(u) => {
                self.metrics.unreachable.inc();
                shard.handle_unreachable(now, u);
            }
            _ => {}
        }
        if !reply.is_empty() {
            self.send(from.id, &reply, out);
        }
        self.scratch = reply;
        self.drain_shard(out);
    }

    /// Sends what the shard produced on its own.
    fn drain_shard(&mut self, out: &mut impl LocalOut) {
        let Some(shard) = self.shard.as_mut() else {
            return;
        };
        let mut pending = std::mem::take(&mut self.scratch);
        let mut transmits = std::mem::take(&mut self.transmits);
        let mut events = std::mem::take(&mut self.events);
        pending.clear();
        while let Some(t) = shard.poll_transmit() {
            transmits.push((t.to, pending.len(), t.bytes.len()));
            pending.extend_from_slice(t.bytes);
        }
        events.extend(std::iter::from_fn(|| shard.poll_event()));
        for (to, start, len) in transmits.drain(..) {
            self.metrics.keep_alives.inc();
            self.send(to, &pending[start..start + len], out);
        }
        for e in events.drain(..) {
            match e {
                Event::AbortAssociation(a) => self.abort(a, out),
                other => {
                    if self.repl.is_some() {
                        self.repl_pending.push(other);
                    }
                }
            }
        }
        self.scratch = pending;
        self.transmits = transmits;
        self.events = events;
    }

    /// A batch of records from another core.
    pub fn handle_batch(&mut self, now: Time, batch: &[u8], out: &mut impl LocalOut) {
        let mut addrs = std::mem::take(&mut self.addrs);
        for rec in mesh::Records::new(batch) {
            match rec {
                Record::Request {
                    assoc,
                    transport,
                    port,
                    addrs: enc,
                    msg,
                } => {
                    mesh::addrs(enc, &mut addrs);
                    // Validated on the receiving core already.
                    if let Ok(m) = AsapMessage::parse(msg) {
                        let from = Association {
                            id: assoc,
                            transport,
                            addrs: &addrs,
                            port,
                        };
                        self.run_local(now, &from, &m, out);
                    }
                }
                Record::Reply { assoc, msg } => out.deliver(assoc, msg),
                Record::Lost { assoc } => {
                    if let Some(s) = self.shard.as_mut() {
                        s.handle_association_lost(now, assoc);
                    }
                    self.drain_shard(out);
                }
                Record::Abort { assoc } => out.abort(assoc),
                Record::Enrp { peer, msg } => {
                    if let (Some(s), Ok(EnrpMessage::HandleUpdate(u))) =
                        (self.shard.as_mut(), EnrpMessage::parse(msg))
                    {
                        s.apply_update(now, ServerId(peer), &u);
                    }
                    self.drain_shard(out);
                }
            }
        }
        self.addrs = addrs;
    }

    /// Connection `assoc` of this core closed: its PEs leave every shard.
    pub fn connection_closed(
        &mut self,
        now: Time,
        assoc: u64,
        registered: bool,
        out: &mut impl LocalOut,
    ) {
        if !registered {
            return;
        }
        if let Some(s) = self.shard.as_mut() {
            s.handle_association_lost(now, assoc);
        }
        for (i, b) in self.batches.iter_mut().enumerate().take(self.shards) {
            if i != self.index {
                b.lost(assoc);
            }
        }
        self.drain_shard(out);
    }

    /// Runs due shard timers.
    pub fn handle_timeout(&mut self, now: Time, out: &mut impl LocalOut) {
        loop {
            let more = self.shard.as_mut().is_some_and(|s| s.handle_timeout(now));
            self.drain_shard(out);
            if !more {
                break;
            }
        }
    }

    /// When [`Core::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.shard.as_ref().and_then(Shard::poll_timeout)
    }

    /// Sends the replication events gathered since the last call to the
    /// replication core as one batch (a full channel drops the batch and
    /// counts its events in `replication_dropped`). Drivers call it once per
    /// wake-up.
    pub fn flush_replication(&mut self) {
        if self.repl_pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.repl_pending);
        let n = batch.len() as u64;
        if let Some(tx) = &self.repl {
            if tx.try_send(ToReplication::Shard(batch)).is_err() {
                self.metrics.replication_dropped.add(n);
            }
        }
    }

    /// Replication events waiting for [`Core::flush_replication`].
    pub fn pending_replication(&self) -> usize {
        self.repl_pending.len()
    }

    /// The mesh batches of this wake-up, by destination core. Call once per
    /// wake-up, with [`Core::flush_replication`].
    pub fn take_batches(&mut self) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
        self.batches
            .iter_mut()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, b)| (i, std::mem::take(&mut b.buf)))
    }
}

fn push(out: &mut Vec<u8>, m: &impl Encode) {
    // Errors need values the registrar never builds: such a message is
    // dropped.
    let _ = m.append_to(out);
}

/// The prefetch target of message `m` about PE `pe` of pool `h`, received
/// on `conn`. Only a registration or a deregistration changes the
/// association's list of PEs, so only they name it: a keep-alive ack (whose
/// PE is already on its list) and an unreachable report (from a PU, whose
/// association lists no PEs) would fetch lines they never read. A
/// deregistration is a removal (the pool's last member moves into its slot).
fn pe_target<'a>(m: &[u8], h: &'a [u8], pe: u32, conn: u64) -> Target<'a> {
    match m.first().map(|&c| AsapType::from_code(c)) {
        Some(AsapType::Registration) => Target::pe(h, pe, conn),
        Some(AsapType::Deregistration) => Target::removal(h, pe, conn),
        _ => Target::pe(h, pe, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_shard::Config;
    use rserpool_wire::asap::{HandleResolution, Registration};
    use rserpool_wire::{
        HandleResolutionOption, PeId, PoolElement, PoolHandle, Transport, TransportUse,
    };

    #[test]
    fn only_registrations_and_deregistrations_prefetch_their_association() {
        for t in AsapType::ALL {
            let m = [t.code(), 0, 0, 4];
            let got = pe_target(&m, b"h", 5, 77);
            let want = matches!(t, AsapType::Registration | AsapType::Deregistration);
            assert_eq!(got.assoc, if want { 77 } else { 0 }, "{t:?}");
            assert_eq!(got.removes, *t == AsapType::Deregistration, "{t:?}");
            assert_eq!((got.handle, got.pe), (&b"h"[..], 5), "{t:?}");
        }
        assert_eq!(pe_target(&[], b"h", 5, 77).assoc, 0);
    }

    /// Collects what a core delivers to its own connections.
    #[derive(Default)]
    struct Out(Vec<(u64, Vec<u8>)>, Vec<u64>);

    impl LocalOut for Out {
        fn deliver(&mut self, assoc: u64, msg: &[u8]) {
            self.0.push((assoc, msg.to_vec()));
        }
        fn abort(&mut self, assoc: u64) {
            self.1.push(assoc);
        }
    }

    fn core(i: usize) -> Core {
        let cfg = Config {
            server_id: ServerId(0x42),
            min_address_scope: rserpool_shard::addr::Scope::Loopback,
            ..Config::default()
        };
        let limits = CoreLimits {
            max_hr_rate: None,
            max_eu_rate: None,
            prefetch_distance: 1,
            prefetch_min_pes: 0,
        };
        Core::new(
            i,
            2,
            3,
            Some(Shard::new(cfg)),
            None,
            limits,
            std::sync::Arc::default(),
        )
    }

    /// A pool handle whose shard (of 2) is `shard`.
    fn pool_on(shard: usize) -> String {
        (0..)
            .map(|i| format!("pool-{i}"))
            .find(|h| rserpool_shard::shard_for(h.as_bytes(), 2) == shard)
            .unwrap()
    }

    #[test]
    fn requests_for_another_shard_cross_the_mesh_and_answers_come_back() {
        let (mut c0, mut c1) = (core(0), core(1));
        let remote = pool_on(1);
        let lo = ["127.0.0.1".parse().unwrap()];
        // A PE connected to core 0 registers into a pool of shard 1.
        let mut pe = ConnMeta::new(
            mesh::make_assoc(0, 1, 5),
            TransportKind::Tcp,
            lo.to_vec(),
            4000,
        );
        let reg = AsapMessage::Registration(Registration {
            pool_handle: PoolHandle::new(remote.as_bytes()).unwrap(),
            element: PoolElement {
                id: PeId(9),
                home_server: ServerId(0),
                registration_life: 1000,
                user_transport: Transport::tcp(7000, TransportUse::DATA_ONLY, &lo),
                policy: rserpool_wire::Policy::RoundRobin {}.into(),
                asap_transport: None,
            },
        });
        let (mut out0, mut out1) = (Out::default(), Out::default());
        c0.handle_asap(Time(1), &mut pe, &reg.to_vec().unwrap(), &mut out0);
        assert!(out0.0.is_empty(), "not answered locally");
        let to1: Vec<(usize, Vec<u8>)> = c0.take_batches().collect();
        assert_eq!(to1.iter().map(|b| b.0).collect::<Vec<_>>(), vec![1]);
        c1.handle_batch(Time(2), &to1[0].1, &mut out1);
        assert!(out1.0.is_empty(), "the answer is for core 0's connection");
        assert_eq!(c1.shard().unwrap().pe_count(), 1);
        let back: Vec<(usize, Vec<u8>)> = c1.take_batches().collect();
        assert_eq!(back.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0]);
        c0.handle_batch(Time(3), &back[0].1, &mut out0);
        assert_eq!(out0.0.len(), 1);
        assert_eq!(out0.0[0].0, pe.id);
        assert!(
            matches!(AsapMessage::parse(&out0.0[0].1).unwrap(), AsapMessage::RegistrationResponse(r) if !r.reject)
        );

        // A resolution from a PU on core 0 gets the PE, through shard 1.
        let mut pu = ConnMeta::new(
            mesh::make_assoc(0, 1, 6),
            TransportKind::Tcp,
            lo.to_vec(),
            4001,
        );
        let hr = AsapMessage::HandleResolution(HandleResolution {
            subscribe: false,
            pool_handle: PoolHandle::new(remote.as_bytes()).unwrap(),
            option: Some(HandleResolutionOption { items: 3 }),
        });
        out0.0.clear();
        c0.handle_asap(Time(4), &mut pu, &hr.to_vec().unwrap(), &mut out0);
        let to1: Vec<(usize, Vec<u8>)> = c0.take_batches().collect();
        c1.handle_batch(Time(5), &to1[0].1, &mut out1);
        let back: Vec<(usize, Vec<u8>)> = c1.take_batches().collect();
        c0.handle_batch(Time(6), &back[0].1, &mut out0);
        let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&out0.0[0].1).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (
                out0.0[0].0,
                r.elements.iter().map(|e| e.id.0).collect::<Vec<_>>()
            ),
            (pu.id, vec![9])
        );

        // Core 0's PE connection closes: shard 1 hears of it and drops the PE.
        c0.connection_closed(Time(7), pe.id, true, &mut out0);
        let to1: Vec<(usize, Vec<u8>)> = c0.take_batches().collect();
        c1.handle_batch(Time(8), &to1[0].1, &mut out1);
        assert_eq!(c1.shard().unwrap().pe_count(), 0);
    }

    /// A message of the test mix: registrations, deregistrations and
    /// resolutions on pools of both shards, and some malformed frames.
    fn mixed_message(r: u64, pools: &[String], lo: &[IpAddr]) -> Vec<u8> {
        let pool = PoolHandle::new(pools[(r >> 8) as usize % pools.len()].as_bytes()).unwrap();
        let id = PeId(1 + (r >> 16) as u32 % 5);
        match r % 8 {
            0..=2 => AsapMessage::Registration(Registration {
                pool_handle: pool,
                element: PoolElement {
                    id,
                    home_server: ServerId(0),
                    registration_life: 1000,
                    user_transport: Transport::tcp(7000, TransportUse::DATA_ONLY, lo),
                    policy: rserpool_wire::Policy::RoundRobin {}.into(),
                    asap_transport: None,
                },
            })
            .to_vec()
            .unwrap(),
            3 => AsapMessage::Deregistration(rserpool_wire::asap::Deregistration {
                pool_handle: pool,
                pe_id: id,
            })
            .to_vec()
            .unwrap(),
            4 => {
                // Truncated: the right cause comes back, in its place.
                let mut m = AsapMessage::HandleResolution(HandleResolution {
                    subscribe: false,
                    pool_handle: pool,
                    option: None,
                })
                .to_vec()
                .unwrap();
                m.truncate(m.len() - 4);
                m[3] = m.len() as u8;
                m
            }
            _ => AsapMessage::HandleResolution(HandleResolution {
                subscribe: false,
                pool_handle: pool,
                option: Some(HandleResolutionOption { items: 2 }),
            })
            .to_vec()
            .unwrap(),
        }
    }

    #[test]
    fn many_messages_at_once_are_answered_exactly_as_one_by_one() {
        let (mut plain, mut many) = (core(0), core(0));
        let pools: Vec<String> = (0..12).map(|i| format!("pool-{i}")).collect();
        assert!(
            pools
                .iter()
                .any(|p| rserpool_shard::shard_for(p.as_bytes(), 2) == 1)
        );
        let lo = ["127.0.0.1".parse().unwrap()];
        let mut conn_a = ConnMeta::new(
            mesh::make_assoc(0, 1, 5),
            TransportKind::Tcp,
            lo.to_vec(),
            1,
        );
        let mut conn_b = ConnMeta::new(
            mesh::make_assoc(0, 1, 5),
            TransportKind::Tcp,
            lo.to_vec(),
            1,
        );
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut answered = 0;
        for round in 0..60u64 {
            let n = 1 + next() as usize % 100;
            let msgs: Vec<Vec<u8>> = (0..n).map(|_| mixed_message(next(), &pools, &lo)).collect();
            let t = Time(round * 1000);
            let (mut out_a, mut out_b) = (Out::default(), Out::default());
            for m in &msgs {
                plain.handle_asap(t, &mut conn_a, m, &mut out_a);
            }
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            many.handle_asap_many(t, &mut conn_b, &refs, &mut out_b);
            assert_eq!(out_a.0, out_b.0, "round {round}: local answers");
            assert_eq!(out_a.1, out_b.1, "round {round}: aborts");
            let (ba, bb): (Vec<_>, Vec<_>) = (
                plain.take_batches().collect(),
                many.take_batches().collect(),
            );
            assert_eq!(ba, bb, "round {round}: what goes to the other shard");
            answered += out_a.0.len();
        }
        let (a, b) = (plain.shard().unwrap(), many.shard().unwrap());
        assert!(a.pe_count() > 0 && answered > 1000, "the mix did something");
        assert_eq!(a.pe_count(), b.pe_count());
    }

    #[test]
    fn local_pools_are_answered_without_the_mesh() {
        let mut c0 = core(0);
        let local = pool_on(0);
        let mut pu = ConnMeta::new(mesh::make_assoc(0, 1, 1), TransportKind::Tcp, vec![], 1);
        let hr = AsapMessage::HandleResolution(HandleResolution {
            subscribe: false,
            pool_handle: PoolHandle::new(local.as_bytes()).unwrap(),
            option: None,
        });
        let mut out = Out::default();
        c0.handle_asap(Time(1), &mut pu, &hr.to_vec().unwrap(), &mut out);
        assert_eq!(out.0.len(), 1, "answered at once (unknown pool)");
        assert_eq!(c0.take_batches().count(), 0);
    }

    #[test]
    fn replication_events_of_a_wake_up_go_as_one_batch_in_order() {
        let (tx, rx) = crossbeam::channel::bounded(4);
        let cfg = Config {
            server_id: ServerId(0x42),
            min_address_scope: rserpool_shard::addr::Scope::Loopback,
            // As when ENRP peers are configured.
            replicate: true,
            ..Config::default()
        };
        let limits = CoreLimits {
            max_hr_rate: None,
            max_eu_rate: None,
            prefetch_distance: 1,
            prefetch_min_pes: 0,
        };
        let metrics: std::sync::Arc<CoreMetrics> = std::sync::Arc::default();
        let mut c = Core::new(
            0,
            1,
            2,
            Some(Shard::new(cfg)),
            Some(tx),
            limits,
            metrics.clone(),
        );
        let lo = ["127.0.0.1".parse().unwrap()];
        let mut pe = ConnMeta::new(
            mesh::make_assoc(0, 1, 5),
            TransportKind::Tcp,
            lo.to_vec(),
            4000,
        );
        let mut out = Out::default();
        let mut register = |c: &mut Core, id: u32| {
            let reg = AsapMessage::Registration(Registration {
                pool_handle: PoolHandle::new(b"repl").unwrap(),
                element: PoolElement {
                    id: PeId(id),
                    home_server: ServerId(0),
                    registration_life: 1000,
                    user_transport: Transport::tcp(7000, TransportUse::DATA_ONLY, &lo),
                    policy: rserpool_wire::Policy::RoundRobin {}.into(),
                    asap_transport: None,
                },
            });
            c.handle_asap(Time(1), &mut pe, &reg.to_vec().unwrap(), &mut out);
        };
        for id in [1, 2, 3] {
            register(&mut c, id);
        }
        // Nothing crosses to the replication core until the wake-up ends.
        assert!(rx.try_recv().is_err());
        assert_eq!(c.pending_replication(), 3);
        c.flush_replication();
        assert_eq!(c.pending_replication(), 0);
        let ToReplication::Shard(batch) = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err(), "one channel message for the batch");
        let ids: Vec<u32> = batch
            .iter()
            .map(|e| match e {
                Event::Update { action, bytes } => {
                    assert_eq!(*action, rserpool_wire::enrp::UpdateAction::AddPe);
                    // Pool Handle parameter ("repl": 4 + 4 bytes), then the
                    // Pool Element parameter, whose PE id follows its header.
                    u32::from_be_bytes(bytes[12..16].try_into().unwrap())
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        // An empty flush sends nothing.
        c.flush_replication();
        assert!(rx.try_recv().is_err());
        // A full channel (capacity 4) drops the batch and counts its events.
        for _ in 0..4 {
            register(&mut c, 1); // a re-registration is an update too
            c.flush_replication();
        }
        assert_eq!(metrics.replication_dropped.get(), 0);
        register(&mut c, 1);
        register(&mut c, 2);
        c.flush_replication();
        assert_eq!(metrics.replication_dropped.get(), 2);
        assert_eq!(rx.len(), 4);
    }
}
