//! An echo pool element, like RSPLIB's `rspserver -echo`: registers in a
//! pool and sends every message back with the PPID it came with.
//!
//! ```text
//! echo_pe [--pool NAME] [--registrar [sctp:|tcp:]ADDR:PORT]... [--announce GROUP:PORT|off]
//!         [--transport sctp|tcp] [--local ADDR:PORT] [--policy SPEC] [--rereg-interval MS]
//!         [--min-scope loopback|link-local|site-local|global] [--id ID] [--cookies]
//!         [--runtime MS] [--quiet]
//! ```
//!
//! * `--pool` defaults to `EchoPool`; `--policy` takes RSPLIB's spellings
//!   (`RoundRobin`, `WeightedRandom:3`, `LeastUsed`, ...).
//! * Without `--registrar`, registrars are found by ASAP announces on
//!   239.0.0.50:3863 (as RSPLIB); `--registrar` turns announces off unless
//!   `--announce` is given too.
//! * `--transport tcp` serves (and registers) over TCP and talks ASAP to
//!   the registrar over TCP too (our extension; RSPLIB speaks SCTP only).
//! * `--cookies`: after every echo the PE sends an ASAP Cookie
//!   `echo:<pe id>:<count>`; a pool user failing over echoes the last one to
//!   the next PE, which prints `cookie echo: ...` and continues the count.
//! * Prints one line per event on stdout: `registered ...`, `session from
//!   ...`, `echo N bytes ...`, `cookie echo: ...`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rserpool_client::{
    AddressScope, PeId, PeMessage, PeOptions, PeSession, PoolElement, Proto, RegistrarAddr,
    RegistrarConfig, config::DEFAULT_ANNOUNCE_GROUP, parse_policy,
};

fn usage(why: &str) -> ! {
    eprintln!("echo_pe: {why}");
    eprintln!(
        "usage: echo_pe [--pool NAME] [--registrar [sctp:|tcp:]ADDR:PORT]... [--announce GROUP:PORT|off] \
         [--transport sctp|tcp] [--local ADDR:PORT] [--policy SPEC] [--rereg-interval MS] \
         [--min-scope SCOPE] [--id ID] [--cookies] [--runtime MS] [--quiet]"
    );
    std::process::exit(2)
}

fn out(line: std::fmt::Arguments<'_>) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn main() {
    let mut pool = "EchoPool".to_string();
    let mut registrars: Vec<RegistrarAddr> = Vec::new();
    let mut announce: Option<Option<SocketAddr>> = None;
    let mut opts = PeOptions::default();
    let mut cookies = false;
    let mut runtime: Option<Duration> = None;
    let mut quiet = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--pool" => pool = val(),
            "--registrar" => registrars.push(val().parse().unwrap_or_else(|e: String| usage(&e))),
            "--announce" => {
                let v = val();
                announce = Some(if v == "off" {
                    None
                } else {
                    Some(v.parse().unwrap_or_else(|_| usage("bad --announce")))
                });
            }
            "--transport" => opts.proto = val().parse().unwrap_or_else(|e: String| usage(&e)),
            "--local" => opts.local = val().parse().unwrap_or_else(|_| usage("bad --local")),
            "--policy" => opts.policy = parse_policy(&val()).unwrap_or_else(|e| usage(&e)),
            "--rereg-interval" => {
                opts.reregistration_interval = Duration::from_millis(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("bad --rereg-interval")),
                );
            }
            "--min-scope" => {
                opts.min_address_scope = val().parse().unwrap_or_else(|e: String| usage(&e));
            }
            "--id" => {
                let v = val();
                let id = match v.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16),
                    None => v.parse(),
                };
                opts.id = Some(PeId(id.unwrap_or_else(|_| usage("bad --id"))));
            }
            "--cookies" => cookies = true,
            "--runtime" => {
                runtime = Some(Duration::from_millis(
                    val().parse().unwrap_or_else(|_| usage("bad --runtime")),
                ));
            }
            "--quiet" => quiet = true,
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    if !quiet {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RSERPOOL_LOG")
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    let announce_group = match announce {
        Some(a) => a,
        None if registrars.is_empty() => Some(DEFAULT_ANNOUNCE_GROUP),
        None => None,
    };
    if opts.proto == Proto::Tcp {
        for r in &mut registrars {
            r.proto = Proto::Tcp;
        }
    }
    let cfg = RegistrarConfig {
        registrars,
        announce_group,
        announce_proto: opts.proto,
        ..RegistrarConfig::default()
    };
    if opts.local.ip().is_loopback() && opts.min_address_scope > AddressScope::Loopback {
        opts.min_address_scope = AddressScope::Loopback;
    }
    let pe = match PoolElement::register(&cfg, &pool, opts) {
        Ok(pe) => pe,
        Err(e) => {
            eprintln!("echo_pe: {e}");
            std::process::exit(1);
        }
    };
    out(format_args!(
        "registered PE {} in pool {} at {} ({}, {:?})",
        pe.id(),
        pe.pool(),
        pe.local_addr(),
        pe.proto().name(),
        pe.addresses()
    ));
    let start = Instant::now();
    let id = pe.id();
    loop {
        if runtime.is_some_and(|r| start.elapsed() >= r) {
            break;
        }
        match pe.accept_timeout(Duration::from_millis(200)) {
            Ok(Some(s)) => {
                std::thread::spawn(move || serve(s, id, cookies));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("echo_pe: accept: {e}");
                break;
            }
        }
    }
    match pe.deregister() {
        Ok(()) => out(format_args!("deregistered")),
        Err(e) => out(format_args!("deregistration: {e}")),
    }
}

fn serve(mut s: PeSession, id: PeId, cookies: bool) {
    let peer = s.peer_addr();
    out(format_args!("session from {peer:?}"));
    let mut count: u64 = 0;
    loop {
        match s.recv() {
            Ok(PeMessage::Data { ppid, data }) => {
                out(format_args!("echo {} bytes, ppid {ppid}", data.len()));
                if s.send_ppid(ppid, &data).is_err() {
                    break;
                }
                count += 1;
                if cookies
                    && s.send_cookie(format!("echo:{id}:{count}").as_bytes())
                        .is_err()
                {
                    break;
                }
            }
            Ok(PeMessage::CookieEcho(c)) => {
                let text = String::from_utf8_lossy(&c).into_owned();
                out(format_args!("cookie echo: {text}"));
                // Continue the count where the previous PE left it.
                if let Some(n) = text.rsplit(':').next().and_then(|n| n.parse().ok()) {
                    count = n;
                }
            }
            Ok(PeMessage::BusinessCard { pool, elements }) => {
                out(format_args!(
                    "business card: {pool} with {} PEs",
                    elements.len()
                ));
            }
            Ok(PeMessage::Closed) | Err(_) => break,
        }
    }
    out(format_args!("session from {peer:?} ended"));
}
