//! The replication core: the thread that will speak ENRP to peer registrars.
//!
//! It exists from the start: the shards send it every change of the PEs
//! this registrar owns (bounded channel), and it can apply changes to the
//! shards (ENRP Handle Updates routed to the owning shard over the mesh,
//! `apply`, driven by [`Control`] messages). The ENRP protocol state machine (presence,
//! handle-table download, takeover) is the subject of its own piece of work;
//! until then this core keeps the event stream flowing and sends the ASAP
//! Server Announces, which need no shard state.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use rand::Rng;
use rserpool_wire::asap::ServerAnnounce;
use rserpool_wire::enrp::EnrpMessage;
use rserpool_wire::{AsapMessage, Encode, Seq, ServerId};

use crate::core::ToReplication;
use crate::metrics::ReplicationMetrics;
use rserpool_shard::mesh::Batch;

/// Where and how to announce.
#[derive(Debug, Clone)]
pub struct Announce {
    /// Multicast group.
    pub group: SocketAddr,
    /// UDP source port: the ASAP port, as RSPLIB does (its clients connect
    /// to the announce's source port when it carries no transport).
    pub source_port: u16,
    /// Mean period.
    pub interval: Duration,
    /// TTL.
    pub ttl: u32,
}

/// A request to the replication core.
#[derive(Debug)]
pub enum Control {
    /// Apply an ENRP Handle Update from `peer` to the owning shard.
    Apply {
        /// The peer's server id.
        peer: u32,
        /// The encoded ENRP message.
        msg: Vec<u8>,
    },
}

/// The replication core's setup.
pub struct ReplicationSetup {
    /// Shard events.
    pub events: Receiver<ToReplication>,
    /// Requests.
    pub control: Receiver<Control>,
    /// Mesh senders to the shard cores.
    pub outboxes: Vec<Sender<Vec<u8>>>,
    /// Wakes shard core `i`.
    pub wakers: Arc<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Number of shards.
    pub shards: usize,
    /// This registrar's id.
    pub server_id: u32,
    /// Announces, if on.
    pub announce: Option<Announce>,
    /// Shutdown flag.
    pub shutdown: Arc<AtomicBool>,
    /// Counters.
    pub metrics: Arc<ReplicationMetrics>,
}

impl std::fmt::Debug for ReplicationSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationSetup")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Runs the replication core until shutdown.
pub fn run(s: ReplicationSetup) {
    let mut announcer = s
        .announce
        .as_ref()
        .and_then(|a| match Announcer::new(a, s.server_id) {
            Ok(x) => Some(x),
            Err(e) => {
                tracing::warn!(group = %a.group, error = %e, "cannot send ASAP announces");
                None
            }
        });
    let mut rng = rand::rng();
    let mut next_announce = Instant::now();
    while !s.shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let (Some(an), true) = (announcer.as_mut(), now >= next_announce) {
            if an.send() {
                s.metrics.announces.inc();
            }
            // Uniformly within +-12.5 % of the period, like RSPLIB.
            let base = an.interval.as_micros() as u64;
            let jitter = base / 8;
            next_announce =
                now + Duration::from_micros(base - jitter + rng.random_range(0..=2 * jitter));
        }
        let wait = if announcer.is_some() {
            next_announce.saturating_duration_since(now)
        } else {
            Duration::from_millis(200)
        };
        let wait = wait.min(Duration::from_millis(200));
        crossbeam::select! {
            recv(s.events) -> ev => match ev {
                Ok(ToReplication::Shard(batch)) => {
                    s.metrics.updates.add(batch.len() as u64);
                    for e in &batch {
                        tracing::trace!(?e, "handle-space change");
                    }
                }
                Err(_) => break,
            },
            recv(s.control) -> c => match c {
                Ok(Control::Apply { peer, msg }) => apply(&s, peer, &msg),
                Err(_) => {}
            },
            default(wait) => {}
        }
    }
}

/// Routes an ENRP Handle Update to the shard owning its pool.
fn apply(s: &ReplicationSetup, peer: u32, msg: &[u8]) {
    let Ok(EnrpMessage::HandleUpdate(u)) = EnrpMessage::parse(msg) else {
        tracing::warn!(peer, "not an ENRP Handle Update; ignored");
        return;
    };
    let shard = rserpool_shard::shard_for(u.pool_handle.as_bytes(), s.shards);
    let mut b = Batch::default();
    b.enrp(peer, msg);
    if let Some(tx) = s.outboxes.get(shard) {
        if tx.send_timeout(b.buf, Duration::from_millis(100)).is_ok() {
            if let Some(w) = s.wakers.get(shard) {
                w();
            }
        }
    }
}

struct Announcer {
    socket: socket2::Socket,
    group: SocketAddr,
    interval: Duration,
    msg: Vec<u8>,
    interfaces: Vec<Ipv4Addr>,
    refreshed: Instant,
}

impl Announcer {
    fn new(a: &Announce, server_id: u32) -> std::io::Result<Self> {
        let socket = rserpool_net::mcast::sender(a.group, None, a.ttl, a.source_port)?;
        let msg = AsapMessage::ServerAnnounce(ServerAnnounce {
            server_id: ServerId(server_id),
            transports: Seq::empty(),
        })
        .to_vec()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            socket,
            group: a.group,
            interval: a.interval,
            msg,
            interfaces: rserpool_net::mcast::ipv4_multicast_interfaces(),
            refreshed: Instant::now(),
        })
    }

    /// Sends one announce out of every multicast interface (or the default
    /// one if there is none). Returns whether at least one copy left.
    fn send(&mut self) -> bool {
        if self.refreshed.elapsed() > Duration::from_secs(60) {
            self.interfaces = rserpool_net::mcast::ipv4_multicast_interfaces();
            self.refreshed = Instant::now();
        }
        let to = socket2::SockAddr::from(self.group);
        if self.interfaces.is_empty() || !self.group.is_ipv4() {
            return self.socket.send_to(&self.msg, &to).is_ok();
        }
        let mut sent = false;
        for ifa in &self.interfaces {
            if self.socket.set_multicast_if_v4(ifa).is_ok() {
                match self.socket.send_to(&self.msg, &to) {
                    Ok(_) => sent = true,
                    Err(e) => tracing::debug!(interface = %ifa, error = %e, "announce not sent"),
                }
            }
        }
        sent
    }
}
