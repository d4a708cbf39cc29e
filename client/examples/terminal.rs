//! A pool-user terminal, like RSPLIB's `rspterminal`: opens a session to a
//! pool, sends every line typed on stdin, and prints what the PE sends back.
//! Failovers are handled by the session (cookies echoed, unsent lines
//! carried over) and reported on stderr.
//!
//! ```text
//! terminal [--pool NAME] [--registrar [sctp:|tcp:]ADDR:PORT]... [--announce GROUP:PORT|off]
//!          [--transport sctp|tcp] [--cache MS] [--linger MS] [--quiet]
//! ```
//!
//! * `--pool` defaults to `EchoPool`. Without `--registrar`, registrars are
//!   found by announces on 239.0.0.50:3863.
//! * `--transport tcp` talks ASAP to registrars over TCP (our extension);
//!   the session uses whatever transport the chosen PE registered.
//! * At the end of stdin it waits `--linger` ms (default 2000) for replies.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rserpool_client::{
    PoolUser, Proto, RegistrarAddr, RegistrarConfig, SessionEvent, UserConfig,
    config::DEFAULT_ANNOUNCE_GROUP,
};

fn usage(why: &str) -> ! {
    eprintln!("terminal: {why}");
    eprintln!(
        "usage: terminal [--pool NAME] [--registrar [sctp:|tcp:]ADDR:PORT]... \
         [--announce GROUP:PORT|off] [--transport sctp|tcp] [--cache MS] [--linger MS] [--quiet]"
    );
    std::process::exit(2)
}

fn main() {
    let mut pool = "EchoPool".to_string();
    let mut registrars: Vec<RegistrarAddr> = Vec::new();
    let mut announce: Option<Option<SocketAddr>> = None;
    let mut proto = Proto::Sctp;
    let mut user = UserConfig::default();
    let mut linger = Duration::from_millis(2000);
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
            "--transport" => proto = val().parse().unwrap_or_else(|e: String| usage(&e)),
            "--cache" => {
                user.cache_lifetime =
                    Duration::from_millis(val().parse().unwrap_or_else(|_| usage("bad --cache")));
            }
            "--linger" => {
                linger =
                    Duration::from_millis(val().parse().unwrap_or_else(|_| usage("bad --linger")));
            }
            "--quiet" => quiet = true,
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    if !quiet {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("RSERPOOL_LOG")
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    let announce_group = match announce {
        Some(a) => a,
        None if registrars.is_empty() => Some(DEFAULT_ANNOUNCE_GROUP),
        None => None,
    };
    if proto == Proto::Tcp {
        for r in &mut registrars {
            r.proto = Proto::Tcp;
        }
    }
    let cfg = RegistrarConfig {
        registrars,
        announce_group,
        announce_proto: proto,
        ..RegistrarConfig::default()
    };
    let pu = PoolUser::new(&cfg, &user).unwrap_or_else(|e| {
        eprintln!("terminal: {e}");
        std::process::exit(1)
    });
    let session = pu.session(&pool).unwrap_or_else(|e| {
        eprintln!("terminal: no session with pool {pool}: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "connected to PE {}",
        session.pe().map(|p| p.to_string()).unwrap_or_default()
    );
    let session = std::sync::Arc::new(session);
    let printer = {
        let s = session.clone();
        std::thread::spawn(move || print_events(&s))
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Err(e) = session.send(format!("{line}\n").as_bytes()) {
            eprintln!("terminal: {e}");
            std::process::exit(1);
        }
    }
    let until = Instant::now() + linger;
    while Instant::now() < until && !printer.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::exit(0);
}

fn print_events(s: &rserpool_client::Session) {
    loop {
        match s.recv_event(Duration::from_secs(3600)) {
            Ok(Some(SessionEvent::Data { data, .. })) => {
                let pe = s.pe().map(|p| p.to_string()).unwrap_or_default();
                let mut o = std::io::stdout().lock();
                let _ = write!(o, "from PE {pe}: {}", String::from_utf8_lossy(&data));
                let _ = o.flush();
            }
            Ok(Some(SessionEvent::Cookie(c))) => {
                eprintln!("cookie: {}", String::from_utf8_lossy(&c));
            }
            Ok(Some(SessionEvent::Down { pe })) => eprintln!("lost PE {pe}; failing over"),
            Ok(Some(SessionEvent::Up {
                pe, cookie_echoed, ..
            })) => {
                eprintln!(
                    "now at PE {pe}{}",
                    if cookie_echoed {
                        " (cookie echoed)"
                    } else {
                        ""
                    }
                );
            }
            Ok(Some(SessionEvent::Failed(e))) => {
                eprintln!("terminal: session failed: {e}");
                return;
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
}
