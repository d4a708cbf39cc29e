//! The seam between the protocol logic ([`crate::core::Core`]) and the I/O
//! runtime. A driver owns one core's sockets and its event loop, feeds
//! received messages to its `Core`, writes what the `Core` queues, and moves
//! mesh batches between cores.
//!
//! * [`epoll`]: the default. A plain per-core loop (mio over epoll) that reads
//!   many messages per system call (`read` of a whole TCP buffer,
//!   `recvmmsg` for SCTP) and writes once per connection per wake-up
//!   (`write`, `sendmmsg`).
//! * [`glommio`]: glommio executors, kept for comparison (see
//!   ARCHITECTURE.md for the measurements behind the choice).

pub mod epoll;
pub mod glommio;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use crate::config::Settings;
use crate::core::Core;
use crate::metrics::CoreMetrics;

/// Complete messages of one read handed to [`Core::handle_asap_many`] at a
/// time (it prefetches within a batch).
const BATCH: usize = 32;

/// Everything one shard core needs to run.
pub struct CoreSetup {
    /// Core index (also the shard index).
    pub index: usize,
    /// The protocol logic.
    pub core: Core,
    /// Listening TCP sockets (non-blocking).
    pub tcp: Vec<std::net::TcpListener>,
    /// Listening SCTP sockets (non-blocking).
    pub sctp: Vec<socket2::Socket>,
    /// Mesh batches for this core.
    pub inbox: Receiver<Vec<u8>>,
    /// Mesh senders, by destination core.
    pub outboxes: Vec<Sender<Vec<u8>>>,
    /// Wakes a core (by index) after sending it a batch.
    pub wakers: Arc<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// The registrar's start: time zero for the shard.
    pub start: Instant,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Set when the registrar shuts down.
    pub shutdown: Arc<AtomicBool>,
    /// This core's metrics.
    pub metrics: Arc<CoreMetrics>,
}

impl std::fmt::Debug for CoreSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreSetup")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}
