//! End to end over TCP on loopback, with the real binary: registration,
//! resolution, keep-alive, deregistration, association loss, malformed input
//! of every class (answered while others are served), rate limits, metrics,
//! start-up errors and shutdown.

mod common;
use std::time::Duration;

use common::*;
use rserpool_wire::asap::*;
use rserpool_wire::*;

const RR: Policy = Policy::RoundRobin {};

#[test]
fn register_resolve_deregister() {
    let reg = Reg::start(&[]);
    let mut pe = reg.connect();
    let addrs = lo();
    pe.send(&registration("EchoPool", 0x1234, RR, &addrs));
    let bytes = pe.recv();
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(!r.reject && r.error.is_none());
    assert_eq!(r.pe_id, PeId(0x1234));

    let mut pu = reg.connect();
    assert_eq!(resolve(&mut pu, "EchoPool"), Ok(vec![0x1234]));
    // The answer names our PE with this registrar as home, no ASAP transport.
    pu.send(&resolution("EchoPool", None));
    let bytes = pu.recv();
    let AsapMessage::HandleResolutionResponse(h) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    let e = h.elements.iter().next().unwrap();
    assert!(e.home_server.0 != 0 && e.asap_transport.is_none());
    assert_eq!(
        e.user_transport.addresses.iter().collect::<Vec<_>>(),
        addrs.to_vec()
    );

    pe.send(&AsapMessage::Deregistration(Deregistration {
        pool_handle: PoolHandle::new(b"EchoPool").unwrap(),
        pe_id: PeId(0x1234),
    }));
    let bytes = pe.recv();
    let AsapMessage::DeregistrationResponse(d) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(d.error.is_none());
    assert_eq!(
        resolve(&mut pu, "EchoPool"),
        Err(CauseCode::UNKNOWN_POOL_HANDLE)
    );
}

#[test]
fn the_glommio_driver_serves_the_same_protocol() {
    // The comparison driver behind the runtime seam: same core, same answers.
    let reg = Reg::start(&["--driver", "glommio", "--shards", "1"]);
    let mut pe = reg.connect();
    let addrs = lo();
    for id in [7, 8] {
        pe.send(&registration("GlommioPool", id, RR, &addrs));
        let bytes = pe.recv();
        let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
            panic!()
        };
        assert!(!r.reject && r.error.is_none());
    }
    let mut pu = reg.connect();
    let mut ids = resolve(&mut pu, "GlommioPool").unwrap();
    ids.sort_unstable();
    assert_eq!(ids, vec![7, 8]);
    assert_eq!(
        resolve(&mut pu, "NoSuchPool"),
        Err(CauseCode::UNKNOWN_POOL_HANDLE)
    );
    // Several requests in one write get every answer.
    let one = resolution("GlommioPool", Some(1)).to_vec().unwrap();
    pu.send_raw(&one.repeat(5));
    for _ in 0..5 {
        let bytes = pu.recv();
        let AsapMessage::HandleResolutionResponse(h) = AsapMessage::parse(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(h.elements.iter().count(), 1);
    }
}

#[test]
fn inconsistent_registration_is_refused_with_the_pools_policy() {
    let reg = Reg::start(&[]);
    let mut pe = reg.connect();
    let addrs = lo();
    pe.send(&registration("p", 1, Policy::LeastUsed { load: 3 }, &addrs));
    pe.recv();
    pe.send(&registration("p", 2, RR, &addrs));
    let bytes = pe.recv();
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(r.reject);
    let c = r.error.unwrap().causes.iter().next().unwrap();
    assert_eq!(c.code, CauseCode::INCONSISTENT_POLICY);
    assert_eq!(
        c.info,
        CauseInfo::Policy(Policy::LeastUsed { load: 3 }.into())
    );
}

#[test]
fn keep_alive_ack_keeps_and_silence_removes() {
    let reg = Reg::start(&[
        "--keep-alive-interval",
        "300",
        "--keep-alive-timeout",
        "300",
        "--keep-alive-jitter",
        "0",
    ]);
    let mut pe = reg.connect();
    let addrs = lo();
    pe.send(&registration("ka", 7, RR, &addrs));
    pe.recv();
    for _ in 0..3 {
        let bytes = pe.recv();
        let AsapMessage::EndpointKeepAlive(k) = AsapMessage::parse(&bytes).unwrap() else {
            panic!("keep-alive")
        };
        assert_eq!(
            (k.pool_handle.as_bytes(), k.pe_id, k.home),
            (&b"ka"[..], Some(PeId(7)), false)
        );
        pe.send(&AsapMessage::EndpointKeepAliveAck(EndpointKeepAliveAck {
            pool_handle: k.pool_handle,
            pe_id: PeId(7),
        }));
    }
    let mut pu = reg.connect();
    assert_eq!(resolve(&mut pu, "ka"), Ok(vec![7]), "acked: still there");
    // Stop acking: removed after one more keep-alive, and the association is
    // aborted (as RSPLIB does).
    assert!(
        pe.closed_within(Duration::from_secs(3)),
        "aborted after the missed ack"
    );
    assert!(eventually(Duration::from_secs(2), || resolve(
        &mut pu, "ka"
    ) == Err(
        CauseCode::UNKNOWN_POOL_HANDLE
    )));
}

#[test]
fn association_loss_removes_its_pes() {
    let reg = Reg::start(&[]);
    let addrs = lo();
    let mut pe = reg.connect();
    pe.send(&registration("lost", 1, RR, &addrs));
    pe.recv();
    pe.send(&registration("lost", 2, RR, &addrs));
    pe.recv();
    let mut other = reg.connect();
    other.send(&registration("lost", 3, RR, &addrs));
    other.recv();
    let mut pu = reg.connect();
    assert_eq!(
        resolve(&mut pu, "lost").map(|mut v| {
            v.sort();
            v
        }),
        Ok(vec![1, 2, 3])
    );
    drop(pe);
    assert!(eventually(Duration::from_secs(2), || resolve(
        &mut pu, "lost"
    ) == Ok(vec![3])));
}

/// Sends `bytes` and returns the cause of the ASAP_ERROR received, or None.
fn error_for(p: &mut Peer, bytes: &[u8]) -> Option<(CauseCode, Vec<u8>)> {
    p.send_raw(bytes);
    let reply = p.recv_within(Duration::from_millis(500))?;
    let AsapMessage::Error(e) = AsapMessage::parse(&reply).unwrap() else {
        panic!("not an ASAP_ERROR: {reply:02x?}")
    };
    let c = e.error.causes.iter().next().unwrap();
    let CauseInfo::Bytes(info) = c.info else {
        panic!()
    };
    Some((c.code, info.to_vec()))
}

#[test]
fn malformed_input_gets_the_right_cause_while_others_are_served() {
    let reg = Reg::start(&[]);
    let addrs = lo();
    let mut pe = reg.connect();
    pe.send(&registration("busy", 9, RR, &addrs));
    pe.recv();
    // A client that keeps resolving all along.
    let port = reg.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let bystander = std::thread::spawn(move || {
        let mut pu = Peer::connect(port);
        let mut n = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(resolve(&mut pu, "busy"), Ok(vec![9]));
            n += 1;
        }
        n
    });

    let mut bad = reg.connect();
    // Unknown message type 0x55 (bits 01: report) -> 0x2 with the message.
    let unknown = [0x55, 0, 0, 8, 1, 2, 3, 4];
    assert_eq!(
        error_for(&mut bad, &unknown),
        Some((CauseCode::UNRECOGNIZED_MESSAGE, unknown.to_vec()))
    );
    // Unknown type 0x15 (bits 00): silently dropped.
    assert_eq!(error_for(&mut bad, &[0x15, 0, 0, 4]), None);
    // Unknown parameter 0x4123 (stop and report) -> 0x1 with the parameter.
    let hr_unknown = [5, 0, 0, 16, 0, 9, 0, 5, b'x', 0, 0, 0, 0x41, 0x23, 0, 4];
    assert_eq!(
        error_for(&mut bad, &hr_unknown),
        Some((CauseCode::UNRECOGNIZED_PARAMETER, vec![0x41, 0x23, 0, 4]))
    );
    // Unknown parameter 0xc123 (skip and report): reported AND answered.
    bad.send_raw(&[
        5, 0, 0, 16, 0, 9, 0, 8, b'b', b'u', b's', b'y', 0xc1, 0x23, 0, 4,
    ]);
    let (b1, b2) = (bad.recv(), bad.recv());
    let first = AsapMessage::parse(&b1).unwrap();
    let second = AsapMessage::parse(&b2).unwrap();
    assert!(matches!(first, AsapMessage::Error(_)), "{first:?}");
    assert!(
        matches!(second, AsapMessage::HandleResolutionResponse(_)),
        "{second:?}"
    );
    // Bad padding inside a message -> 0x3 Invalid Values.
    let bad_pad = [5, 0, 0, 12, 0, 9, 0, 5, b'x', 1, 0, 0];
    assert_eq!(
        error_for(&mut bad, &bad_pad).map(|e| e.0),
        Some(CauseCode::INVALID_VALUES)
    );
    // A pool handle of 33 bytes -> 0x3 (RSPLIB would crash on it).
    let mut long = vec![5, 0, 0, 41, 0, 9, 0, 37];
    long.extend_from_slice(&[b'a'; 33]);
    long.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        error_for(&mut bad, &long).map(|e| e.0),
        Some(CauseCode::INVALID_VALUES)
    );
    // A registration without its Pool Element -> 0x3.
    let no_pe = [1, 0, 0, 12, 0, 9, 0, 5, b'x', 0, 0, 0];
    assert_eq!(
        error_for(&mut bad, &no_pe).map(|e| e.0),
        Some(CauseCode::INVALID_VALUES)
    );
    // After all that, this connection still works.
    assert_eq!(resolve(&mut bad, "busy"), Ok(vec![9]));
    // A frame length below 4 cannot be framed: the connection is closed.
    bad.send_raw(&[5, 0, 0, 2]);
    assert!(bad.closed_within(Duration::from_secs(2)));
    // So is a message over the size limit (announced length 65535 > 8192).
    let reg2 = Reg::start(&["--max-message-size", "8192"]);
    let mut big = reg2.connect();
    big.send_raw(&[5, 0, 0xff, 0xff]);
    assert!(big.closed_within(Duration::from_secs(2)));

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = bystander.join().unwrap();
    assert!(
        served > 10,
        "the bystander was served throughout ({served} resolutions)"
    );
}

#[test]
fn handle_resolution_rate_limit_holds() {
    let reg = Reg::start(&["--max-hr-rate", "20"]);
    let addrs = lo();
    let mut pe = reg.connect();
    pe.send(&registration("rl", 1, RR, &addrs));
    pe.recv();
    let mut pu = reg.connect();
    // A burst of 40 back-to-back requests: most are refused (answered as
    // unknown pool, as RSPLIB does).
    let refused = (0..40).filter(|_| resolve(&mut pu, "rl").is_err()).count();
    assert!(refused >= 20, "only {refused} of 40 refused");
    // Another association is not affected, and a paced one passes.
    let mut calm = reg.connect();
    for _ in 0..5 {
        assert_eq!(resolve(&mut calm, "rl"), Ok(vec![1]));
        std::thread::sleep(Duration::from_millis(120));
    }
}

#[test]
fn metrics_endpoint_reports_counters() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = format!("127.0.0.1:{port}");
    let reg = Reg::start(&["--metrics", &m]);
    let addrs = lo();
    let mut pe = reg.connect();
    pe.send(&registration("m", 1, RR, &addrs));
    pe.recv();
    let mut pu = reg.connect();
    resolve(&mut pu, "m").unwrap();
    let body = std::process::Command::new("curl")
        .args(["-s", &format!("http://{m}/metrics")])
        .output();
    let text = match body {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&m).unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut t = String::new();
            s.read_to_string(&mut t).unwrap();
            t
        }
    };
    assert!(
        text.contains("rserpool_registrations_total{core=\"0\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rserpool_resolutions_total{core=\"0\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rserpool_request_latency_seconds{core=\"0\",quantile=\"0.99\"}"),
        "{text}"
    );
}

#[test]
fn startup_errors_are_one_clear_line() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Port in use by a listener without SO_REUSEPORT.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args([
            "--asap",
            &format!("127.0.0.1:{port}"),
            "--announce",
            "off",
            "--transport",
            "tcp",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}/tcp")) && err.contains("in use"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    // A bad address.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["--asap", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--asap"));
    // An unknown RSPLIB-style option.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args(["-frobnicate=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-frobnicate"));
    // io_uring refuses to set up the glommio driver's ring (a ring deeper
    // than the kernel allows fails like an io_uring that is unavailable):
    // one line at start-up, exit 1, not a registrar with a dead core.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
        .args([
            "--driver",
            "glommio",
            "--shards",
            "1",
            "--asap",
            "127.0.0.1:0",
            "--transport",
            "tcp",
            "--announce",
            "off",
        ])
        .env("RSERPOOL_GLOMMIO_RING_DEPTH", "1000000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("registrar: error: cannot start glommio (io_uring unavailable"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("is ready"),
        "{err}"
    );
    // SCTP required on a kernel without it.
    if !rserpool_net::sctp::available() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_registrar"))
            .args([
                "--asap",
                "127.0.0.1:0",
                "--transport",
                "sctp",
                "--announce",
                "off",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            err.contains("--transport sctp: this kernel has no SCTP"),
            "{err}"
        );
    }
}

#[test]
fn rsplib_spellings_start_it_and_sigterm_stops_it() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let asap = format!("-asap=127.0.0.1:{port}");
    let mut reg = Reg::start_raw(&[
        &asap,
        "-asapannounce=off",
        "-minaddressscope=loopback",
        "-loglevel=3",
        "--transport",
        "tcp",
    ]);
    assert_eq!(reg.port, port);
    let mut pu = reg.connect();
    assert_eq!(
        resolve(&mut pu, "none"),
        Err(CauseCode::UNKNOWN_POOL_HANDLE)
    );
    // SIGTERM: a clean exit, connections closed.
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(reg.child.id() as i32, libc::SIGTERM) };
    assert!(pu.closed_within(Duration::from_secs(3)));
    let status = reg.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn metric(addr: &str, name: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut t = String::new();
    s.read_to_string(&mut t).unwrap();
    t.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_client_that_does_not_read_is_paused_loses_nothing_and_stalls_nobody() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let m = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    // The PEs below never answer keep-alives: a long interval keeps them
    // registered however slowly this machine reads the 400 000 answers.
    let reg = Reg::start(&[
        "--send-queue-limit",
        "16384",
        "--metrics",
        &m,
        "--keep-alive-interval",
        "300000",
    ]);
    let pool = "a-pool-handle-of-32-bytes-length";
    let addrs = lo();
    let mut pe = reg.connect();
    for id in 1..=3 {
        pe.send(&registration(pool, id, RR, &addrs));
        pe.recv();
    }
    let rss_before = rss_kib(reg.child.id());

    // The slow pool user: small socket buffers, sends a great many requests
    // and reads nothing for now.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    let to: std::net::SocketAddr = ([127, 0, 0, 1], reg.port).into();
    sock.connect(&to.into()).unwrap();
    let slow: std::net::TcpStream = sock.into();
    let request = resolution(pool, None).to_vec().unwrap();
    const TOTAL: usize = 400_000;
    const CHUNK: usize = 1000;
    let chunk: Vec<u8> = request.repeat(CHUNK);
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let mut w = slow.try_clone().unwrap();
        let written = written.clone();
        std::thread::spawn(move || {
            for _ in 0..TOTAL / CHUNK {
                w.write_all(&chunk).unwrap();
                written.fetch_add(CHUNK, Ordering::Relaxed);
            }
        })
    };

    // The writer stalls: the registrar stopped reading the connection.
    let mut last = usize::MAX;
    let mut still = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while still < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never stalled"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = written.load(Ordering::Relaxed);
        assert!(
            now < TOTAL,
            "the registrar read all {TOTAL} requests of a client that reads nothing"
        );
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    eprintln!("writer stalled after {last} of {TOTAL} requests");
    assert!(metric(&m, "rserpool_connections_paused_total") >= 1);

    // Others are still served, and memory stayed bounded.
    let mut pu = reg.connect();
    assert_eq!(resolve(&mut pu, pool).map(|v| v.len()), Ok(3));
    let grown = rss_kib(reg.child.id()).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "registrar grew by {grown} KiB");

    // Once it reads, every request it sent is answered, in order.
    let mut r = slow;
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 1 << 16];
    let mut answers = 0;
    r.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while answers < TOTAL {
        let n = r.read(&mut tmp).expect("answers keep coming");
        assert!(n > 0, "closed after {answers} answers");
        buf.extend_from_slice(&tmp[..n]);
        let mut pos = 0;
        while let Ok(Some(f)) = frame_len(&buf[pos..]) {
            if buf.len() - pos < f {
                break;
            }
            let AsapMessage::HandleResolutionResponse(h) =
                AsapMessage::parse(&buf[pos..pos + f]).unwrap()
            else {
                panic!("answer {answers} is not a handle resolution response")
            };
            assert_eq!(h.elements.iter().count(), 3);
            answers += 1;
            pos += f;
        }
        buf.drain(..pos);
    }
    writer.join().unwrap();
    assert!(buf.is_empty());
}

#[test]
fn with_a_peer_configured_every_change_reaches_the_replication_core() {
    let m = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    // ENRP itself is later work: the peer is only configured, never dialled.
    let reg = Reg::start(&["--metrics", &m, "--peer", "127.0.0.1:9"]);
    let addrs = lo();
    let mut pe = reg.connect();
    for id in 1..=3 {
        pe.send(&registration("replicated", id, RR, &addrs));
        pe.recv();
    }
    // Three adds and a re-registration (an update too), then association
    // loss removes all three: 4 + 3 events.
    pe.send(&registration("replicated", 1, RR, &addrs));
    pe.recv();
    assert!(eventually(Duration::from_secs(3), || metric(
        &m,
        "rserpool_replication_updates_total"
    ) == 4));
    drop(pe);
    assert!(eventually(Duration::from_secs(3), || metric(
        &m,
        "rserpool_replication_updates_total"
    ) == 7));
    assert_eq!(metric(&m, "rserpool_replication_dropped_total"), 0);
}

#[test]
fn frames_split_across_reads_and_many_in_one_read_are_all_answered() {
    let reg = Reg::start(&[]);
    let addrs = lo();
    let mut pe = reg.connect();
    // A registration trickles in, a few bytes at a time.
    let r = registration("split", 1, RR, &addrs).to_vec().unwrap();
    for piece in r.chunks(7) {
        pe.send_raw(piece);
        std::thread::sleep(Duration::from_millis(20));
    }
    let bytes = pe.recv();
    let AsapMessage::RegistrationResponse(resp) = AsapMessage::parse(&bytes).unwrap() else {
        panic!()
    };
    assert!(!resp.reject);
    // Then 200 resolutions in one write whose end is cut mid-frame, the
    // rest of that frame after a pause: 201 answers, in order.
    let one = resolution("split", Some(1)).to_vec().unwrap();
    let mut stream = one.repeat(201);
    let tail = stream.split_off(stream.len() - 5);
    let mut pu = reg.connect();
    pu.send_raw(&stream);
    std::thread::sleep(Duration::from_millis(100));
    pu.send_raw(&tail);
    for i in 0..201 {
        let bytes = pu.recv();
        let AsapMessage::HandleResolutionResponse(h) = AsapMessage::parse(&bytes).unwrap() else {
            panic!("answer {i} is not a resolution response")
        };
        assert_eq!(
            h.elements.iter().map(|e| e.id.0).collect::<Vec<_>>(),
            vec![1]
        );
    }
    assert!(
        pu.recv_within(Duration::from_millis(200)).is_none(),
        "one answer each"
    );
}
