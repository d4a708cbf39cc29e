//! The `loadgen` binary, briefly, against our registrar over TCP on loopback
//! and against its own echo floor: every request is answered or counted as
//! an error or a timeout, the histograms hold exactly the answered requests,
//! percentiles are present and ordered, the interval log adds up to the
//! summary, and no answer is wrong. A scripted fake registrar that names a
//! PE of another pool shows that wrong answers are caught and counted apart.
//! Over SCTP (inside the project's SCTP lab when this kernel has none), the
//! same against our registrar and against RSPLIB's `rspregistrar`.

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Logs, Proc, registrar_bin};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use rserpool_wire::asap::*;
use rserpool_wire::*;
use serde_json::Value;

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

fn registrar(logs: &Logs) -> (Proc, u16) {
    registrar_named(logs, "registrar")
}

fn registrar_named(logs: &Logs, name: &str) -> (Proc, u16) {
    logs.local_registrar(name, "tcp", &["--cores", "none", "--log-level", "info"])
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("loadgen runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const ANSWERED: [&str; 4] = [
    "registration",
    "reregistration",
    "deregistration",
    "handle_resolution",
];

/// The consistency every stats object must have.
fn check_consistent(where_: &str, stats: &Value) {
    for (name, k) in stats["kinds"].as_object().expect("kinds") {
        let n = |f: &str| {
            k[f].as_u64()
                .unwrap_or_else(|| panic!("{where_}/{name}: {f} missing: {k}"))
        };
        let (sent, ok, wrong, errors, timeouts) =
            (n("sent"), n("ok"), n("wrong"), n("errors"), n("timeouts"));
        assert_eq!(
            sent,
            ok + wrong + errors + timeouts,
            "{where_}/{name}: every request answered or counted: {k}"
        );
        if ANSWERED.contains(&name.as_str()) {
            let lat = &k["latency"];
            if ok + wrong == 0 {
                continue;
            }
            let count = lat["count"]
                .as_u64()
                .unwrap_or_else(|| panic!("{where_}/{name}: latency missing: {k}"));
            assert!(
                count >= ok + wrong && count <= ok + wrong + errors,
                "{where_}/{name}: histogram holds the answered requests: {k}"
            );
            let p: Vec<f64> = ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"]
                .iter()
                .map(|f| {
                    lat[f]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{where_}/{name}: {f} missing"))
                })
                .collect();
            assert!(p[0] > 0.0, "{where_}/{name}: {lat}");
            assert!(
                p.windows(2).all(|w| w[0] <= w[1]),
                "{where_}/{name}: percentiles ordered: {lat}"
            );
        }
    }
}

fn kind<'a>(stats: &'a Value, name: &str) -> &'a Value {
    &stats["kinds"][name]
}

fn u(v: &Value, f: &str) -> u64 {
    v[f].as_u64()
        .unwrap_or_else(|| panic!("{f} missing in {v}"))
}

/// Total histogram counts per tag in an interval log.
fn log_counts(path: &Path) -> std::collections::BTreeMap<String, u64> {
    let bytes = std::fs::read(path).expect("interval log written");
    let mut d = Deserializer::new();
    let mut counts = std::collections::BTreeMap::new();
    for e in IntervalLogIterator::new(&bytes) {
        if let Ok(LogEntry::Interval(h)) = e.map_err(|e| panic!("interval log: {e:?}")) {
            let raw = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> =
                d.deserialize(&mut &raw[..]).expect("histogram decodes");
            *counts
                .entry(h.tag().map(|t| t.as_str().to_string()).unwrap_or_default())
                .or_default() += hist.len();
        }
    }
    counts
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn run_json(args: &[&str], dir: &Path) -> (Value, Output) {
    let json = dir.join("summary.json");
    let log = dir.join("intervals.hlog");
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(args);
    let (j, l) = (json.to_str().unwrap(), log.to_str().unwrap());
    all.extend_from_slice(&["--json", j, "--interval-log", l, "--quiet"]);
    let o = loadgen(&all);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no JSON summary; stdout:\n{}\nstderr:\n{}",
            text(&o.stdout),
            text(&o.stderr)
        )
    }))
    .expect("JSON summary parses");
    (v, o)
}

fn check_run(v: &Value, o: &Output, log: &Path) {
    assert!(
        o.status.success(),
        "loadgen exit status {:?}\n{}\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(v["setup"]["complete"], true, "{v}");
    check_consistent("setup", &v["setup"]["stats"]);
    check_consistent("teardown", &v["teardown"]);
    check_consistent("total", &v["total"]);
    for s in v["steps"].as_array().expect("steps") {
        check_consistent("step", &s["stats"]);
    }
    for name in ANSWERED {
        assert_eq!(u(kind(&v["total"], name), "wrong"), 0, "{name}: {v}");
    }
    // The interval log holds exactly the latencies of the summary.
    let counts = log_counts(log);
    for name in ANSWERED {
        let want = v["total"]["kinds"][name]["latency"]["count"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(
            counts.get(name).copied().unwrap_or(0),
            want,
            "{name}: interval log vs summary ({counts:?})"
        );
    }
    // The table is printed.
    let out = text(&o.stdout);
    assert!(out.contains("handle_resolution"), "{out}");
    assert!(out.contains("p99.9"), "{out}");
}

#[test]
fn against_our_registrar_over_tcp() {
    let logs = Logs::new("loadgen-e2e");
    let (_reg, port) = registrar(&logs);
    let target = format!("tcp:127.0.0.1:{port}");
    let (v, o) = run_json(
        &[
            "--registrar",
            &target,
            "--pes",
            "300",
            "--pools",
            "6",
            "--pus",
            "30",
            "--rate",
            "1500",
            "--reg-rate",
            "150",
            "--churn-rate",
            "20",
            "--churn-down",
            "300",
            "--eu-prob",
            "0.01",
            "--duration",
            "2",
            "--threads",
            "2",
            "--seed",
            "7",
        ],
        logs.dir.path(),
    );
    check_run(&v, &o, &logs.dir.path().join("intervals.hlog"));
    let setup = &v["setup"]["stats"];
    assert_eq!(u(kind(setup, "registration"), "ok"), 300, "{setup}");
    let step = &v["steps"][0]["stats"];
    let hr = kind(step, "handle_resolution");
    // Open loop at 1500/s for 2 s, on schedule.
    let sent = u(hr, "sent");
    assert!((2700..=3300).contains(&sent), "{hr}");
    assert!(u(hr, "ok") * 100 >= sent * 95, "{hr}");
    let rereg = kind(step, "reregistration");
    assert!(u(rereg, "ok") >= 250, "{rereg}");
    assert!(u(kind(step, "deregistration"), "ok") >= 20, "{step}");
    assert!(u(kind(step, "endpoint_unreachable"), "sent") > 0, "{step}");
    // Every PE that was registered at the end deregistered.
    let joined = u(kind(&v["total"], "registration"), "ok");
    let left = u(kind(&v["total"], "deregistration"), "ok");
    assert_eq!(joined, left, "{v}");
}

#[test]
fn ratios_to_the_floor() {
    let logs = Logs::new("loadgen-e2e-floor");
    let (_reg, port) = registrar(&logs);
    let (mut echo, addr) = echo_server();
    let target = format!("tcp:127.0.0.1:{port}");
    let floor = format!("tcp:{addr}");
    let json = logs.dir.path().join("floor.json");
    let o = loadgen(&[
        "run",
        "--registrar",
        &target,
        "--floor",
        &floor,
        "--pes",
        "20",
        "--pools",
        "4",
        "--pus",
        "8",
        "--rate",
        "500",
        "--duration",
        "1",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("the floor (echo at tcp:"), "{out}");
    assert!(out.contains("ratios to the floor"), "{out}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rate = v["floor_ratios"]["handle_resolution"]["rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("{v}"));
    // The same open-loop rate is answered by both.
    assert!((0.9..=1.1).contains(&rate), "{rate}");
    assert!(
        v["floor_ratios"]["handle_resolution"]["p99"]
            .as_f64()
            .is_some()
    );
    let _ = echo.kill();
    let _ = echo.wait();
}

#[test]
fn closed_loop_against_our_registrar() {
    let logs = Logs::new("loadgen-e2e-closed");
    let (_reg, port) = registrar(&logs);
    let target = format!("127.0.0.1:{port}");
    let (v, o) = run_json(
        &[
            "--registrar",
            &target,
            "--pes",
            "20",
            "--pools",
            "4",
            "--pus",
            "8",
            "--in-flight",
            "8",
            "--reg-in-flight",
            "2",
            "--duration",
            "1",
        ],
        logs.dir.path(),
    );
    check_run(&v, &o, &logs.dir.path().join("intervals.hlog"));
    let hr = kind(&v["steps"][0]["stats"], "handle_resolution");
    assert!(u(hr, "ok") > 500, "closed loop keeps 8 in flight: {hr}");
}

#[test]
fn spread_over_two_registrars_and_fail_over_when_one_dies() {
    let logs = Logs::new("loadgen-e2e-failover");
    let (mut a, pa) = registrar_named(&logs, "a");
    let (_b, pb) = registrar_named(&logs, "b");
    let (ta, tb) = (format!("tcp:127.0.0.1:{pa}"), format!("tcp:127.0.0.1:{pb}"));
    let dir = logs.dir.path().to_path_buf();
    let run = std::thread::spawn(move || {
        run_json(
            &[
                "--registrar",
                &ta,
                "--registrar",
                &tb,
                "--targets",
                "spread",
                "--pes",
                "40",
                "--pools",
                "4",
                "--pus",
                "8",
                "--rate",
                "400",
                "--rereg-interval",
                "500",
                "--timeout",
                "500",
                "--duration",
                "3",
            ],
            &dir,
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    a.kill();
    let (v, o) = run.join().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    check_consistent("total", &v["total"]);
    for name in ANSWERED {
        assert_eq!(u(kind(&v["total"], name), "wrong"), 0, "{name}: {v}");
    }
    let lost = v["steps"][0]["stats"]["notes"]["PE lost its registrar connection"]
        .as_u64()
        .unwrap_or(0);
    // Spread: about half of the PEs were on the registrar that died.
    assert!((5..=35).contains(&lost), "{lost}: {v}");
    // The PUs and PEs went on with the other one.
    let hr = kind(&v["steps"][0]["stats"], "handle_resolution");
    assert!(u(hr, "ok") >= 800, "{hr}");
    let dereg = kind(&v["teardown"], "deregistration");
    assert_eq!(
        u(dereg, "ok"),
        40,
        "every PE deregistered from the survivor: {dereg}"
    );
}

fn echo_server() -> (std::process::Child, String) {
    let (child, target) = echo_server_on("127.0.0.1:0");
    let addr = target
        .strip_prefix("tcp:")
        .unwrap_or_else(|| panic!("a TCP echo: {target}"))
        .to_string();
    (child, addr)
}

/// `loadgen echo --listen LISTEN` and where it says it listens
/// (`tcp:ADDR:PORT` or `sctp:ADDR:PORT`).
fn echo_server_on(listen: &str) -> (std::process::Child, String) {
    let mut child = Command::new(LOADGEN)
        .args(["echo", "--listen", listen, "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("loadgen echo starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("echo server listening on ")
        .unwrap_or_else(|| panic!("echo says where it listens: {line:?}"))
        .to_string();
    (child, addr)
}

#[test]
fn against_the_echo_floor_and_a_sweep() {
    let (mut echo, addr) = echo_server();
    let logs = Logs::new("loadgen-e2e-echo");
    let target = format!("tcp:{addr}");
    let (v, o) = run_json(
        &[
            "--echo",
            "--registrar",
            &target,
            "--pes",
            "100",
            "--pools",
            "5",
            "--pus",
            "10",
            "--rate",
            "1000",
            "--reg-rate",
            "100",
            "--duration",
            "1.5",
        ],
        logs.dir.path(),
    );
    check_run(&v, &o, &logs.dir.path().join("intervals.hlog"));
    let hr = kind(&v["steps"][0]["stats"], "handle_resolution");
    assert!(u(hr, "ok") >= 1300, "{hr}");

    let svg = logs.dir.path().join("sweep.svg");
    let o = loadgen(&[
        "sweep",
        "--echo",
        "--registrar",
        &target,
        "--pes",
        "10",
        "--pools",
        "2",
        "--pus",
        "4",
        "--start-rate",
        "200",
        "--step-rate",
        "200",
        "--max-rate",
        "600",
        "--duration",
        "0.5",
        "--objective",
        "p99=5s",
        "--svg",
        svg.to_str().unwrap(),
        "--quiet",
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(
        out.contains("highest rate meeting the objective: 600/s"),
        "{out}"
    );
    let plot = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(
        plot.starts_with("<svg") && plot.contains("<polyline"),
        "{plot}"
    );
    let _ = echo.kill();
    let _ = echo.wait();
}

/// A registrar that grants every registration but answers every
/// resolution with a PE nobody registered.
fn lying_registrar() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve_lies(s));
        }
    });
    port
}

fn serve_lies(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(len)) = frame_len(&buf) {
            if len > buf.len() {
                break;
            }
            let frame: Vec<u8> = buf.drain(..len).collect();
            let answer = match AsapMessage::parse(&frame) {
                Ok(AsapMessage::Registration(r)) => {
                    AsapMessage::RegistrationResponse(RegistrationResponse {
                        reject: false,
                        pool_handle: r.pool_handle,
                        pe_id: r.element.id,
                        error: None,
                    })
                    .to_vec()
                }
                Ok(AsapMessage::Deregistration(d)) => {
                    AsapMessage::DeregistrationResponse(DeregistrationResponse {
                        pool_handle: d.pool_handle,
                        pe_id: d.pe_id,
                        error: None,
                    })
                    .to_vec()
                }
                Ok(AsapMessage::HandleResolution(h)) => {
                    let addrs = ["127.0.0.1".parse().unwrap()];
                    let pe = [PoolElement {
                        id: PeId(0xdead_beef),
                        home_server: ServerId(1),
                        registration_life: 1000,
                        user_transport: Transport::tcp(1, TransportUse::DATA_PLUS_CONTROL, &addrs),
                        policy: Policy::RoundRobin {}.into(),
                        asap_transport: None,
                    }];
                    AsapMessage::HandleResolutionResponse(HandleResolutionResponse {
                        accept: false,
                        pool_handle: h.pool_handle,
                        policy: None,
                        elements: Seq::from_items(&pe),
                        error: None,
                    })
                    .to_vec()
                }
                _ => continue,
            };
            if s.write_all(&answer.unwrap()).is_err() {
                return;
            }
        }
    }
}

#[test]
fn wrong_answers_are_counted_apart_and_fail_the_run() {
    let port = lying_registrar();
    let dir = rserpool_tests::TempDir::new("loadgen-e2e-lies").unwrap();
    let target = format!("tcp:127.0.0.1:{port}");
    let (v, o) = run_json(
        &[
            "--registrar",
            &target,
            "--pes",
            "4",
            "--pools",
            "2",
            "--pus",
            "2",
            "--rate",
            "200",
            "--duration",
            "0.5",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let hr = kind(&v["total"], "handle_resolution");
    assert!(u(hr, "wrong") >= 90, "{hr}");
    assert_eq!(u(hr, "ok"), 0, "{hr}");
    assert_eq!(u(hr, "errors") + u(hr, "timeouts"), 0, "{hr}");
    check_consistent("total", &v["total"]);
    let reasons = v["total"]["wrong_reasons"].to_string();
    assert!(reasons.contains("never registered"), "{reasons}");
}

#[test]
fn bad_usage_is_one_line() {
    for args in [
        &["run", "--rate", "10", "--in-flight", "2"][..],
        &["run", "--registrar", "nowhere"],
        &["sweep", "--objective", "p99"],
        &["run", "--scenario", "/nonexistent/scenario.toml"],
        &["echo", "--listen", "udp:127.0.0.1:0"],
        &["echo", "--listen", "127.0.0.1:0", "--transport", "quic"],
    ] {
        let o = loadgen(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("loadgen: "), "{err}");
    }
}

#[test]
fn sctp_echo_without_kernel_sctp_is_one_line() {
    let Some(why) = rserpool_net::sctp::unavailable_reason() else {
        eprintln!("this kernel has SCTP; the lab tests cover the SCTP echo");
        return;
    };
    let o = loadgen(&["echo", "--listen", "sctp:127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("loadgen: cannot listen on sctp:127.0.0.1:0: ") && err.contains(&why),
        "{err}"
    );
}

#[test]
fn scenario_file_sets_the_options() {
    let (mut echo, addr) = echo_server();
    let dir = rserpool_tests::TempDir::new("loadgen-e2e-scenario").unwrap();
    let scen = dir.path().join("s.toml");
    std::fs::write(
        &scen,
        format!(
            "registrar = [\"tcp:{addr}\"]\necho = true\npes = 12\npools = 3\npus = 3\nrate = 300.0\nduration = 0.5\nseed = 42\n"
        ),
    )
    .unwrap();
    let (v, o) = run_json(&["--scenario", scen.to_str().unwrap()], dir.path());
    check_run(&v, &o, &dir.path().join("intervals.hlog"));
    assert_eq!(v["settings"]["pes"], 12);
    assert_eq!(v["settings"]["seed"], 42);
    assert_eq!(u(kind(&v["setup"]["stats"], "registration"), "ok"), 12);
    let _ = echo.kill();
    let _ = echo.wait();
}

const SITE: &str = "10.77.0.254";

/// Runs inside the SCTP lab (re-running this test there when this kernel
/// has no SCTP).
fn in_lab(test: &str) -> bool {
    let _ = registrar_bin();
    if !rserpool_tests::lab::here(test, rserpool_tests::lab::Hosts(0)) {
        return false;
    }
    if std::env::var("SCTP_LAB").as_deref() != Ok("1") {
        rserpool_tests::skip(test, "needs the SCTP lab's 10.77.0.254");
        return false;
    }
    true
}

fn sctp_run(logs: &Logs, name: &str, pid: u32) -> Value {
    let dir = logs.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let target = format!("sctp:{SITE}:3863");
    let pid = pid.to_string();
    let (v, o) = run_json(
        &[
            "--registrar",
            &target,
            "--pe-address",
            SITE,
            "--registrar-pid",
            &pid,
            "--pes",
            "40",
            "--pools",
            "4",
            "--pus",
            "4",
            "--rate",
            "400",
            "--reg-rate",
            "30",
            "--duration",
            "1",
        ],
        &dir,
    );
    check_run(&v, &o, &dir.join("intervals.hlog"));
    assert_eq!(
        u(kind(&v["setup"]["stats"], "registration"), "ok"),
        40,
        "{name}: {v}"
    );
    // 400/s for 1 s; the lab's guest is slow, so answers may still be
    // on their way when the step ends (they count for the teardown).
    let hr = kind(&v["steps"][0]["stats"], "handle_resolution");
    assert!(u(hr, "sent") >= 360, "{name}: {hr}");
    assert!(u(hr, "ok") >= 250, "{name}: {hr}");
    assert!(
        v["steps"][0]["registrar_cpu_s_per_s"].as_f64().is_some(),
        "{name}: registrar CPU read from /proc"
    );
    v
}

#[test]
fn over_sctp_against_our_registrar_and_rspregistrar() {
    if !in_lab("over_sctp_against_our_registrar_and_rspregistrar") {
        return;
    }
    let logs = Logs::new("loadgen-e2e-sctp");
    let site = format!("{SITE}:3863");
    let mut ours = logs.spawn(
        "ours",
        Command::new(registrar_bin()).args([
            "--asap",
            &site,
            "--transport",
            "sctp",
            "--announce",
            "off",
            "--cores",
            "none",
            "--log-level",
            "info",
        ]),
    );
    logs.wait_for("ours", "registrar is ready", Duration::from_secs(10));
    sctp_run(&logs, "ours", ours.0.id());
    ours.kill();
    let asap = format!("-asap={SITE}:3863");
    let enrp = format!("-enrp={SITE}:9901");
    let rsp = logs.spawn(
        "rspregistrar",
        Command::new("rspregistrar").args([
            asap.as_str(),
            enrp.as_str(),
            "-asapannounce=off",
            "-enrpannounce=off",
            "-loglevel=3",
            "-logcolor=off",
        ]),
    );
    std::thread::sleep(Duration::from_secs(1));
    sctp_run(&logs, "rsplib", rsp.0.id());
}

/// Brief SCTP load against the SCTP echo floor, then against our
/// registrar with the floor run after it (`--floor` without a prefix: over
/// the run's transport): counts add up, nothing is wrong, missing or timed
/// out, and the latency histograms hold exactly the answered requests.
#[test]
fn over_sctp_against_the_echo_floor_and_our_registrar() {
    let _ = registrar_bin();
    if !rserpool_tests::lab::here(
        "over_sctp_against_the_echo_floor_and_our_registrar",
        rserpool_tests::lab::Hosts(0),
    ) {
        return;
    }
    let logs = Logs::new("loadgen-e2e-sctp-floor");
    let (mut echo, target) = echo_server_on("sctp:127.0.0.1:0");
    let echo_addr = target
        .strip_prefix("sctp:")
        .unwrap_or_else(|| panic!("an SCTP echo: {target}"))
        .to_string();
    let load = [
        "--pes",
        "40",
        "--pools",
        "4",
        "--pus",
        "4",
        "--rate",
        "300",
        "--reg-rate",
        "30",
        "--duration",
        "1",
    ];
    let exact = |name: &str, v: &Value| {
        for k in ["handle_resolution", "reregistration"] {
            let st = kind(&v["steps"][0]["stats"], k);
            assert_eq!(u(st, "sent"), u(st, "ok"), "{name}/{k}: all answered: {st}");
            for f in ["wrong", "errors", "timeouts"] {
                assert_eq!(u(st, f), 0, "{name}/{k}: {f}: {st}");
            }
            assert_eq!(
                st["latency"]["count"].as_u64(),
                Some(u(st, "ok")),
                "{name}/{k}: one latency per answer: {st}"
            );
        }
        // 300/s for 1 s, less what a slow guest leaves for the teardown.
        let hr = kind(&v["steps"][0]["stats"], "handle_resolution");
        assert!(u(hr, "ok") >= 200, "{name}: {hr}");
        assert_eq!(
            u(kind(&v["setup"]["stats"], "registration"), "ok"),
            40,
            "{name}: {v}"
        );
    };

    let dir = logs.dir.path().join("floor");
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec!["--echo", "--registrar", &target];
    args.extend_from_slice(&load);
    let (v, o) = run_json(&args, &dir);
    check_run(&v, &o, &dir.join("intervals.hlog"));
    exact("floor", &v);

    let (_ours, port) = logs.local_registrar("ours", "sctp", &["--cores", "none"]);
    let ours = format!("sctp:127.0.0.1:{port}");
    let dir = logs.dir.path().join("ours");
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec!["--registrar", &ours, "--floor", &echo_addr];
    args.extend_from_slice(&load);
    let (v, o) = run_json(&args, &dir);
    check_run(&v, &o, &dir.join("intervals.hlog"));
    exact("ours", &v);
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!("the floor (echo at sctp:{echo_addr})")),
        "{out}"
    );
    let rate = v["floor_ratios"]["handle_resolution"]["rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("floor ratios: {v}"));
    assert!(rate > 0.5 && rate < 2.0, "same offered rate: {rate}");
    let _ = echo.kill();
    let _ = echo.wait();
}

/// The loads of LoadPool0's PEs as our registrar lists them.
fn loads(port: u16) -> Vec<u64> {
    let reg = format!("127.0.0.1:{port}");
    let o = Command::new(env!("CARGO_BIN_EXE_poolctl"))
        .args([
            "resolve",
            "LoadPool0",
            "--registrar",
            &reg,
            "--transport",
            "tcp",
            "--json",
        ])
        .output()
        .expect("poolctl runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let mut l: Vec<u64> = v["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| e["policy"]["load"].as_u64().expect("a load"))
        .collect();
    l.sort_unstable();
    l
}

#[test]
fn periodic_reregistrations_carry_load_changes() {
    let logs = Logs::new("loadgen-e2e-loads");
    let (_reg, port) = registrar(&logs);
    let target = format!("tcp:127.0.0.1:{port}");
    let dir = logs.dir.path().to_path_buf();
    let run = std::thread::spawn(move || {
        run_json(
            &[
                "--registrar",
                &target,
                "--pes",
                "3",
                "--pools",
                "1",
                "--pus",
                "0",
                "--policy",
                "LeastUsed",
                "--rereg-interval",
                "200",
                "--load-changes",
                "--duration",
                "2.5",
            ],
            &dir,
        )
    });
    std::thread::sleep(Duration::from_millis(1200));
    let first = loads(port);
    std::thread::sleep(Duration::from_millis(800));
    let second = loads(port);
    let (v, o) = run.join().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(first.len(), 3, "{first:?}");
    assert_ne!(first, second, "loads change between re-registrations");
    assert!(second.iter().any(|l| *l > 0), "{second:?}");
    let rereg = kind(&v["steps"][0]["stats"], "reregistration");
    assert!(
        u(rereg, "ok") >= 15,
        "periodic re-registrations every 200 ms: {rereg}"
    );
}
