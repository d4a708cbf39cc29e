//! Metrics in the Prometheus text format, served over HTTP.
//!
//! Each core owns its [`CoreMetrics`] (relaxed atomics, never contended: only
//! the owning core writes, the HTTP thread reads) and a latency histogram it
//! locks once per wake-up. The HTTP server is a small blocking thread: scrapes
//! are rare and must not disturb the cores.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

/// A metric: name, help text, and how to read it from a core.
type Metric<T> = (&'static str, &'static str, fn(&CoreMetrics) -> T);

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One core's counters.
#[derive(Debug)]
pub struct CoreMetrics {
    /// ASAP messages received.
    pub received: Counter,
    /// Malformed or unknown messages.
    pub errors: Counter,
    /// Requests refused by a rate limit.
    pub rate_limited: Counter,
    /// Messages not meant for a registrar.
    pub ignored: Counter,
    /// Requests forwarded to another core's shard.
    pub forwarded: Counter,
    /// Registrations handled by this core's shard.
    pub registrations: Counter,
    /// Deregistrations handled.
    pub deregistrations: Counter,
    /// Handle resolutions handled.
    pub resolutions: Counter,
    /// Endpoint Unreachable reports handled.
    pub unreachable: Counter,
    /// Keep-alives (and other shard-initiated messages) sent.
    pub keep_alives: Counter,
    /// Replication events dropped because the replication core lagged.
    pub replication_dropped: Counter,
    /// SCTP messages dropped for a wrong PPID.
    pub wrong_ppid: Counter,
    /// Connections accepted.
    pub accepted: Counter,
    /// Connections refused (limit reached).
    pub refused: Counter,
    /// Times a connection stopped being read because its send queue was
    /// over the limit (a peer that does not read its answers).
    pub paused: Counter,
    /// Connections closed.
    pub closed: Counter,
    /// Connections open now.
    pub open: Gauge,
    /// Pools in this core's shard.
    pub pools: Gauge,
    /// PEs in this core's shard.
    pub pes: Gauge,
    /// Mesh batches sent to other cores.
    pub batches_sent: Counter,
    /// Mesh batches dropped (destination stuck).
    pub batches_dropped: Counter,
    /// Wake-ups of the core's loop.
    pub wakeups: Counter,
    /// Time from a wake-up to its replies being written, per message, in
    /// nanoseconds.
    pub latency: Mutex<Histogram<u64>>,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        Self {
            received: Counter::default(),
            errors: Counter::default(),
            rate_limited: Counter::default(),
            ignored: Counter::default(),
            forwarded: Counter::default(),
            registrations: Counter::default(),
            deregistrations: Counter::default(),
            resolutions: Counter::default(),
            unreachable: Counter::default(),
            keep_alives: Counter::default(),
            replication_dropped: Counter::default(),
            wrong_ppid: Counter::default(),
            accepted: Counter::default(),
            refused: Counter::default(),
            paused: Counter::default(),
            closed: Counter::default(),
            open: Gauge::default(),
            pools: Gauge::default(),
            pes: Gauge::default(),
            batches_sent: Counter::default(),
            batches_dropped: Counter::default(),
            wakeups: Counter::default(),
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }
}

/// Counters of the replication core.
#[derive(Debug, Default)]
pub struct ReplicationMetrics {
    /// Handle-space changes received from the shards.
    pub updates: Counter,
    /// ASAP Server Announces sent.
    pub announces: Counter,
}

/// Everything the HTTP endpoint shows.
#[derive(Debug)]
pub struct Registry {
    /// Per core, in core order.
    pub cores: Vec<Arc<CoreMetrics>>,
    /// The replication core.
    pub replication: Arc<ReplicationMetrics>,
    /// This registrar's id.
    pub server_id: u32,
}

/// Renders the Prometheus text exposition.
pub fn render(r: &Registry) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP rserpool_info Registrar identity.\n# TYPE rserpool_info gauge"
    );
    let _ = writeln!(s, "rserpool_info{{server_id=\"0x{:08x}\"}} 1", r.server_id);
    let counters: [Metric<u64>; 19] = [
        (
            "rserpool_asap_received_total",
            "ASAP messages received.",
            |m| m.received.get(),
        ),
        (
            "rserpool_asap_errors_total",
            "Malformed or unknown ASAP messages.",
            |m| m.errors.get(),
        ),
        (
            "rserpool_asap_rate_limited_total",
            "Requests refused by rate limits.",
            |m| m.rate_limited.get(),
        ),
        (
            "rserpool_asap_ignored_total",
            "Messages not meant for a registrar.",
            |m| m.ignored.get(),
        ),
        (
            "rserpool_cross_core_forwards_total",
            "Requests forwarded to another core's shard.",
            |m| m.forwarded.get(),
        ),
        (
            "rserpool_registrations_total",
            "Registrations handled.",
            |m| m.registrations.get(),
        ),
        (
            "rserpool_deregistrations_total",
            "Deregistrations handled.",
            |m| m.deregistrations.get(),
        ),
        (
            "rserpool_resolutions_total",
            "Handle resolutions handled.",
            |m| m.resolutions.get(),
        ),
        (
            "rserpool_unreachable_reports_total",
            "Endpoint Unreachable reports handled.",
            |m| m.unreachable.get(),
        ),
        (
            "rserpool_keep_alives_sent_total",
            "Keep-alives and notices sent to PEs.",
            |m| m.keep_alives.get(),
        ),
        (
            "rserpool_replication_dropped_total",
            "Replication events dropped.",
            |m| m.replication_dropped.get(),
        ),
        (
            "rserpool_sctp_wrong_ppid_total",
            "SCTP messages dropped for a wrong PPID.",
            |m| m.wrong_ppid.get(),
        ),
        (
            "rserpool_connections_accepted_total",
            "Connections accepted.",
            |m| m.accepted.get(),
        ),
        (
            "rserpool_connections_refused_total",
            "Connections refused at the limit.",
            |m| m.refused.get(),
        ),
        (
            "rserpool_connections_paused_total",
            "Times a connection stopped being read because its peer did not read its answers.",
            |m| m.paused.get(),
        ),
        (
            "rserpool_connections_closed_total",
            "Connections closed.",
            |m| m.closed.get(),
        ),
        (
            "rserpool_mesh_batches_sent_total",
            "Batches sent to other cores.",
            |m| m.batches_sent.get(),
        ),
        (
            "rserpool_mesh_batches_dropped_total",
            "Batches dropped towards a stuck core.",
            |m| m.batches_dropped.get(),
        ),
        ("rserpool_core_wakeups_total", "Event-loop wake-ups.", |m| {
            m.wakeups.get()
        }),
    ];
    for (name, help, get) in &counters {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
        for (i, m) in r.cores.iter().enumerate() {
            let _ = writeln!(s, "{name}{{core=\"{i}\"}} {}", get(m));
        }
    }
    let gauges: [Metric<i64>; 3] = [
        ("rserpool_connections_open", "Connections open.", |m| {
            m.open.get()
        }),
        ("rserpool_pools", "Pools in the core's shard.", |m| {
            m.pools.get()
        }),
        ("rserpool_pool_elements", "PEs in the core's shard.", |m| {
            m.pes.get()
        }),
    ];
    for (name, help, get) in gauges {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (i, m) in r.cores.iter().enumerate() {
            let _ = writeln!(s, "{name}{{core=\"{i}\"}} {}", get(m));
        }
    }
    let name = "rserpool_request_latency_seconds";
    let _ = writeln!(
        s,
        "# HELP {name} Wake-up to reply written, per message.\n# TYPE {name} summary"
    );
    for (i, m) in r.cores.iter().enumerate() {
        let Ok(h) = m.latency.lock() else { continue };
        for q in [0.5, 0.9, 0.99, 0.999] {
            let _ = writeln!(
                s,
                "{name}{{core=\"{i}\",quantile=\"{q}\"}} {:e}",
                h.value_at_quantile(q) as f64 / 1e9
            );
        }
        let _ = writeln!(s, "{name}_count{{core=\"{i}\"}} {}", h.len());
    }
    let _ = writeln!(
        s,
        "# HELP rserpool_replication_updates_total Handle-space changes seen by the replication core."
    );
    let _ = writeln!(s, "# TYPE rserpool_replication_updates_total counter");
    let _ = writeln!(
        s,
        "rserpool_replication_updates_total {}",
        r.replication.updates.get()
    );
    let _ = writeln!(
        s,
        "# HELP rserpool_announces_sent_total ASAP Server Announces sent."
    );
    let _ = writeln!(s, "# TYPE rserpool_announces_sent_total counter");
    let _ = writeln!(
        s,
        "rserpool_announces_sent_total {}",
        r.replication.announces.get()
    );
    s
}

/// Serves `GET /metrics` on `listener` until `stop` is set.
pub fn serve(listener: TcpListener, registry: Arc<Registry>, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).ok();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                conn.set_nonblocking(false).ok();
                conn.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut req = [0u8; 1024];
                let n = conn.read(&mut req).unwrap_or(0);
                let head = String::from_utf8_lossy(&req[..n]);
                let (status, body) =
                    if head.starts_with("GET /metrics") || head.starts_with("GET / ") {
                        ("200 OK", render(&registry))
                    } else {
                        ("404 Not Found", "not found\n".to_owned())
                    };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Binds the metrics listener (an error here is a startup error).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}
