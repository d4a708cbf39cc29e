//! A measurement driver for the runtime comparison: closed-loop, pipelined
//! handle resolutions against any registrar (ours or RSPLIB's), over TCP or
//! SCTP, reporting throughput and the server's CPU time per request (summed
//! over its threads from /proc/PID/task/*/schedstat). Not a load generator:
//! see loadgen/ for that.
//!
//! usage: hr_load --target ADDR:PORT [--transport tcp|sctp] [--conns N]
//!                [--depth D] [--seconds S] [--pool NAME] [--pid PID]
//!                [--register K --pe-addr IP] [--echo]
//!
//! `--register K` first registers K PEs (user transport SCTP at --pe-addr,
//! which must be an address of this host: RSPLIB checks it against the
//! association). `--echo` talks to an echo server instead: every request is
//! just sent back (the floor).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rserpool_wire::asap::{HandleResolution, Registration};
use rserpool_wire::*;

struct Args {
    target: SocketAddr,
    sctp: bool,
    conns: usize,
    depth: usize,
    seconds: u64,
    pool: String,
    pid: Option<u32>,
    register: u32,
    pe_addr: IpAddr,
    echo: bool,
}

fn args() -> Args {
    let mut a = Args {
        target: "127.0.0.1:3863".parse().unwrap(),
        sctp: false,
        conns: 1,
        depth: 1,
        seconds: 5,
        pool: "LoadPool".into(),
        pid: None,
        register: 0,
        pe_addr: "127.0.0.1".parse().unwrap(),
        echo: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--target" => a.target = val.parse().expect("--target ADDR:PORT"),
            "--transport" => a.sctp = val == "sctp",
            "--conns" => a.conns = val.parse().expect("--conns N"),
            "--depth" => a.depth = val.parse().expect("--depth D"),
            "--seconds" => a.seconds = val.parse().expect("--seconds S"),
            "--pool" => a.pool = val,
            "--pid" => a.pid = Some(val.parse().expect("--pid PID")),
            "--register" => a.register = val.parse().expect("--register K"),
            "--pe-addr" => a.pe_addr = val.parse().expect("--pe-addr IP"),
            "--echo" => {
                a.echo = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// Server CPU time (all threads), nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
        })
        .sum()
}

enum Conn {
    Tcp(TcpStream, Vec<u8>),
    Sctp(socket2::Socket),
}

impl Conn {
    fn open(a: &Args) -> Self {
        if a.sctp {
            let s = rserpool_net::sctp::connect(&[a.target], Some(Duration::from_secs(5)))
                .expect("SCTP connect");
            rserpool_net::sctp::configure(s.as_raw_fd(), 11).unwrap();
            Self::Sctp(s)
        } else {
            let s = TcpStream::connect(a.target).expect("TCP connect");
            s.set_nodelay(true).unwrap();
            Self::Tcp(s, Vec::with_capacity(65536))
        }
    }

    fn send(&mut self, m: &[u8]) {
        match self {
            Self::Tcp(s, _) => s.write_all(m).unwrap(),
            Self::Sctp(s) => {
                rserpool_net::sctp::send(s.as_raw_fd(), m, 11).unwrap();
            }
        }
    }

    /// Receives one message; returns its type byte.
    fn recv(&mut self) -> Option<u8> {
        match self {
            Self::Tcp(s, buf) => loop {
                if let Ok(Some(n)) = frame_len(buf) {
                    if buf.len() >= n {
                        let t = buf[0];
                        buf.drain(..n);
                        return Some(t);
                    }
                }
                let mut tmp = [0u8; 65536];
                let n = s.read(&mut tmp).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            },
            Self::Sctp(s) => {
                let mut b = [0u8; 65536];
                let r = rserpool_net::sctp::recv(s.as_raw_fd(), &mut b).ok()?;
                (r.len > 0).then_some(b[0])
            }
        }
    }
}

fn main() {
    let a = args();
    if a.register > 0 {
        let mut c = Conn::open(&a);
        let addrs = [a.pe_addr];
        for id in 1..=a.register {
            let reg = AsapMessage::Registration(Registration {
                pool_handle: PoolHandle::new(a.pool.as_bytes()).unwrap(),
                element: PoolElement {
                    id: PeId(id),
                    home_server: ServerId(0),
                    registration_life: 3_600_000,
                    user_transport: Transport::sctp(
                        7000 + id as u16,
                        TransportUse::DATA_PLUS_CONTROL,
                        &addrs,
                    ),
                    policy: Policy::RoundRobin {}.into(),
                    asap_transport: None,
                },
            });
            c.send(&reg.to_vec().unwrap());
            assert_eq!(c.recv(), Some(3), "registration response");
        }
        // Keep the PEs' association open (and its keep-alives answered by
        // nobody: use registrars with long keep-alive timeouts for runs
        // longer than a few seconds, or rely on RSPLIB's 5 s + 5 s).
        std::mem::forget(c);
    }
    let hr = AsapMessage::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(a.pool.as_bytes()).unwrap(),
        option: Some(HandleResolutionOption { items: 1 }),
    })
    .to_vec()
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    let a = Arc::new(a);
    for _ in 0..a.conns {
        let (a, stop, done, started, hr) = (
            a.clone(),
            stop.clone(),
            done.clone(),
            started.clone(),
            hr.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::open(&a);
            started.fetch_add(1, Ordering::Relaxed);
            for _ in 0..a.depth {
                c.send(&hr);
            }
            while !stop.load(Ordering::Relaxed) {
                let Some(t) = c.recv() else { break };
                assert!(a.echo || t == 6, "unexpected answer type {t}");
                done.fetch_add(1, Ordering::Relaxed);
                c.send(&hr);
            }
        }));
    }
    while started.load(Ordering::Relaxed) < a.conns as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Warm up, then measure.
    std::thread::sleep(Duration::from_millis(500));
    let (d0, c0, t0) = (
        done.load(Ordering::Relaxed),
        a.pid.map_or(0, cpu_ns),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(a.seconds));
    let (d1, c1, el) = (
        done.load(Ordering::Relaxed),
        a.pid.map_or(0, cpu_ns),
        t0.elapsed(),
    );
    stop.store(true, Ordering::Relaxed);
    let n = d1 - d0;
    let rate = n as f64 / el.as_secs_f64();
    let cpu = if a.pid.is_some() && n > 0 {
        format!("{:.2}", (c1 - c0) as f64 / 1000.0 / n as f64)
    } else {
        "-".into()
    };
    println!(
        "transport={} conns={} depth={} requests={n} rate={rate:.0}/s server_cpu_us_per_request={cpu} server_cpu_share={:.2}",
        if a.sctp { "sctp" } else { "tcp" },
        a.conns,
        a.depth,
        (c1 - c0) as f64 / el.as_nanos() as f64
    );
    std::process::exit(0);
}
