//! Options of `loadgen run` and `loadgen sweep`: one struct that is both the
//! clap parser and the TOML scenario schema (same keys as the long options;
//! the command line wins), resolved into validated [`Settings`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use rserpool_client::types::parse_policy;
use rserpool_client::{Proto, RegistrarAddr};
use rserpool_wire::Policy;
use serde::Deserialize;

/// Command-line and scenario-file options of a load run.
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunOptions {
    /// TOML scenario file with the same keys as the long options (the
    /// command line wins).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub scenario: Option<PathBuf>,
    /// Registrar to load, `[tcp:|sctp:]ADDR:PORT` (repeatable; default
    /// tcp:127.0.0.1:3863).
    #[arg(long, value_name = "[tcp:|sctp:]ADDR:PORT")]
    #[serde(default)]
    pub registrar: Vec<String>,
    /// With several registrars: `spread` (each PE/PU starts at a different
    /// one, the others are its fail-over list; default) or `failover` (all
    /// use the first, then the next).
    #[arg(long, value_name = "spread|failover")]
    pub targets: Option<String>,
    /// Transport for registrar addresses without a prefix: tcp (default) or
    /// sctp.
    #[arg(long, value_name = "tcp|sctp")]
    pub transport: Option<String>,
    /// The targets are `loadgen echo` servers: each request comes back
    /// as sent, and the PE and PU cores are handed the answer a registrar
    /// would give (the floor of the machine, same tool, same framing).
    #[arg(long)]
    #[serde(default)]
    pub echo: bool,
    /// Emulated pool elements (default 100).
    #[arg(long)]
    pub pes: Option<usize>,
    /// Pools the PEs are spread over (default 10).
    #[arg(long)]
    pub pools: Option<usize>,
    /// Pool handle prefix; pools are PREFIX0, PREFIX1, ... (default
    /// "LoadPool").
    #[arg(long, value_name = "PREFIX")]
    pub pool_prefix: Option<String>,
    /// Policy in RSPLIB's spelling (RoundRobin, WeightedRandom:7,
    /// LeastUsed, ...; default RoundRobin).
    #[arg(long)]
    pub policy: Option<String>,
    /// Address the PEs register as their user transport (default
    /// 127.0.0.1; RSPLIB registrars need a site-local one).
    #[arg(long, value_name = "IP")]
    pub pe_address: Option<IpAddr>,
    /// First user-transport port registered (PE i registers PORT + i,
    /// wrapping; default 20000). Nothing listens there.
    #[arg(long, value_name = "PORT")]
    pub pe_port_base: Option<u16>,
    /// PE re-registration interval in ms (default 30000).
    #[arg(long, value_name = "MS")]
    pub rereg_interval: Option<u64>,
    /// With a policy that has a load (LeastUsed, ...): after every granted
    /// registration each PE changes its load by a random step under 1 % of
    /// the range, which its next periodic re-registration carries.
    #[arg(long)]
    #[serde(default)]
    pub load_changes: bool,
    /// Churn: PEs leaving (deregistering) per second, each joining again
    /// (new association, registration) after `--churn-down` (default 0).
    #[arg(long, value_name = "PER_S")]
    pub churn_rate: Option<f64>,
    /// How long a churned PE stays away, ms (default 1000).
    #[arg(long, value_name = "MS")]
    pub churn_down: Option<u64>,
    /// PEs registering per second during set-up (default 5000).
    #[arg(long, value_name = "PER_S")]
    pub setup_rate: Option<f64>,
    /// Emulated pool users (default 10).
    #[arg(long)]
    pub pus: Option<usize>,
    /// Open loop: handle resolutions per second, sent on schedule whatever
    /// the answers (latency from the intended send time).
    #[arg(long, value_name = "PER_S")]
    pub rate: Option<f64>,
    /// Closed loop: this many handle resolutions in flight.
    #[arg(long, value_name = "K")]
    pub in_flight: Option<usize>,
    /// Probability that a resolution is followed by an Endpoint Unreachable
    /// for one of its PEs (default 0).
    #[arg(long, value_name = "P")]
    pub eu_prob: Option<f64>,
    /// PEs asked for per resolution (Handle Resolution option; default 3).
    #[arg(long)]
    pub items: Option<u32>,
    /// Open loop: re-registrations per second (policy values or load
    /// change), spread over the registered PEs.
    #[arg(long, value_name = "PER_S")]
    pub reg_rate: Option<f64>,
    /// Closed loop: this many re-registrations in flight.
    #[arg(long, value_name = "K")]
    pub reg_in_flight: Option<usize>,
    /// Length of the measured window, seconds (default 10; in a sweep, of
    /// each step).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Longest wait for the PEs to register before the window, s (default
    /// 60).
    #[arg(long, value_name = "S")]
    pub setup_timeout: Option<f64>,
    /// Longest wait for answers and deregistrations after the window, s
    /// (default 5); what is still unanswered then counts as timed out.
    #[arg(long, value_name = "S")]
    pub drain: Option<f64>,
    /// Response timeout of one request, ms (default 3000; the client cores
    /// then drop the registrar and hunt).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Worker threads (one event loop each; default 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// CPUs to pin the worker threads to, comma-separated ("none" = no
    /// pinning; default none).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// Seed of everything random (PE ids, choices; default 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write an HdrHistogram interval log (one histogram per type and
    /// interval, values in ns) here.
    #[arg(long, value_name = "FILE")]
    pub interval_log: Option<PathBuf>,
    /// Write the JSON summary here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Seconds between progress lines and interval-log entries (default
    /// 1).
    #[arg(long, value_name = "S")]
    pub interval: Option<f64>,
    /// No live progress line.
    #[arg(long)]
    #[serde(default)]
    pub quiet: bool,
    /// Spin (poll without waiting) when the next request is due in less
    /// than a millisecond, instead of sleeping: more exact schedules on a
    /// core of its own, worse on a shared one.
    #[arg(long)]
    #[serde(default)]
    pub spin: bool,
    /// Report this process's (the registrar's) CPU time per second, read
    /// from /proc.
    #[arg(long, value_name = "PID")]
    pub registrar_pid: Option<u32>,
}

macro_rules! merge {
    ($a:ident, $b:ident; $($opt:ident),*; $($vec:ident),*; $($flag:ident),*) => {
        RunOptions {
            scenario: $a.scenario,
            $($opt: $a.$opt.or($b.$opt),)*
            $($vec: if $a.$vec.is_empty() { $b.$vec } else { $a.$vec },)*
            $($flag: $a.$flag || $b.$flag,)*
        }
    };
}

impl RunOptions {
    /// Fills what the command line left open from `file`.
    pub fn merge(self, file: Self) -> Self {
        let (a, b) = (self, file);
        merge!(a, b;
            targets, transport, pes, pools, pool_prefix, policy, pe_address, pe_port_base,
            rereg_interval, churn_rate, churn_down, setup_rate, pus, rate, in_flight, eu_prob,
            items, reg_rate, reg_in_flight, duration, setup_timeout, drain, timeout, threads,
            cores, seed, interval_log, json, interval, registrar_pid;
            registrar;
            echo, quiet, spin, load_changes)
    }

    /// Reads the scenario file, if one is named, and merges it under the
    /// command line.
    pub fn with_scenario(self) -> Result<Self, String> {
        let Some(path) = self.scenario.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read scenario {}: {e}", path.display()))?;
        let file: Self = toml::from_str(&text).map_err(|e| {
            format!(
                "scenario {}: {}",
                path.display(),
                e.message().replace('\n', " ")
            )
        })?;
        Ok(self.merge(file))
    }

    /// Validates and applies defaults.
    pub fn resolve(&self) -> Result<Settings, String> {
        let proto = match self.transport.as_deref().unwrap_or("tcp") {
            s if s.eq_ignore_ascii_case("tcp") => Proto::Tcp,
            s if s.eq_ignore_ascii_case("sctp") => Proto::Sctp,
            s => return Err(format!("unknown transport {s:?} (tcp or sctp)")),
        };
        let mut registrars = Vec::new();
        let list = if self.registrar.is_empty() {
            vec!["127.0.0.1:3863".to_string()]
        } else {
            self.registrar.clone()
        };
        for r in &list {
            let has_prefix = r.to_ascii_lowercase().starts_with("tcp:")
                || r.to_ascii_lowercase().starts_with("sctp:");
            let mut a: RegistrarAddr = r.parse()?;
            if !has_prefix {
                a.proto = proto;
            }
            if a.proto == Proto::Sctp {
                if let Some(why) = rserpool_net::sctp::unavailable_reason() {
                    return Err(format!("registrar {r}: SCTP: {why}"));
                }
            }
            registrars.push(a);
        }
        if registrars.iter().any(|r| r.proto != registrars[0].proto) {
            return Err("all registrars must use the same transport".into());
        }
        let spread = match self.targets.as_deref().unwrap_or("spread") {
            "spread" => true,
            "failover" => false,
            s => return Err(format!("unknown --targets {s:?} (spread or failover)")),
        };
        let policy = parse_policy(self.policy.as_deref().unwrap_or("RoundRobin"))?;
        let pes = self.pes.unwrap_or(100);
        let pools = self.pools.unwrap_or(10);
        if pools == 0 {
            return Err("--pools must be at least 1".into());
        }
        if pes > 0 && pools > pes {
            return Err(format!(
                "--pools {pools} is more than --pes {pes}: every pool needs a PE"
            ));
        }
        let pool_prefix = self.pool_prefix.clone().unwrap_or("LoadPool".into());
        if pool_prefix.len() + pools.to_string().len() > 32 {
            return Err("pool handles would be longer than 32 bytes".into());
        }
        let pus = self.pus.unwrap_or(10);
        let rate = positive("--rate", self.rate)?;
        let reg_rate = positive("--reg-rate", self.reg_rate)?;
        let churn_rate = positive("--churn-rate", self.churn_rate)?;
        if rate.is_some() && self.in_flight.is_some() {
            return Err(
                "--rate (open loop) and --in-flight (closed loop) exclude each other".into(),
            );
        }
        if reg_rate.is_some() && self.reg_in_flight.is_some() {
            return Err("--reg-rate and --reg-in-flight exclude each other".into());
        }
        if (rate.is_some() || self.in_flight.is_some_and(|k| k > 0)) && pus == 0 {
            return Err("resolutions need at least one PU (--pus)".into());
        }
        if (reg_rate.is_some() || self.reg_in_flight.is_some_and(|k| k > 0) || churn_rate.is_some())
            && pes == 0
        {
            return Err("re-registrations and churn need PEs (--pes)".into());
        }
        let eu_prob = self.eu_prob.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&eu_prob) {
            return Err(format!("--eu-prob {eu_prob} is not a probability (0..1)"));
        }
        let threads = self.threads.unwrap_or(1);
        if threads == 0 || threads > 256 {
            return Err("--threads must be 1..256".into());
        }
        let cores = parse_cores(self.cores.as_deref().unwrap_or("none"))?;
        let secs = |name: &str, v: Option<f64>, default: f64| -> Result<f64, String> {
            let v = positive(name, v)?.unwrap_or(default);
            if v > 1e7 {
                return Err(format!("{name} must be at most 10^7 s"));
            }
            Ok(v)
        };
        let duration = secs("--duration", self.duration, 10.0)?;
        let interval = secs("--interval", self.interval, 1.0)?;
        let setup_timeout = secs("--setup-timeout", self.setup_timeout, 60.0)?;
        let drain = self.drain.unwrap_or(5.0);
        if !(0.0..=3600.0).contains(&drain) {
            return Err("--drain must be 0..3600 s".into());
        }
        let timeout = self.timeout.unwrap_or(3000);
        if timeout == 0 {
            return Err("--timeout must be more than 0 ms".into());
        }
        Ok(Settings {
            registrars,
            spread,
            echo: self.echo,
            pes,
            pools,
            pool_prefix,
            policy,
            pe_address: self.pe_address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            pe_port_base: self.pe_port_base.unwrap_or(20000),
            load_changes: self.load_changes,
            rereg_interval: Duration::from_millis(self.rereg_interval.unwrap_or(30_000).max(1)),
            churn_rate,
            churn_down: Duration::from_millis(self.churn_down.unwrap_or(1000)),
            setup_rate: positive("--setup-rate", self.setup_rate)?.unwrap_or(5000.0),
            pus,
            rate,
            in_flight: self.in_flight.filter(|k| *k > 0),
            eu_prob,
            items: self.items.unwrap_or(3),
            reg_rate,
            reg_in_flight: self.reg_in_flight.filter(|k| *k > 0),
            duration: Duration::from_secs_f64(duration),
            setup_timeout: Duration::from_secs_f64(setup_timeout),
            drain: Duration::from_secs_f64(drain),
            timeout: Duration::from_millis(timeout),
            threads,
            cores,
            seed: self.seed.unwrap_or(1),
            interval_log: self.interval_log.clone(),
            json: self.json.clone(),
            interval: Duration::from_secs_f64(interval),
            quiet: self.quiet,
            spin: self.spin,
            registrar_pid: self.registrar_pid,
        })
    }
}

fn positive(name: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !(x > 0.0 && x.is_finite()) => Err(format!("{name} must be a positive number")),
        _ => Ok(v),
    }
}

/// Parses a CPU list ("0,1", "none").
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    if s.eq_ignore_ascii_case("none") || s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU id {c:?} in --cores {s:?}"))
        })
        .collect()
}

/// Validated settings of a load run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The registrars (or echo servers).
    pub registrars: Vec<RegistrarAddr>,
    /// Spread the PEs and PUs over the registrars (else fail over in order).
    pub spread: bool,
    /// The targets are echo servers.
    pub echo: bool,
    /// PEs.
    pub pes: usize,
    /// Pools.
    pub pools: usize,
    /// Pool handle prefix.
    pub pool_prefix: String,
    /// Policy of every PE.
    pub policy: Policy,
    /// User-transport address of the PEs.
    pub pe_address: IpAddr,
    /// First user-transport port.
    pub pe_port_base: u16,
    /// Re-registration interval.
    pub rereg_interval: Duration,
    /// Small load changes carried by the periodic re-registrations.
    pub load_changes: bool,
    /// Churn leaves per second.
    pub churn_rate: Option<f64>,
    /// Churn time away.
    pub churn_down: Duration,
    /// Set-up registrations per second.
    pub setup_rate: f64,
    /// PUs.
    pub pus: usize,
    /// Open-loop resolution rate.
    pub rate: Option<f64>,
    /// Closed-loop resolutions in flight.
    pub in_flight: Option<usize>,
    /// Endpoint Unreachable probability per resolution.
    pub eu_prob: f64,
    /// PEs asked for per resolution.
    pub items: u32,
    /// Open-loop re-registration rate.
    pub reg_rate: Option<f64>,
    /// Closed-loop re-registrations in flight.
    pub reg_in_flight: Option<usize>,
    /// Window (or step) length.
    pub duration: Duration,
    /// Set-up limit.
    pub setup_timeout: Duration,
    /// Drain limit.
    pub drain: Duration,
    /// Response timeout.
    pub timeout: Duration,
    /// Worker threads.
    pub threads: usize,
    /// CPUs to pin to.
    pub cores: Vec<usize>,
    /// Seed.
    pub seed: u64,
    /// Interval log path.
    pub interval_log: Option<PathBuf>,
    /// JSON summary path.
    pub json: Option<PathBuf>,
    /// Progress / interval-log period.
    pub interval: Duration,
    /// No progress line.
    pub quiet: bool,
    /// Spin instead of sleeping for sub-millisecond waits.
    pub spin: bool,
    /// Registrar pid for CPU accounting.
    pub registrar_pid: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> RunOptions {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            o: RunOptions,
        }
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        <P as clap::Parser>::parse_from(v).o
    }

    #[test]
    fn defaults_resolve() {
        let s = opts(&[]).resolve().unwrap();
        assert_eq!(s.pes, 100);
        assert_eq!(s.registrars, vec!["tcp:127.0.0.1:3863".parse().unwrap()]);
        assert!(s.rate.is_none());
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for args in [
            &["--rate", "10", "--in-flight", "3"][..],
            &["--eu-prob", "2"],
            &["--pools", "0"],
            &["--pes", "3", "--pools", "5"],
            &[
                "--registrar",
                "tcp:127.0.0.1:1",
                "--registrar",
                "sctp:127.0.0.1:2",
            ],
            &["--registrar", "nonsense"],
            &["--policy", "Nope"],
            &["--targets", "both"],
            &["--cores", "a,b"],
            &["--rate=-1"],
            &["--duration", "1e300"],
            &["--interval", "0"],
        ] {
            let e = opts(args).resolve().unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn scenario_keys_are_the_long_options_and_the_command_line_wins() {
        let file: RunOptions = toml::from_str(
            "pes = 7\npools = 7\nrate = 100.0\nregistrar = [\"tcp:127.0.0.1:9\"]\necho = true\n",
        )
        .unwrap();
        let cli = opts(&["--pes", "14"]);
        let s = cli.merge(file).resolve().unwrap();
        assert_eq!(s.pes, 14);
        assert_eq!(s.pools, 7);
        assert_eq!(s.rate, Some(100.0));
        assert!(s.echo);
        assert!(toml::from_str::<RunOptions>("no-such-key = 1").is_err());
    }
}
