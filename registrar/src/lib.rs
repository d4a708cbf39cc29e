//! The RSerPool registrar (ENRP server): the I/O shell around the handlespace
//! shards.
//!
//! Threads: one per shard ("shard cores", pinned), each accepting its own
//! connections on `SO_REUSEPORT` sockets and running the [`driver`] loop
//! around a [`core::Core`]; plus one replication core ([`replication`]).
//! See ARCHITECTURE.md for the core map and the message flow.
//!
//! Start-up errors are [`StartError`]s with a one-line message (port in use,
//! bad address, no SCTP, ...); nothing panics on configuration or input.

pub mod config;
pub mod core;
pub mod driver;
pub mod metrics;
pub mod ratelimit;
pub mod replication;
pub mod rsplib_args;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use config::{CoreChoice, Settings, TransportChoice};
use crossbeam::channel::{Sender, bounded};
use rand::Rng;
use rserpool_shard::{Config as ShardConfig, Shard};

/// Why the registrar could not start, in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be opened.
    #[error("cannot listen on {addr}/{proto}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// tcp or sctp.
        proto: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// SCTP was asked for and the kernel has none.
    #[error("--transport sctp: {0}")]
    NoSctp(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A running registrar.
pub struct Registrar {
    server_id: u32,
    asap_port: u16,
    sctp: bool,
    shutdown: Arc<AtomicBool>,
    failed: Arc<AtomicBool>,
    wakers: Arc<Vec<Box<dyn Fn() + Send + Sync>>>,
    threads: Vec<JoinHandle<()>>,
    control: Sender<replication::Control>,
    metrics: Arc<metrics::Registry>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("server_id", &self.server_id)
            .field("asap_port", &self.asap_port)
            .finish()
    }
}

fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            tracing::warn!(cpu, "could not pin thread");
        }
    }
}

impl Registrar {
    /// Opens every socket, then starts the cores. Returns once serving.
    pub fn start(s: Settings) -> Result<Self, StartError> {
        let server_id = s
            .server_id
            .unwrap_or_else(|| rand::rng().random_range(1..=u32::MAX));
        let sctp = match s.transport {
            TransportChoice::Tcp => false,
            TransportChoice::Sctp => match rserpool_net::sctp::unavailable_reason() {
                None => true,
                Some(why) => return Err(StartError::NoSctp(why)),
            },
            TransportChoice::Auto => match rserpool_net::sctp::unavailable_reason() {
                None => true,
                Some(why) => {
                    tracing::warn!("{why}: serving ASAP over TCP only");
                    if s.log_file.is_some() {
                        // The log goes to a file: say it where it is run too.
                        eprintln!("registrar: {why}: serving ASAP over TCP only");
                    }
                    false
                }
            },
        };
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = s.shards.unwrap_or(available.saturating_sub(1)).max(1);
        if s.driver == config::Driver::Glommio && shards != 1 {
            return Err(StartError::Other(
                "--driver glommio runs one shard only (use --shards 1)".into(),
            ));
        }
        if s.driver == config::Driver::Glommio {
            if sctp {
                return Err(StartError::Other(
                    "--driver glommio serves TCP only (add --transport tcp)".into(),
                ));
            }
            driver::glommio::probe().map_err(|e| StartError::Other(e.to_string()))?;
        }
        let cpus: Vec<Option<usize>> = match &s.cores {
            CoreChoice::NoPinning => vec![None; shards + 1],
            CoreChoice::Auto => (0..=shards).map(|i| Some(i % available)).collect(),
            CoreChoice::List(l) => (0..=shards)
                .map(|i| l.get(i).or(l.last()).copied())
                .collect(),
        };

        // Sockets first: every bind error is a start-up error. Port 0 means
        // "any": the first socket picks it, the others follow.
        let mut port = s.asap[0].port();
        let mut tcp: Vec<Vec<std::net::TcpListener>> = (0..shards).map(|_| Vec::new()).collect();
        let mut sctp_l: Vec<Vec<socket2::Socket>> = (0..shards).map(|_| Vec::new()).collect();
        for shard in 0..shards {
            for a in &s.asap {
                let addr = SocketAddr::new(a.ip(), port);
                let l = listen_tcp(addr).map_err(|e| StartError::Listen {
                    addr,
                    proto: "tcp",
                    source: e,
                })?;
                if port == 0 {
                    port = l
                        .local_addr()
                        .map_err(|e| StartError::Other(e.to_string()))?
                        .port();
                }
                tcp[shard].push(l);
            }
            if sctp {
                let addrs: Vec<SocketAddr> = s
                    .asap
                    .iter()
                    .map(|a| SocketAddr::new(a.ip(), port))
                    .collect();
                let l = rserpool_net::sctp::listen(&addrs, true, 128).map_err(|e| {
                    StartError::Listen {
                        addr: addrs[0],
                        proto: "sctp",
                        source: e,
                    }
                })?;
                sctp_l[shard].push(l);
            }
        }
        let metrics_listener = match s.metrics {
            Some(a) => Some(metrics::bind(a).map_err(|e| StartError::Listen {
                addr: a,
                proto: "tcp (metrics)",
                source: e,
            })?),
            None => None,
        };

        let settings = Arc::new(s);
        let shutdown = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let cores = shards + 1;
        let (mut txs, mut rxs) = (Vec::new(), Vec::new());
        for _ in 0..cores {
            let (tx, rx) = bounded::<Vec<u8>>(4096);
            txs.push(tx);
            rxs.push(Some(rx));
        }
        let mut polls = Vec::new();
        let mut waker_list: Vec<Box<dyn Fn() + Send + Sync>> = Vec::new();
        for _ in 0..shards {
            let poll = mio::Poll::new()
                .map_err(|e| StartError::Other(format!("cannot create epoll instance: {e}")))?;
            let w = Arc::new(
                driver::epoll::waker(&poll)
                    .map_err(|e| StartError::Other(format!("cannot create waker: {e}")))?,
            );
            waker_list.push(Box::new(move || {
                let _ = w.wake();
            }));
            polls.push(Some(poll));
        }
        let wakers = Arc::new(waker_list);
        let (repl_tx, repl_rx) = bounded(65_536);
        let (control_tx, control_rx) = bounded(1024);
        let core_metrics: Vec<Arc<metrics::CoreMetrics>> =
            (0..shards).map(|_| Arc::default()).collect();
        let repl_metrics: Arc<metrics::ReplicationMetrics> = Arc::default();
        let registry = Arc::new(metrics::Registry {
            cores: core_metrics.clone(),
            replication: repl_metrics.clone(),
            server_id,
        });

        let mut threads = Vec::new();
        for i in 0..shards {
            let shard = Shard::new(shard_config(&settings, server_id, i));
            let limits = core::CoreLimits {
                max_hr_rate: settings.max_hr_rate,
                max_eu_rate: settings.max_eu_rate,
                prefetch_distance: settings.prefetch_distance,
                prefetch_min_pes: core::PREFETCH_MIN_PES,
            };
            let core = core::Core::new(
                i,
                shards,
                cores,
                Some(shard),
                Some(repl_tx.clone()),
                limits,
                core_metrics[i].clone(),
            );
            let setup = driver::CoreSetup {
                index: i,
                core,
                tcp: std::mem::take(&mut tcp[i]),
                sctp: std::mem::take(&mut sctp_l[i]),
                inbox: rxs[i]
                    .take()
                    .ok_or_else(|| StartError::Other("inbox taken twice".into()))?,
                outboxes: txs.clone(),
                wakers: wakers.clone(),
                start,
                settings: settings.clone(),
                shutdown: shutdown.clone(),
                metrics: core_metrics[i].clone(),
            };
            let poll = polls[i]
                .take()
                .ok_or_else(|| StartError::Other("poll taken twice".into()))?;
            let cpu = cpus[i];
            let driver_kind = settings.driver;
            let failed = failed.clone();
            let t = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || {
                    pin(cpu);
                    let r = match driver_kind {
                        config::Driver::Epoll => driver::epoll::run(setup, poll),
                        config::Driver::Glommio => driver::glommio::run(setup),
                    };
                    if let Err(e) = r {
                        tracing::error!(core = i, error = %e, "core stopped");
                        eprintln!("registrar: error: core {i} stopped: {e}");
                        // A registrar with a dead core must not go on as if
                        // it served: stop the whole process, non-zero.
                        failed.store(true, Ordering::SeqCst);
                        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGTERM);
                    }
                })
                .map_err(|e| StartError::Other(format!("cannot start thread: {e}")))?;
            threads.push(t);
        }
        let repl = replication::ReplicationSetup {
            events: repl_rx,
            control: control_rx,
            outboxes: txs.clone(),
            wakers: wakers.clone(),
            shards,
            server_id,
            announce: settings.announce.map(|group| replication::Announce {
                group,
                source_port: port,
                interval: settings.announce_interval,
                ttl: settings.announce_ttl,
            }),
            shutdown: shutdown.clone(),
            metrics: repl_metrics,
        };
        let cpu = cpus[shards];
        threads.push(
            std::thread::Builder::new()
                .name("replication".into())
                .spawn(move || {
                    pin(cpu);
                    replication::run(repl);
                })
                .map_err(|e| StartError::Other(format!("cannot start thread: {e}")))?,
        );
        let mut metrics_addr = None;
        if let Some(l) = metrics_listener {
            metrics_addr = l.local_addr().ok();
            let reg = registry.clone();
            let stop = shutdown.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("metrics".into())
                    .spawn(move || metrics::serve(l, reg, stop))
                    .map_err(|e| StartError::Other(format!("cannot start thread: {e}")))?,
            );
        }
        let cpu_name = |c: Option<usize>| c.map_or_else(|| "any".to_owned(), |c| c.to_string());
        tracing::info!(
            shards = (0..shards)
                .map(|i| format!("shard-{i}@cpu {}", cpu_name(cpus[i])))
                .collect::<Vec<_>>()
                .join(", "),
            replication = format!("cpu {}", cpu_name(cpus[shards])),
            driver = ?settings.driver,
            "core map"
        );
        tracing::info!(
            server_id = format!("0x{server_id:08x}"),
            port,
            sctp,
            shards,
            "registrar is ready"
        );
        Ok(Self {
            server_id,
            asap_port: port,
            sctp,
            shutdown,
            failed,
            wakers,
            threads,
            control: control_tx,
            metrics: registry,
            metrics_addr,
        })
    }

    /// This registrar's server id.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// The ASAP port (useful when started on port 0).
    pub fn asap_port(&self) -> u16 {
        self.asap_port
    }

    /// Whether ASAP is served over SCTP too.
    pub fn serves_sctp(&self) -> bool {
        self.sctp
    }

    /// The metrics endpoint's address, if on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &metrics::Registry {
        &self.metrics
    }

    /// Hands an ENRP Handle Update from `peer` to the shard owning its pool
    /// (the path the ENRP state machine uses).
    pub fn apply_enrp(&self, peer: u32, msg: Vec<u8>) -> bool {
        self.control
            .send(replication::Control::Apply { peer, msg })
            .is_ok()
    }

    /// Asks every thread to stop (after closing connections).
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for w in self.wakers.iter() {
            w();
        }
    }

    /// Whether a core stopped on an error (it then raised SIGTERM, so a
    /// process waiting for signals shuts down).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Waits for every thread. Returns `false` if a core stopped on an error.
    pub fn join(self) -> bool {
        for t in self.threads {
            let _ = t.join();
        }
        !self.failed.load(Ordering::SeqCst)
    }
}

fn listen_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false).ok();
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The shard configuration from the settings.
pub fn shard_config(s: &Settings, server_id: u32, index: usize) -> ShardConfig {
    ShardConfig {
        server_id: rserpool_wire::ServerId(server_id),
        default_items: s.max_items_default,
        max_items: 128,
        max_increment: s.max_increment,
        keep_alive_interval: s.keep_alive_interval,
        keep_alive_jitter: s.keep_alive_jitter,
        keep_alive_timeout: s.keep_alive_timeout,
        max_bad_pe_reports: s.max_bad_pe_reports,
        life_unit: s.life_unit,
        expire_owned: s.expire_owned,
        min_address_scope: s.min_address_scope,
        require_address_subset: true,
        max_pools: s.max_pools,
        max_pes: s.max_pes,
        max_pes_per_pool: s.max_pes_per_pool,
        replicate: !s.peers.is_empty(),
        selection: s.selection,
        seed: u64::from(server_id) ^ ((index as u64) << 32),
    }
}
