//! `poolctl register POOL`: registers a pool element through
//! `rserpool-client` (which keeps it registered: re-registration,
//! keep-alive answers, registrar failover), stays until stopped (Ctrl-C,
//! SIGTERM) or for `--for SECONDS`, then deregisters.
//!
//! The PE listens on its transport address like any PE but serves nothing:
//! sessions from pool users are accepted and closed at once.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use rserpool_client::{AddressScope, Error, PeId, PeOptions, PoolElement, parse_policy, with_load};
use serde_json::json;

use super::client::{CmdError, RegistrarArgs, policy_json, policy_text};

/// Arguments of `poolctl register`.
#[derive(Clone, Debug, Args)]
pub struct RegisterArgs {
    /// The pool handle (1 to 32 bytes).
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// The PE identifier, decimal or 0x-hex (default: random).
    #[arg(long = "id", value_name = "ID", value_parser = parse_pe_id)]
    pub id: Option<PeId>,
    /// Selection policy and its values in RSPLIB's spelling: `RoundRobin`,
    /// `WeightedRoundRobin:W`, `Random`, `WeightedRandom:W`, `Priority:P`,
    /// `LeastUsed`, `LeastUsedDegradation:D`, `PriorityLeastUsed:P`, ...
    /// (fractions as 0..1).
    #[arg(long, value_name = "SPEC", default_value = "RoundRobin")]
    pub policy: String,
    /// The load to register with, for load-based policies (0 to 2^32-1).
    #[arg(long, value_name = "LOAD")]
    pub load: Option<u32>,
    /// Where the PE listens, `ADDR:PORT` (default 0.0.0.0:0: every address,
    /// a free port). Its transport is `--transport`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub local: Option<SocketAddr>,
    /// Addresses to register instead of those found from `--local`; may be
    /// repeated.
    #[arg(long = "address", value_name = "IP")]
    pub addresses: Vec<IpAddr>,
    /// Narrowest scope of a registered address: loopback, link-local,
    /// site-local or global (default site-local, loopback when `--local`
    /// is a loopback address).
    #[arg(long, value_name = "SCOPE", value_parser = parse_scope)]
    pub min_scope: Option<AddressScope>,
    /// Registration lifetime in seconds (default 3 x the re-registration
    /// interval, as RSPLIB).
    #[arg(long, value_name = "SECONDS")]
    pub lifetime: Option<f64>,
    /// Re-registration interval in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub rereg_interval: f64,
    /// Deregister and exit after this many seconds (default: stay until
    /// Ctrl-C or SIGTERM).
    #[arg(long = "for", value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// The registrar.
    #[command(flatten)]
    pub registrar: RegistrarArgs,
}

fn parse_pe_id(s: &str) -> Result<PeId, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("bad PE id {s:?}: {e}"))?;
    if v == 0 {
        return Err("a PE id must not be 0".into());
    }
    Ok(PeId(v))
}

fn parse_scope(s: &str) -> Result<AddressScope, String> {
    s.parse()
}

fn seconds(what: &str, v: f64) -> Result<Duration, CmdError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .ok_or_else(|| CmdError::Usage(format!("bad {what} {v}")))
}

impl RegisterArgs {
    /// The client library's PE options these arguments ask for.
    pub fn options(&self) -> Result<PeOptions, CmdError> {
        let mut policy = parse_policy(&self.policy).map_err(CmdError::Usage)?;
        if let Some(l) = self.load {
            policy = with_load(policy, l);
        }
        let local = self
            .local
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let min_address_scope = self.min_scope.unwrap_or(if local.ip().is_loopback() {
            AddressScope::Loopback
        } else {
            AddressScope::SiteLocal
        });
        let rereg = seconds("--rereg-interval", self.rereg_interval)?;
        if rereg.is_zero() {
            return Err(CmdError::Usage("--rereg-interval must be above 0".into()));
        }
        let life = self
            .lifetime
            .map(|l| seconds("--lifetime", l))
            .transpose()?;
        if life.is_some_and(|l| l < Duration::from_millis(1)) {
            return Err(CmdError::Usage("--lifetime must be above 0".into()));
        }
        let t = self.registrar.timeout()?;
        Ok(PeOptions {
            policy,
            proto: self.registrar.transport.into(),
            local,
            addresses: (!self.addresses.is_empty()).then(|| self.addresses.clone()),
            min_address_scope,
            id: self.id,
            reregistration_interval: rereg,
            registration_life: life,
            // A connect, then every transmission of the request.
            registration_wait: t * 4,
            ..PeOptions::default()
        })
    }
}

/// Registers, reports it on `out`, waits until `stop` is set or `--for`
/// passes, deregisters and reports that.
pub fn run(args: &RegisterArgs, stop: &AtomicBool, out: &mut impl Write) -> Result<(), CmdError> {
    let cfg = args.registrar.config()?;
    let opts = args.options()?;
    let (policy, rereg, life) = (
        opts.policy,
        opts.reregistration_interval,
        opts.registration_life
            .unwrap_or(opts.reregistration_interval.saturating_mul(3)),
    );
    let until = args
        .duration
        .map(|d| seconds("--for", d))
        .transpose()?
        .map(|d| Instant::now() + d);
    let pool = &args.pool;
    let pe = PoolElement::register(&cfg, pool.as_bytes(), opts).map_err(|e| match e {
        Error::InvalidPoolHandle => {
            CmdError::Usage(format!("invalid pool handle {pool:?} (1 to 32 bytes)"))
        }
        e => CmdError::Failed(format!(
            "register in {pool:?}: {e} (registrar {})",
            args.registrar.describe()
        )),
    })?;
    let status = pe.status();
    let home = status
        .home
        .as_ref()
        .map_or_else(|| args.registrar.describe(), ToString::to_string);
    let addrs: Vec<String> = pe.addresses().iter().map(ToString::to_string).collect();
    if args.registrar.json {
        let v = json!({
            "event": "registered",
            "pool": pool,
            "pe_id": crate::json::pe_id(pe.id()),
            "registrar": home,
            "home_server_id": status.home_server.map(crate::json::server_id),
            "transport": pe.proto().name(),
            "local": pe.local_addr().to_string(),
            "port": pe.local_addr().port(),
            "addresses": addrs,
            "policy": policy_json(&policy),
            "registration_life_ms": u64::try_from(life.as_millis()).unwrap_or(u64::MAX),
            "reregistration_interval_ms": u64::try_from(rereg.as_millis()).unwrap_or(u64::MAX),
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out, "registered PE {} in pool {pool}", pe.id())?;
        let server = status
            .home_server
            .map(|s| format!(" (server 0x{:08x})", s.0))
            .unwrap_or_default();
        writeln!(out, "  registrar  {home}{server}")?;
        writeln!(
            out,
            "  transport  {} {} (addresses {})",
            pe.proto().name(),
            pe.local_addr(),
            addrs.join(", ")
        )?;
        writeln!(out, "  policy     {}", policy_text(&policy))?;
        writeln!(
            out,
            "  lifetime   {:?}, re-registration every {:?}",
            life, rereg
        )?;
        writeln!(
            out,
            "  until      {}",
            match args.duration {
                Some(d) => format!("{d} s have passed (or Ctrl-C / SIGTERM)"),
                None => "Ctrl-C / SIGTERM".to_string(),
            }
        )?;
    }
    out.flush()?;
    let id = pe.id();
    while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
        match pe.accept_timeout(Duration::from_millis(100)) {
            // Nothing is served: a pool user that connects is let go.
            Ok(Some(session)) => session.close(),
            Ok(None) => {}
            Err(e) => {
                return Err(CmdError::Failed(format!(
                    "PE {id} in {pool:?}: listening socket failed: {e}"
                )));
            }
        }
    }
    let registrations = pe.status().registrations;
    pe.deregister()
        .map_err(|e| CmdError::Failed(format!("deregister PE {id} from {pool:?}: {e}")))?;
    if args.registrar.json {
        let v = json!({
            "event": "deregistered",
            "pool": pool,
            "pe_id": crate::json::pe_id(id),
            "registrations": registrations,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "deregistered PE {id} from pool {pool} ({registrations} registration{})",
            if registrations == 1 { "" } else { "s" }
        )?;
    }
    out.flush()?;
    Ok(())
}

/// A stop flag that SIGINT and SIGTERM set (for the binary).
pub fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: RegisterArgs,
    }

    fn parse(a: &[&str]) -> Result<RegisterArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("register").chain(a.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn options_carry_policy_values_id_scope_and_times() {
        let a = parse(&[
            "P",
            "--registrar",
            "127.0.0.1:3863",
            "--transport",
            "tcp",
            "--id",
            "0x1f",
            "--policy",
            "LeastUsed",
            "--load",
            "77",
            "--local",
            "127.0.0.1:0",
            "--lifetime",
            "9",
            "--rereg-interval",
            "2.5",
        ])
        .unwrap();
        let o = a.options().unwrap();
        assert_eq!(o.id, Some(PeId(0x1f)));
        assert_eq!(o.policy, rserpool_wire::Policy::LeastUsed { load: 77 });
        assert_eq!(o.proto, rserpool_client::Proto::Tcp);
        assert_eq!(o.min_address_scope, AddressScope::Loopback);
        assert_eq!(o.registration_life, Some(Duration::from_secs(9)));
        assert_eq!(o.reregistration_interval, Duration::from_millis(2500));
        let d = parse(&["P", "--registrar", "10.0.0.1:3863"]).unwrap();
        let o = d.options().unwrap();
        assert_eq!(o.min_address_scope, AddressScope::SiteLocal);
        assert_eq!(o.id, None);
        assert!(parse(&["P", "--registrar", "x", "--id", "0"]).is_err());
        assert!(parse(&["P", "--registrar", "x", "--id", "zz"]).is_err());
        assert!(parse(&["P"]).is_err(), "a registrar is required");
        let bad = parse(&["P", "--registrar", "1.2.3.4:1", "--policy", "Fastest"]).unwrap();
        assert!(matches!(bad.options(), Err(CmdError::Usage(_))));
        let bad = parse(&["P", "--registrar", "1.2.3.4:1", "--lifetime=-3"]).unwrap();
        assert!(matches!(bad.options(), Err(CmdError::Usage(_))));
    }
}
