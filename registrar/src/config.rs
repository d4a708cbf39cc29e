//! Configuration: command-line long options, a TOML file with the same keys,
//! and RSPLIB's `rspregistrar` spellings (see [`crate::rsplib_args`]).
//!
//! [`Options`] is both the clap parser and the TOML schema: every field is
//! optional, the command line wins over the file, and [`Options::resolve`]
//! turns the result into typed, validated [`Settings`] with defaults. Every
//! default is RSPLIB 3.4.4's unless its doc says otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use rserpool_shard::addr::Scope;
use rserpool_shard::{Compat, LifeUnit};
use serde::Deserialize;

/// Command-line and file options. See `registrar --help`.
#[derive(Parser, Deserialize, Debug, Default, Clone)]
#[command(
    name = "registrar",
    version,
    about = "RSerPool registrar (ENRP server): ASAP over SCTP and TCP"
)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// TOML file with the same keys as the long options (command line wins).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// ASAP endpoint ADDR:PORT (repeatable; several addresses with one port
    /// make one multi-homed SCTP endpoint). Default 0.0.0.0:3863.
    #[arg(long, value_name = "ADDR:PORT")]
    #[serde(default)]
    pub asap: Vec<SocketAddr>,
    /// ENRP endpoint ADDR:PORT. Default 0.0.0.0:9901.
    #[arg(long, value_name = "ADDR:PORT")]
    pub enrp: Option<SocketAddr>,
    /// Static ENRP peer ADDR:PORT (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    #[serde(default)]
    pub peer: Vec<SocketAddr>,
    /// Transports: auto (SCTP where the kernel has it, plus TCP), sctp, tcp.
    #[arg(long, value_name = "auto|sctp|tcp")]
    pub transport: Option<String>,
    /// Server id (hex 0x... or decimal; default random, never 0).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Number of handlespace shards (default: one per core but one, at least 1).
    #[arg(long)]
    pub shards: Option<usize>,
    /// CPU ids to pin to: shards first, then the replication core
    /// (comma-separated; default: the first CPUs; "none" disables pinning).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// I/O driver: epoll (default) or glommio (see ARCHITECTURE.md).
    #[arg(long, value_name = "epoll|glommio")]
    pub driver: Option<String>,
    /// ASAP Server Announces: GROUP:PORT or "off" (default 239.0.0.50:3863).
    #[arg(long, value_name = "GROUP:PORT|off")]
    pub announce: Option<String>,
    /// Milliseconds between announces (jittered by 12.5 %; default 1000).
    #[arg(long, value_name = "MS")]
    pub announce_interval: Option<u64>,
    /// Announce TTL (default 30).
    #[arg(long)]
    pub announce_ttl: Option<u32>,
    /// ENRP presence multicast GROUP:PORT or "off" (default 239.0.0.51:9901).
    #[arg(long, value_name = "GROUP:PORT|off")]
    pub enrp_announce: Option<String>,
    /// Keep-alive period for owned PEs, milliseconds (default 5000).
    #[arg(long, value_name = "MS")]
    pub keep_alive_interval: Option<u64>,
    /// Keep-alive ack timeout, milliseconds (default 5000).
    #[arg(long, value_name = "MS")]
    pub keep_alive_timeout: Option<u64>,
    /// Random spread of each keep-alive period, milliseconds (default 500).
    #[arg(long, value_name = "MS")]
    pub keep_alive_jitter: Option<u64>,
    /// Endpoint Unreachable reports that remove a PE (default 3).
    #[arg(long)]
    pub max_bad_pe_reports: Option<u8>,
    /// Unit of Registration Life on the wire: ms (RSPLIB, default) or s (RFC).
    #[arg(long, value_name = "ms|s")]
    pub life_unit: Option<String>,
    /// Expire owned PEs at the end of their registration life (RFC 5352);
    /// off by default, as in RSPLIB, whose PEs abort on the notice.
    #[arg(long)]
    #[serde(default)]
    pub expire_owned: bool,
    /// Narrowest scope of a registered address: loopback, link-local,
    /// site-local (default) or global.
    #[arg(long, value_name = "SCOPE")]
    pub min_address_scope: Option<String>,
    /// PEs per Handle Resolution Response when the PU does not say (default 3).
    #[arg(long)]
    pub max_items_default: Option<u32>,
    /// Selected PEs whose policy state advances per request (0 = policy default).
    #[arg(long)]
    pub max_increment: Option<usize>,
    /// Selection semantics where RFC 5356 and RSPLIB differ: rfc (default) or rsplib.
    #[arg(long, value_name = "rfc|rsplib")]
    pub selection: Option<String>,
    /// Handle resolutions per second per association and pool (<= 0: unlimited).
    #[arg(long)]
    pub max_hr_rate: Option<f64>,
    /// Endpoint Unreachable reports per second per association and pool (<= 0: unlimited).
    #[arg(long)]
    pub max_eu_rate: Option<f64>,
    /// Most connections per core (default 65536).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Largest accepted message, bytes (default 65536).
    #[arg(long)]
    pub max_message_size: Option<usize>,
    /// How many requests ahead the handlespace memory of the messages of
    /// one read is prefetched (0: off; default 1, at most 4).
    #[arg(long)]
    pub prefetch_distance: Option<usize>,
    /// Most bytes queued for one connection before it stops being read
    /// (default 262144).
    #[arg(long)]
    pub send_queue_limit: Option<usize>,
    /// Most pools (default unlimited).
    #[arg(long)]
    pub max_pools: Option<usize>,
    /// Most PEs (default 16 million per shard).
    #[arg(long)]
    pub max_pes: Option<usize>,
    /// Most PEs in one pool (default 1 million).
    #[arg(long)]
    pub max_pes_per_pool: Option<usize>,
    /// Close pool-user connections idle this many seconds (default 300; 0 = never).
    #[arg(long, value_name = "SECONDS")]
    pub autoclose: Option<u64>,
    /// Prometheus metrics over HTTP at ADDR:PORT (default off).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Log level: off, error, warn, info (default), debug, trace.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log to this file instead of stderr (appends).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Write the process id to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Use IPv4 only.
    #[arg(long)]
    #[serde(default)]
    pub disable_ipv6: bool,
    /// ENRP: PEs per Handle Table Response (default 128).
    #[arg(long)]
    pub max_elements_per_ht_request: Option<usize>,
    /// ENRP: presence period, ms (default 2444).
    #[arg(long, value_name = "MS")]
    pub peer_heartbeat_cycle: Option<u64>,
    /// ENRP: silence before probing a peer, ms (default 5000).
    #[arg(long, value_name = "MS")]
    pub peer_max_time_last_heard: Option<u64>,
    /// ENRP: wait for a peer's answer, ms (default 5000).
    #[arg(long, value_name = "MS")]
    pub peer_max_time_no_response: Option<u64>,
    /// ENRP: listen for peers at startup, ms (default 5000).
    #[arg(long, value_name = "MS")]
    pub mentor_discovery_timeout: Option<u64>,
    /// ENRP: wait for takeover acks, ms (default 5000).
    #[arg(long, value_name = "MS")]
    pub takeover_expiry_interval: Option<u64>,
    /// ENRP: act on "takeover suggested" handle updates.
    #[arg(long)]
    #[serde(default)]
    pub support_takeover_suggestion: bool,
}

macro_rules! merge {
    ($a:ident, $b:ident; $($opt:ident),*; $($vec:ident),*; $($flag:ident),*) => {
        Options {
            config: $a.config,
            $($opt: $a.$opt.or($b.$opt),)*
            $($vec: if $a.$vec.is_empty() { $b.$vec } else { $a.$vec },)*
            $($flag: $a.$flag || $b.$flag,)*
        }
    };
}

impl Options {
    /// Fills what the command line left open from `file`.
    pub fn merge(self, file: Self) -> Self {
        let (a, b) = (self, file);
        merge!(a, b;
            enrp, transport, id, shards, cores, driver, announce, announce_interval, announce_ttl,
            enrp_announce, keep_alive_interval, keep_alive_timeout, keep_alive_jitter,
            max_bad_pe_reports, life_unit, min_address_scope, max_items_default, max_increment,
            selection, max_hr_rate, max_eu_rate, max_connections, max_message_size,
            prefetch_distance, send_queue_limit, max_pools, max_pes, max_pes_per_pool, autoclose, metrics, log_level,
            log_file, pid_file, max_elements_per_ht_request, peer_heartbeat_cycle,
            peer_max_time_last_heard, peer_max_time_no_response, mentor_discovery_timeout,
            takeover_expiry_interval;
            asap, peer;
            expire_owned, disable_ipv6, support_takeover_suggestion)
    }

    /// Reads a TOML file of options.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().trim_end().to_owned();
            format!("config file {}: {msg}", path.display())
        })
    }

    /// Applies defaults and checks every value.
    pub fn resolve(self) -> Result<Settings, String> {
        let transport = match self.transport.as_deref().unwrap_or("auto") {
            "auto" => TransportChoice::Auto,
            "sctp" => TransportChoice::Sctp,
            "tcp" => TransportChoice::Tcp,
            other => {
                return Err(format!(
                    "--transport: expected auto, sctp or tcp, got '{other}'"
                ));
            }
        };
        let server_id = match self.id.as_deref() {
            None => None,
            Some(s) => match parse_u32(s) {
                Some(0) => None,
                Some(id) => Some(id),
                None => {
                    return Err(format!(
                        "--id: expected a number (decimal or 0x hex), got '{s}'"
                    ));
                }
            },
        };
        let announce = match self.announce.as_deref() {
            None => Some(SocketAddr::from((Ipv4Addr::new(239, 0, 0, 50), 3863))),
            Some(s) => parse_group(s, 3863).map_err(|e| format!("--announce: {e}"))?,
        };
        let enrp_announce = match self.enrp_announce.as_deref() {
            None => Some(SocketAddr::from((Ipv4Addr::new(239, 0, 0, 51), 9901))),
            Some(s) => parse_group(s, 9901).map_err(|e| format!("--enrp-announce: {e}"))?,
        };
        let life_unit = match self.life_unit.as_deref().unwrap_or("ms") {
            "ms" => LifeUnit::Millis,
            "s" => LifeUnit::Seconds,
            other => return Err(format!("--life-unit: expected ms or s, got '{other}'")),
        };
        let min_address_scope = match self.min_address_scope.as_deref() {
            None => Scope::SiteLocal,
            Some(s) => Scope::parse(s)
                .ok_or_else(|| format!("--min-address-scope: expected loopback, link-local, site-local or global, got '{s}'"))?,
        };
        let selection = match self.selection.as_deref().unwrap_or("rfc") {
            "rfc" => Compat::Rfc,
            "rsplib" => Compat::Rsplib,
            other => {
                return Err(format!(
                    "--selection: expected rfc or rsplib, got '{other}'"
                ));
            }
        };
        let driver = match self.driver.as_deref().unwrap_or("epoll") {
            "epoll" => Driver::Epoll,
            "glommio" => Driver::Glommio,
            other => {
                return Err(format!(
                    "--driver: expected epoll or glommio, got '{other}'"
                ));
            }
        };
        let log_level = self.log_level.unwrap_or_else(|| "info".into());
        if !matches!(
            log_level.as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(format!(
                "--log-level: expected off, error, warn, info, debug or trace, got '{log_level}'"
            ));
        }
        let cores = match self.cores.as_deref() {
            None => CoreChoice::Auto,
            Some("none") => CoreChoice::NoPinning,
            Some(list) => CoreChoice::List(
                list.split(',')
                    .map(|c| {
                        c.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("--cores: '{c}' is not a CPU number"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let ms =
            |v: Option<u64>, d: u64, min: u64, max: u64, name: &str| -> Result<Duration, String> {
                let v = v.unwrap_or(d);
                if (min..=max).contains(&v) {
                    Ok(Duration::from_millis(v))
                } else {
                    Err(format!("--{name}: {v} ms is outside {min}..{max}"))
                }
            };
        let mut asap = self.asap;
        if asap.is_empty() {
            asap.push(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3863)));
        }
        let port = asap[0].port();
        if asap.iter().any(|a| a.port() != port) {
            return Err("--asap: all addresses of the endpoint must have the same port".into());
        }
        let rate = |v: Option<f64>| v.filter(|r| *r > 0.0);
        Ok(Settings {
            asap,
            enrp: self
                .enrp
                .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9901))),
            peers: self.peer,
            transport,
            server_id,
            shards: self.shards,
            cores,
            driver,
            announce,
            announce_interval: ms(
                self.announce_interval,
                1000,
                100,
                60_000,
                "announce-interval",
            )?,
            announce_ttl: self.announce_ttl.unwrap_or(30).clamp(1, 255),
            enrp_announce,
            keep_alive_interval: ms(
                self.keep_alive_interval,
                5000,
                300,
                300_000,
                "keep-alive-interval",
            )?,
            keep_alive_timeout: ms(
                self.keep_alive_timeout,
                5000,
                100,
                60_000,
                "keep-alive-timeout",
            )?,
            keep_alive_jitter: ms(self.keep_alive_jitter, 500, 0, 150_000, "keep-alive-jitter")?,
            max_bad_pe_reports: self.max_bad_pe_reports.unwrap_or(3).clamp(1, 127),
            life_unit,
            expire_owned: self.expire_owned,
            min_address_scope,
            max_items_default: self.max_items_default.unwrap_or(3).clamp(1, 128),
            max_increment: self.max_increment.unwrap_or(0),
            selection,
            max_hr_rate: rate(self.max_hr_rate),
            max_eu_rate: rate(self.max_eu_rate),
            max_connections: self.max_connections.unwrap_or(65_536).max(1),
            max_message_size: self.max_message_size.unwrap_or(65_536).clamp(64, 1 << 20),
            prefetch_distance: self.prefetch_distance.unwrap_or(1).min(4),
            send_queue_limit: self.send_queue_limit.unwrap_or(256 * 1024).max(4096),
            max_pools: self.max_pools.unwrap_or(usize::MAX),
            max_pes: self.max_pes.unwrap_or(usize::MAX),
            max_pes_per_pool: self.max_pes_per_pool.unwrap_or(1 << 20),
            autoclose: match self.autoclose.unwrap_or(300) {
                0 => None,
                s => Some(Duration::from_secs(s.max(5))),
            },
            metrics: self.metrics,
            log_level,
            log_file: self.log_file,
            pid_file: self.pid_file,
            disable_ipv6: self.disable_ipv6,
            enrp_timers: EnrpTimers {
                max_elements_per_ht_request: self.max_elements_per_ht_request.unwrap_or(128).max(1),
                peer_heartbeat_cycle: ms(
                    self.peer_heartbeat_cycle,
                    2444,
                    1000,
                    300_000,
                    "peer-heartbeat-cycle",
                )?,
                peer_max_time_last_heard: ms(
                    self.peer_max_time_last_heard,
                    5000,
                    1000,
                    300_000,
                    "peer-max-time-last-heard",
                )?,
                peer_max_time_no_response: ms(
                    self.peer_max_time_no_response,
                    5000,
                    1000,
                    60_000,
                    "peer-max-time-no-response",
                )?,
                mentor_discovery_timeout: ms(
                    self.mentor_discovery_timeout,
                    5000,
                    1000,
                    60_000,
                    "mentor-discovery-timeout",
                )?,
                takeover_expiry_interval: ms(
                    self.takeover_expiry_interval,
                    5000,
                    1000,
                    60_000,
                    "takeover-expiry-interval",
                )?,
                support_takeover_suggestion: self.support_takeover_suggestion,
            },
        })
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `off`/`none`, `auto`, `GROUP` or `GROUP:PORT`.
fn parse_group(s: &str, default_port: u16) -> Result<Option<SocketAddr>, String> {
    match s.to_ascii_lowercase().as_str() {
        "off" | "none" => return Ok(None),
        "auto" => {
            return Ok(Some(SocketAddr::from((
                Ipv4Addr::new(239, 0, 0, 50),
                default_port,
            ))));
        }
        _ => {}
    }
    let a = s
        .parse::<SocketAddr>()
        .or_else(|_| {
            s.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, default_port))
        })
        .map_err(|_| format!("expected GROUP:PORT, GROUP or off, got '{s}'"))?;
    if !a.ip().is_multicast() {
        return Err(format!("{} is not a multicast address", a.ip()));
    }
    Ok(Some(if a.port() == 0 {
        SocketAddr::new(a.ip(), default_port)
    } else {
        a
    }))
}

/// Which transports to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportChoice {
    /// SCTP if the kernel has it, and TCP.
    Auto,
    /// SCTP only (fails to start without kernel SCTP).
    Sctp,
    /// TCP only.
    Tcp,
}

/// How to place threads on CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreChoice {
    /// Pin to the first CPUs.
    Auto,
    /// Do not pin.
    NoPinning,
    /// Pin shard i to `list[i]`, the replication core to the next entry.
    List(Vec<usize>),
}

/// The I/O driver (the seam between protocol logic and the runtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// A lean per-core epoll loop with batched system calls (default).
    Epoll,
    /// glommio executors (for comparison; TCP only).
    Glommio,
}

/// ENRP timers and limits (used by the replication core).
#[derive(Clone, Debug)]
pub struct EnrpTimers {
    /// PEs per Handle Table Response.
    pub max_elements_per_ht_request: usize,
    /// Presence period.
    pub peer_heartbeat_cycle: Duration,
    /// Silence before probing a peer.
    pub peer_max_time_last_heard: Duration,
    /// Wait for a peer's answer.
    pub peer_max_time_no_response: Duration,
    /// Listen for peers at startup.
    pub mentor_discovery_timeout: Duration,
    /// Wait for takeover acks.
    pub takeover_expiry_interval: Duration,
    /// Act on "takeover suggested".
    pub support_takeover_suggestion: bool,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// ASAP endpoint addresses (one port).
    pub asap: Vec<SocketAddr>,
    /// ENRP endpoint.
    pub enrp: SocketAddr,
    /// Static ENRP peers.
    pub peers: Vec<SocketAddr>,
    /// Transports to serve.
    pub transport: TransportChoice,
    /// Fixed server id, or random.
    pub server_id: Option<u32>,
    /// Shards (None = automatic).
    pub shards: Option<usize>,
    /// CPU placement.
    pub cores: CoreChoice,
    /// I/O driver.
    pub driver: Driver,
    /// ASAP announce group (None = off).
    pub announce: Option<SocketAddr>,
    /// Announce period.
    pub announce_interval: Duration,
    /// Announce TTL.
    pub announce_ttl: u32,
    /// ENRP presence multicast group (None = off).
    pub enrp_announce: Option<SocketAddr>,
    /// Keep-alive period.
    pub keep_alive_interval: Duration,
    /// Keep-alive ack timeout.
    pub keep_alive_timeout: Duration,
    /// Keep-alive jitter.
    pub keep_alive_jitter: Duration,
    /// Unreachable reports that remove a PE.
    pub max_bad_pe_reports: u8,
    /// Registration Life unit.
    pub life_unit: LifeUnit,
    /// Expire owned PEs by lifetime.
    pub expire_owned: bool,
    /// Narrowest registered address scope.
    pub min_address_scope: Scope,
    /// Default PEs per response.
    pub max_items_default: u32,
    /// Max increment (0 = policy default).
    pub max_increment: usize,
    /// Selection semantics.
    pub selection: Compat,
    /// HR rate limit per association and pool.
    pub max_hr_rate: Option<f64>,
    /// EU rate limit per association and pool.
    pub max_eu_rate: Option<f64>,
    /// Connections per core.
    pub max_connections: usize,
    /// Largest message.
    pub max_message_size: usize,
    /// Prefetch distance for the messages of one read (0: off).
    pub prefetch_distance: usize,
    /// Bytes queued per connection before it stops being read.
    pub send_queue_limit: usize,
    /// Most pools.
    pub max_pools: usize,
    /// Most PEs.
    pub max_pes: usize,
    /// Most PEs per pool.
    pub max_pes_per_pool: usize,
    /// Idle PU connections close after this.
    pub autoclose: Option<Duration>,
    /// Metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// Log level.
    pub log_level: String,
    /// Log file.
    pub log_file: Option<PathBuf>,
    /// PID file.
    pub pid_file: Option<PathBuf>,
    /// IPv4 only.
    pub disable_ipv6: bool,
    /// ENRP settings.
    pub enrp_timers: EnrpTimers,
}

impl Settings {
    /// Settings from command-line arguments (RSPLIB spellings allowed) and
    /// the config file they name.
    pub fn from_args(
        args: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        let (args, warnings) = crate::rsplib_args::translate(args).map_err(ConfigError::Invalid)?;
        let opts = Options::try_parse_from(args).map_err(ConfigError::Clap)?;
        let opts = match &opts.config {
            Some(path) => {
                let file = Options::from_file(path).map_err(ConfigError::Invalid)?;
                opts.clone().merge(file)
            }
            None => opts,
        };
        let mut s = opts.resolve().map_err(ConfigError::Invalid)?;
        s.warnings_for_log(warnings);
        Ok(s)
    }

    fn warnings_for_log(&mut self, warnings: Vec<String>) {
        for w in warnings {
            tracing::warn!("{w}");
            eprintln!("registrar: warning: {w}");
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// clap's own error (usage, --help, --version).
    #[error("{0}")]
    Clap(clap::Error),
    /// A value that is wrong, in one line.
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        Settings::from_args(
            std::iter::once("registrar")
                .chain(args.iter().copied())
                .map(Into::into),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_sensible() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.asap, vec!["0.0.0.0:3863".parse().unwrap()]);
        assert_eq!(s.enrp, "0.0.0.0:9901".parse().unwrap());
        assert_eq!(s.announce, Some("239.0.0.50:3863".parse().unwrap()));
        assert_eq!(s.keep_alive_interval, Duration::from_secs(5));
        assert_eq!((s.max_items_default, s.max_bad_pe_reports), (3, 3));
        assert_eq!(s.min_address_scope, Scope::SiteLocal);
        assert_eq!(s.transport, TransportChoice::Auto);
        assert!(s.max_hr_rate.is_none());
    }

    #[test]
    fn long_options_and_errors() {
        let s = settings(&[
            "--asap",
            "127.0.0.1:4000",
            "--asap",
            "10.0.0.1:4000",
            "--announce",
            "off",
            "--id",
            "0x1a",
        ])
        .unwrap();
        assert_eq!(s.asap.len(), 2);
        assert_eq!((s.announce, s.server_id), (None, Some(0x1a)));
        assert!(
            settings(&["--asap", "127.0.0.1:1", "--asap", "10.0.0.1:2"])
                .unwrap_err()
                .contains("same port")
        );
        assert!(
            settings(&["--transport", "udp"])
                .unwrap_err()
                .contains("--transport")
        );
        assert!(
            settings(&["--announce", "10.0.0.1:5"])
                .unwrap_err()
                .contains("not a multicast")
        );
        assert!(
            settings(&["--keep-alive-interval", "10"])
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            settings(&["--min-address-scope", "planet"])
                .unwrap_err()
                .contains("--min-address-scope")
        );
    }

    #[test]
    fn rsplib_spellings_work_unchanged() {
        let s = settings(&[
            "-asap=127.0.0.1:3863",
            "-enrp=127.0.0.1:9901",
            "-peer=10.77.0.2:9901",
            "-asapannounce=off",
            "-enrpannounce=off",
            "-minaddressscope=loopback",
            "-maxbadpereports=5",
            "-endpointkeepalivetransmissioninterval=2000",
            "-endpointkeepalivetimeoutinterval=1000",
            "-maxhrrate=10",
            "-identifier=0x11223344",
            "-loglevel=3",
            "-logcolor=off",
        ])
        .unwrap();
        assert_eq!(s.asap, vec!["127.0.0.1:3863".parse().unwrap()]);
        assert_eq!(s.peers, vec!["10.77.0.2:9901".parse().unwrap()]);
        assert_eq!((s.announce, s.enrp_announce), (None, None));
        assert_eq!(s.min_address_scope, Scope::Loopback);
        assert_eq!(s.max_bad_pe_reports, 5);
        assert_eq!(s.keep_alive_interval, Duration::from_secs(2));
        assert_eq!(s.keep_alive_timeout, Duration::from_secs(1));
        assert_eq!(
            (s.max_hr_rate, s.server_id),
            (Some(10.0), Some(0x1122_3344))
        );
        assert_eq!(s.log_level, "info");
    }

    #[test]
    fn config_file_fills_in_and_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(
            &path,
            "asap = [\"127.0.0.1:5000\"]\nkeep-alive-interval = 1000\nlog-level = \"debug\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = settings(&["--config", p, "--log-level", "warn"]).unwrap();
        assert_eq!(s.asap, vec!["127.0.0.1:5000".parse().unwrap()]);
        assert_eq!(s.keep_alive_interval, Duration::from_secs(1));
        assert_eq!(s.log_level, "warn");
        std::fs::write(&path, "no-such-key = 1\n").unwrap();
        let e = settings(&["--config", p]).unwrap_err();
        assert!(e.contains("no-such-key") && e.contains("r.toml"), "{e}");
    }

    #[test]
    fn every_tuning_profile_is_a_valid_config_with_one_cpu_per_core() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tuning");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let s = Options::from_file(&path)
                .and_then(Options::resolve)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let shards = s.shards.expect("a profile says how many shards");
            let CoreChoice::List(cpus) = &s.cores else {
                panic!("{}: a profile pins its cores", path.display())
            };
            assert_eq!(
                cpus.len(),
                shards + 1,
                "{}: shards + replication",
                path.display()
            );
            let mut unique = cpus.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                cpus.len(),
                "{}: a CPU used twice",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 3, "the dev, 16-core and 64-core profiles");
    }
}
