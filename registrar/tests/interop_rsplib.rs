//! Our registrar under kernel SCTP, with RSPLIB 3.4.4's own pool elements and
//! pool users (run inside the project's SCTP lab where the host has no SCTP;
//! see rserpool_tests::lab).
//!
//! RSPLIB's PEs refuse loopback addresses, so the registrar listens on the
//! lab's site-local address (10.77.0.254 on lo, or 10.77.0.N in namespace
//! host hN).

mod common;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rserpool_tests::lab::{self, Hosts};
use rserpool_wire::asap::*;
use rserpool_wire::*;

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
    let log = std::fs::File::create(format!("{}/{name}.log", out_dir())).unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Proc(child)
}

fn out_dir() -> String {
    let d = std::env::var("RSERPOOL_LAB_OUT").unwrap_or_else(|_| "lab-out-interop".into());
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn log_of(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}.log", out_dir())).unwrap_or_default()
}

fn registrar(name: &'static str, asap: &str, extra: &[&str]) -> Proc {
    let p = spawn(
        name,
        Command::new(env!("CARGO_BIN_EXE_registrar"))
            .args(["--asap", asap, "--log-level", "debug"])
            .args(extra),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_of(name).contains("registrar is ready") {
        assert!(
            Instant::now() < deadline,
            "registrar did not start:\n{}",
            log_of(name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

/// A raw ASAP peer over one-to-one SCTP.
struct SctpPeer {
    s: socket2::Socket,
}

impl SctpPeer {
    fn connect(to: &str) -> Self {
        let a: SocketAddr = to.parse().unwrap();
        let s =
            rserpool_net::sctp::connect(&[a], Some(Duration::from_secs(5))).expect("SCTP connect");
        rserpool_net::sctp::configure(s.as_raw_fd(), 11).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Self { s }
    }

    fn send_ppid(&self, m: &[u8], ppid: u32) {
        rserpool_net::sctp::send(self.s.as_raw_fd(), m, ppid).unwrap();
    }

    fn send(&self, m: &AsapMessage<'_>) {
        self.send_ppid(&m.to_vec().unwrap(), 11);
    }

    fn recv(&self) -> Option<(Vec<u8>, Option<u32>)> {
        let mut buf = vec![0u8; 65536];
        let r = rserpool_net::sctp::recv(self.s.as_raw_fd(), &mut buf).ok()?;
        (r.len > 0).then(|| (buf[..r.len].to_vec(), r.ppid))
    }

    fn resolve(&self, pool: &str) -> Result<Vec<PoolElementInfo>, CauseCode> {
        self.send(&AsapMessage::HandleResolution(HandleResolution {
            subscribe: false,
            pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
            option: Some(HandleResolutionOption { items: 128 }),
        }));
        let (bytes, ppid) = self.recv().expect("an answer");
        assert_eq!(ppid, Some(11), "ASAP answers carry PPID 11");
        let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
            panic!()
        };
        match r.error {
            Some(e) => Err(e.first_code().unwrap()),
            None => Ok(r
                .elements
                .iter()
                .map(|e| PoolElementInfo {
                    id: e.id.0,
                    policy: e.policy.policy_type().0,
                    port: e.user_transport.port,
                })
                .collect()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolElementInfo {
    id: u32,
    policy: u32,
    port: u16,
}

fn wait_for(what: &str, wait: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sctp_serves_asap_with_ppid_checks() {
    if !lab::here("sctp_serves_asap_with_ppid_checks", Hosts(0)) {
        return;
    }
    let _r = registrar(
        "reg-ppid",
        "127.0.0.1:3863",
        &[
            "--announce",
            "off",
            "--min-address-scope",
            "loopback",
            "--keep-alive-interval",
            "1000",
        ],
    );
    let pe = SctpPeer::connect("127.0.0.1:3863");
    let addrs: Vec<std::net::IpAddr> = vec!["127.0.0.1".parse().unwrap()];
    pe.send(&AsapMessage::Registration(Registration {
        pool_handle: PoolHandle::new(b"SctpPool").unwrap(),
        element: PoolElement {
            id: PeId(77),
            home_server: ServerId(0),
            registration_life: 30_000,
            user_transport: Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, &addrs),
            policy: Policy::RoundRobin {}.into(),
            asap_transport: None,
        },
    }));
    let (bytes, ppid) = pe.recv().unwrap();
    assert_eq!(ppid, Some(11));
    assert!(
        matches!(AsapMessage::parse(&bytes).unwrap(), AsapMessage::RegistrationResponse(r) if !r.reject)
    );
    let pu = SctpPeer::connect("127.0.0.1:3863");
    // A message with the wrong PPID is dropped: no answer to it, but the
    // next proper one is answered.
    let hr = AsapMessage::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(b"SctpPool").unwrap(),
        option: None,
    })
    .to_vec()
    .unwrap();
    pu.send_ppid(&hr, 12);
    assert_eq!(
        pu.resolve("SctpPool")
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        vec![77]
    );
    // The keep-alive arrives over SCTP with PPID 11 and is acked.
    let (ka, ppid) = pe.recv().expect("keep-alive within 5 s");
    assert_eq!(ppid, Some(11));
    assert!(matches!(
        AsapMessage::parse(&ka).unwrap(),
        AsapMessage::EndpointKeepAlive(_)
    ));
}

#[test]
fn one_sctp_endpoint_on_several_addresses_and_tcp_on_the_same_port() {
    if !lab::here(
        "one_sctp_endpoint_on_several_addresses_and_tcp_on_the_same_port",
        Hosts(0),
    ) {
        return;
    }
    // Two --asap addresses with one port: one multi-homed SCTP endpoint
    // (sctp_bindx), plus TCP on both addresses.
    let _r = registrar(
        "reg-multihome",
        "127.0.0.1:3863",
        &[
            "--asap",
            "10.77.0.254:3863",
            "--announce",
            "off",
            "--min-address-scope",
            "loopback",
        ],
    );
    let pe = SctpPeer::connect("127.0.0.1:3863");
    // The association knows both of the registrar's addresses.
    let mut peer: Vec<String> = rserpool_net::sctp::peer_addrs(pe.s.as_raw_fd())
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    peer.sort();
    assert_eq!(peer, vec!["10.77.0.254:3863", "127.0.0.1:3863"]);
    let addrs: Vec<std::net::IpAddr> = vec!["127.0.0.1".parse().unwrap()];
    pe.send(&AsapMessage::Registration(Registration {
        pool_handle: PoolHandle::new(b"HomedPool").unwrap(),
        element: PoolElement {
            id: PeId(5),
            home_server: ServerId(0),
            registration_life: 30_000,
            user_transport: Transport::sctp(7000, TransportUse::DATA_PLUS_CONTROL, &addrs),
            policy: Policy::RoundRobin {}.into(),
            asap_transport: None,
        },
    }));
    let (bytes, _) = pe.recv().unwrap();
    assert!(
        matches!(AsapMessage::parse(&bytes).unwrap(), AsapMessage::RegistrationResponse(r) if !r.reject)
    );
    // A PU reaches the same endpoint through the other address over SCTP...
    let pu = SctpPeer::connect("10.77.0.254:3863");
    let ids: Vec<u32> = pu
        .resolve("HomedPool")
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec![5]);
    // ...and over TCP on the same port, at the same time.
    use std::io::Read;
    let mut tcp = std::net::TcpStream::connect("10.77.0.254:3863").unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let hr = AsapMessage::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(b"HomedPool").unwrap(),
        option: None,
    })
    .to_vec()
    .unwrap();
    tcp.write_all(&hr).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while frame_len(&got).ok().flatten().is_none_or(|n| got.len() < n) {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "TCP closed");
        got.extend_from_slice(&buf[..n]);
    }
    let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&got).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.elements.iter().map(|e| e.id.0).collect::<Vec<_>>(),
        vec![5]
    );
}

/// Starts an RSPLIB echo PE.
fn rspserver(
    name: &'static str,
    registrar: Option<&str>,
    pool: &str,
    policy: &str,
    local: &str,
) -> Proc {
    let mut cmd = Command::new("rspserver");
    cmd.args([
        "-echo",
        &format!("-poolhandle={pool}"),
        &format!("-policy={policy}"),
        &format!("-local={local}"),
    ]);
    cmd.args(["-loglevel=3", "-logcolor=off"]);
    match registrar {
        Some(r) => cmd.args([&format!("-registrar={r}"), "-asapannounce=off"]),
        None => cmd.args(["-asapannounce=auto"]),
    };
    spawn(name, &mut cmd)
}

/// Runs rspterminal, typing `line`; returns what it printed.
fn rspterminal(pool: &str, registrar: Option<&str>) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "8",
        "rspterminal",
        &format!("-poolhandle={pool}"),
        "-loglevel=1",
        "-logcolor=off",
    ]);
    match registrar {
        Some(r) => cmd.args([&format!("-registrar={r}"), "-asapannounce=off"]),
        None => cmd.args(["-asapannounce=auto"]),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rspterminal");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "Hello RSerPool").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.replace('\u{1b}', "")
}

#[test]
fn rsplib_pes_register_pus_get_their_echo_and_dead_pes_go() {
    if !lab::here(
        "rsplib_pes_register_pus_get_their_echo_and_dead_pes_go",
        Hosts(0),
    ) {
        return;
    }
    let addr = "10.77.0.254:3863";
    let _r = registrar(
        "reg-rsplib",
        addr,
        &[
            "--announce",
            "off",
            "--keep-alive-interval",
            "1000",
            "--keep-alive-timeout",
            "1000",
            "--keep-alive-jitter",
            "0",
        ],
    );
    // Three echo PEs in one round-robin pool, two in a weighted-random pool.
    let pe1 = rspserver(
        "pe1",
        Some(addr),
        "EchoPool",
        "RoundRobin",
        "10.77.0.254:7001",
    );
    let _pe2 = rspserver(
        "pe2",
        Some(addr),
        "EchoPool",
        "RoundRobin",
        "10.77.0.254:7002",
    );
    let _pe3 = rspserver(
        "pe3",
        Some(addr),
        "EchoPool",
        "RoundRobin",
        "10.77.0.254:7003",
    );
    let _pe4 = rspserver(
        "pe4",
        Some(addr),
        "WeightedPool",
        "WeightedRandom:3",
        "10.77.0.254:7004",
    );
    let _pe5 = rspserver(
        "pe5",
        Some(addr),
        "WeightedPool",
        "WeightedRandom:7",
        "10.77.0.254:7005",
    );
    let probe = SctpPeer::connect(addr);
    wait_for(
        "five RSPLIB PEs registered",
        Duration::from_secs(15),
        || {
            probe.resolve("EchoPool").map(|v| v.len()) == Ok(3)
                && probe.resolve("WeightedPool").map(|v| v.len()) == Ok(2)
        },
    );
    let weighted = probe.resolve("WeightedPool").unwrap();
    assert!(weighted.iter().all(|p| p.policy == 0x4), "{weighted:?}");

    // rspterminal resolves through us and gets its line echoed by a PE.
    let out = rspterminal("EchoPool", Some(addr));
    assert!(
        out.contains("Hello RSerPool"),
        "rspterminal got no echo:\n{out}"
    );

    // The PEs answer our keep-alives: still three after several periods.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(probe.resolve("EchoPool").map(|v| v.len()), Ok(3));

    // A PE that dies (SIGKILL: no deregistration) is removed once its
    // keep-alive goes unanswered or its association is lost.
    let dead_port = 7001;
    drop(pe1);
    wait_for(
        "the killed PE to be removed",
        Duration::from_secs(10),
        || {
            probe
                .resolve("EchoPool")
                .is_ok_and(|v| v.len() == 2 && v.iter().all(|p| p.port != dead_port))
        },
    );
}

#[test]
fn rsplib_finds_us_through_our_announces() {
    if !lab::here("rsplib_finds_us_through_our_announces", Hosts(2)) {
        return;
    }
    // Registrar in host h1; PE and PU in host h2 know no registrar address.
    let ns = |host: &str, prog: &str| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", host, prog]);
        c
    };
    let reg = {
        let mut c = ns("h1", env!("CARGO_BIN_EXE_registrar"));
        c.args([
            "--asap",
            "10.77.0.1:3863",
            "--announce",
            "239.0.0.50:3863",
            "--log-level",
            "debug",
        ]);
        spawn("reg-announce", &mut c)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_of("reg-announce").contains("registrar is ready") {
        assert!(Instant::now() < deadline, "{}", log_of("reg-announce"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _pe = {
        let mut c = ns("h2", "rspserver");
        c.args([
            "-echo",
            "-poolhandle=AnnouncedPool",
            "-local=10.77.0.2:7010",
            "-asapannounce=auto",
            "-loglevel=3",
            "-logcolor=off",
        ]);
        spawn("pe-announce", &mut c)
    };
    let probe = SctpPeer::connect("10.77.0.1:3863");
    wait_for(
        "the PE to find us by announce and register",
        Duration::from_secs(20),
        || probe.resolve("AnnouncedPool").map(|v| v.len()) == Ok(1),
    );
    let out = {
        let mut c = ns("h2", "timeout");
        c.args([
            "8",
            "rspterminal",
            "-poolhandle=AnnouncedPool",
            "-asapannounce=auto",
            "-loglevel=1",
            "-logcolor=off",
        ]);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Let it hear an announce first.
        std::thread::sleep(Duration::from_secs(3));
        writeln!(stdin, "Hello RSerPool").unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(stdin);
        let o = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    assert!(
        out.contains("Hello RSerPool"),
        "no echo via an announced registrar:\n{out}"
    );
    drop(reg);
}
