//! `poolctl resolve` and `poolctl register` against our registrar binary over
//! TCP on loopback (no SCTP needed): what they print (table and JSON), that
//! a registered PE is listed with its id, policy values and transport, that
//! it deregisters after `--for` and on SIGTERM, and the one-line errors and
//! exit status for an unknown pool, no reachable registrar and bad usage.

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Logs, Proc};
use serde_json::Value;

const POOLCTL: &str = env!("CARGO_BIN_EXE_poolctl");

fn tcp_registrar(logs: &Logs) -> (Proc, u16) {
    logs.local_registrar("registrar", "tcp", &[])
}

fn poolctl(args: &[&str]) -> Output {
    Command::new(POOLCTL)
        .args(args)
        .output()
        .expect("poolctl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The single line a failing poolctl printed on stderr.
fn one_error_line(o: &Output) -> String {
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line, got {err:?}");
    assert!(lines[0].starts_with("poolctl: "), "{err:?}");
    lines[0].to_string()
}

fn resolve_json(port: u16, pool: &str, extra: &[&str]) -> Value {
    let reg = format!("127.0.0.1:{port}");
    let mut args = vec!["resolve", pool, "--registrar", &reg, "--transport", "tcp"];
    args.extend_from_slice(extra);
    args.push("--json");
    let o = poolctl(&args);
    assert!(o.status.success(), "resolve failed: {}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["elements"]
        .as_array()
        .expect("an elements array")
        .iter()
        .map(|e| e["pe_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

fn kill_term(p: &Proc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM");
}

fn wait_exit(p: &mut Proc, wait: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn register_is_resolved_with_its_values_and_deregisters_after_for_and_on_sigterm() {
    let logs = Logs::new("poolctl-tcp");
    let (_reg, port) = tcp_registrar(&logs);
    let reg = format!("tcp:127.0.0.1:{port}");
    // A PE that stays until SIGTERM, with a policy value and a load.
    let mut pe1 = logs.spawn(
        "pe1",
        Command::new(POOLCTL).args([
            "register",
            "CtlPool",
            "--registrar",
            &reg,
            "--transport",
            "tcp",
            "--local",
            "127.0.0.1:0",
            "--id",
            "0x2a",
            "--policy",
            "WeightedRandom:7",
            "--lifetime",
            "20",
            "--rereg-interval",
            "5",
        ]),
    );
    logs.wait_for("pe1", "registered PE 0x0000002a", Duration::from_secs(10));
    let shown = logs.read("pe1");
    assert!(shown.contains("in pool CtlPool"), "{shown}");
    assert!(shown.contains("weight=7"), "{shown}");
    assert!(shown.contains(&format!("tcp:127.0.0.1:{port}")), "{shown}");

    // A second one, JSON, that leaves by itself after --for.
    let mut pe2 = logs.spawn(
        "pe2",
        Command::new(POOLCTL).args([
            "register",
            "CtlPool",
            "--registrar",
            &reg,
            "--transport",
            "tcp",
            "--local",
            "127.0.0.1:0",
            "--id",
            "43",
            "--policy",
            "WeightedRandom:7",
            "--for",
            "3",
            "--json",
        ]),
    );
    logs.wait_for("pe2", "\"registered\"", Duration::from_secs(10));
    let first: Value = serde_json::from_str(logs.read("pe2").lines().next().unwrap()).unwrap();
    assert_eq!(first["pe_id"], "0x0000002b");
    assert_eq!(first["transport"], "tcp");
    assert_eq!(first["addresses"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(first["policy"]["weight"], 7);

    // The registrar lists both, as registered.
    let v = resolve_json(port, "CtlPool", &[]);
    assert_eq!(ids(&v), vec!["0x0000002a", "0x0000002b"], "{v}");
    let e = v["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pe_id"] == "0x0000002a")
        .unwrap()
        .clone();
    assert_eq!(e["transport"], "tcp");
    assert_eq!(e["addresses"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(e["policy"]["weight"], 7);
    assert_eq!(e["registration_life"], 20_000, "milliseconds, as RSPLIB");
    assert_eq!(e["transport_use"], "data_plus_control");
    // --items 1 asks for one.
    assert_eq!(
        resolve_json(port, "CtlPool", &["--items", "1"])["elements"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // The table: a title, a header and one row per PE.
    let o = poolctl(&[
        "resolve",
        "CtlPool",
        "--registrar",
        &format!("127.0.0.1:{port}"),
        "--transport",
        "tcp",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let table = text(&o.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("pool CtlPool: 2 PEs"), "{table}");
    assert!(lines[1].starts_with("PE ID"), "{table}");
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.contains(" tcp ") && l.contains("127.0.0.1:") && l.contains("weight=7")),
        "{table}"
    );

    // pe2 deregisters after its 3 s and exits 0; pe1 remains.
    let s = wait_exit(&mut pe2, Duration::from_secs(10));
    assert!(s.success(), "{}", logs.all());
    let last: Value =
        serde_json::from_str(logs.read("pe2").lines().last().unwrap()).expect("a JSON line");
    assert_eq!(last["event"], "deregistered");
    assert_eq!(ids(&resolve_json(port, "CtlPool", &[])), vec!["0x0000002a"]);

    // SIGTERM: pe1 deregisters and exits 0; the pool is gone.
    kill_term(&pe1);
    let s = wait_exit(&mut pe1, Duration::from_secs(10));
    assert!(s.success(), "{}", logs.all());
    assert!(
        logs.read("pe1")
            .contains("deregistered PE 0x0000002a from pool CtlPool"),
        "{}",
        logs.all()
    );
    let o = poolctl(&["resolve", "CtlPool", "--registrar", &reg, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let line = one_error_line(&o);
    assert!(line.contains("unknown pool \"CtlPool\""), "{line}");
}

#[test]
fn no_registrar_and_bad_usage_are_one_line_errors() {
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let reg = format!("tcp:127.0.0.1:{port}");
    let start = Instant::now();
    let o = poolctl(&["resolve", "AnyPool", "--registrar", &reg, "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let line = one_error_line(&o);
    assert!(line.contains("no registrar could be reached"), "{line}");
    assert!(line.contains(&reg), "{line}");

    let o = poolctl(&[
        "register",
        "AnyPool",
        "--registrar",
        &reg,
        "--transport",
        "tcp",
        "--local",
        "127.0.0.1:0",
        "--timeout",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let line = one_error_line(&o);
    assert!(line.contains("no registrar reachable"), "{line}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "gave up in {:?}",
        start.elapsed()
    );

    // Usage errors exit 2 (clap's, and ours).
    for args in [
        vec!["resolve", "AnyPool"],
        vec!["register", "P", "--registrar", &reg, "--policy", "Fastest"],
        vec!["resolve", "P", "--registrar", "not-an-address"],
        vec!["resolve", &"x".repeat(33), "--registrar", &reg],
    ] {
        let o = poolctl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(!o.stderr.is_empty(), "{args:?}");
    }
}
