//! A measurement driver for the runtime comparison: closed-loop, pipelined
//! handle resolutions against any registrar (ours or RSPLIB's), over TCP or
//! SCTP, reporting throughput and the server's CPU time per request (summed
//! over its threads from /proc/PID/task/*/schedstat). Not a load generator:
//! see loadgen/ for that.
//!
//! usage: hr_load --target ADDR:PORT [--transport tcp|sctp] [--conns N]
//!                [--depth D] [--seconds S] [--pool NAME] [--pools N]
//!                [--pid PID] [--register K --pe-addr IP] [--echo]
//!
//! `--register K` first registers K PEs in each pool (user transport SCTP at
//! --pe-addr, which must be an address of this host: RSPLIB checks it
//! against the association). `--pools N` (default 1) spreads the requests
//! over N pools named NAME0 .. NAME(N-1) (just NAME when N is 1): connection
//! `c` starts at pool `c mod N` and each of its requests asks for the next
//! pool, so with several shards some requests cross the mesh. `--echo`
//! talks to an echo server instead: every request is just sent back (the
//! floor).
//!
//! `requests=` counts the answers in the measured window, `answers=` all of
//! them (warm-up included, registrations not).
//!
//! Every answer must be a Handle Resolution Response with at least one PE;
//! any other answer (an unknown pool, say, after the PEs timed out) is
//! counted in `failed=` and makes the exit status 1, so a run that measured
//! error answers cannot pass for a measurement.

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
    pools: usize,
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
        pools: 1,
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
            "--pools" => a.pools = val.parse().expect("--pools N"),
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
    assert!(a.pools >= 1, "--pools: at least 1");
    a
}

impl Args {
    /// The handle of pool `i` (of `--pools`).
    fn pool_name(&self, i: usize) -> String {
        if self.pools == 1 {
            self.pool.clone()
        } else {
            format!("{}{i}", self.pool)
        }
    }
}

/// Whether `m` is a Handle Resolution Response carrying at least one PE.
fn resolved(m: &[u8]) -> bool {
    matches!(
        AsapMessage::parse(m),
        Ok(AsapMessage::HandleResolutionResponse(r)) if r.error.is_none() && !r.elements.is_empty()
    )
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

    /// Receives one message; returns `check` of its bytes.
    fn recv<T>(&mut self, check: impl Fn(&[u8]) -> T) -> Option<T> {
        match self {
            Self::Tcp(s, buf) => loop {
                if let Ok(Some(n)) = frame_len(buf) {
                    if buf.len() >= n {
                        let t = check(&buf[..n]);
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
                (r.len > 0).then(|| check(&b[..r.len]))
            }
        }
    }
}

fn main() {
    let a = args();
    if a.register > 0 {
        let mut c = Conn::open(&a);
        let addrs = [a.pe_addr];
        for (pool, id) in (0..a.pools).flat_map(|p| (1..=a.register).map(move |k| (p, k))) {
            let name = a.pool_name(pool);
            let reg = AsapMessage::Registration(Registration {
                pool_handle: PoolHandle::new(name.as_bytes()).unwrap(),
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
            assert_eq!(c.recv(|m| m[0]), Some(3), "registration response");
        }
        // Keep the PEs' association open (and its keep-alives answered by
        // nobody: use registrars with long keep-alive timeouts for runs
        // longer than a few seconds, or rely on RSPLIB's 5 s + 5 s).
        std::mem::forget(c);
    }
    let hrs: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..a.pools)
            .map(|i| {
                let name = a.pool_name(i);
                AsapMessage::HandleResolution(HandleResolution {
                    subscribe: false,
                    pool_handle: PoolHandle::new(name.as_bytes()).unwrap(),
                    option: Some(HandleResolutionOption { items: 1 }),
                })
                .to_vec()
                .unwrap()
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    let a = Arc::new(a);
    for conn in 0..a.conns {
        let (a, stop, done, failed, started, hrs) = (
            a.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
            started.clone(),
            hrs.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut c = Conn::open(&a);
            let mut next = conn % hrs.len();
            let mut send = |c: &mut Conn| {
                c.send(&hrs[next]);
                next = (next + 1) % hrs.len();
            };
            started.fetch_add(1, Ordering::Relaxed);
            for _ in 0..a.depth {
                send(&mut c);
            }
            let echo = a.echo;
            while !stop.load(Ordering::Relaxed) {
                let Some(ok) = c.recv(|m| echo || resolved(m)) else {
                    break;
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
                send(&mut c);
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
    // Counted over the whole run, warm-up included.
    let (answers, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let n = d1 - d0;
    let rate = n as f64 / el.as_secs_f64();
    let cpu = if a.pid.is_some() && n > 0 {
        format!("{:.2}", (c1 - c0) as f64 / 1000.0 / n as f64)
    } else {
        "-".into()
    };
    println!(
        "transport={} conns={} depth={} pools={} requests={n} rate={rate:.0}/s server_cpu_us_per_request={cpu} server_cpu_share={:.2} answers={answers} failed={failed}",
        if a.sctp { "sctp" } else { "tcp" },
        a.conns,
        a.depth,
        a.pools,
        (c1 - c0) as f64 / el.as_nanos() as f64
    );
    std::process::exit(i32::from(failed > 0));
}
