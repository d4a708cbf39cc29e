//! `poolctl resolve` and `poolctl register` over kernel SCTP (ASAP's own
//! transport), against our registrar and against RSPLIB's `rspregistrar`
//! (with an RSPLIB `rspserver -echo` in the same pool). Runs inside the
//! project's SCTP lab when this kernel has no SCTP (`rserpool_tests::lab`).

#[path = "../../client/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Logs, Proc, eventually, registrar_bin};
use rserpool_tests::lab::{self, Hosts};
use serde_json::Value;

const POOLCTL: &str = env!("CARGO_BIN_EXE_poolctl");
const SITE: &str = "10.77.0.254";

fn in_lab(test: &str) -> bool {
    let _ = registrar_bin();
    if !lab::here(test, Hosts(0)) {
        return false;
    }
    if std::env::var("SCTP_LAB").as_deref() != Ok("1") {
        rserpool_tests::skip(
            test,
            "needs the SCTP lab's 10.77.0.254 (host SCTP without the lab)",
        );
        return false;
    }
    true
}

fn poolctl(args: &[&str]) -> Output {
    Command::new(POOLCTL)
        .args(args)
        .output()
        .expect("poolctl runs")
}

/// `poolctl resolve --json` over SCTP: the PE ids, sorted, or the exit
/// code and stderr.
fn resolve(registrar: &str, pool: &str) -> Result<(Vec<String>, Value), (Option<i32>, String)> {
    let o = poolctl(&["resolve", pool, "--registrar", registrar, "--json"]);
    if !o.status.success() {
        return Err((
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ));
    }
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let mut ids: Vec<String> = v["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .map(|e| e["pe_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    Ok((ids, v))
}

fn element<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["elements"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["pe_id"] == id))
        .unwrap_or_else(|| panic!("{id} not listed: {v}"))
}

fn stop_and_wait(p: &mut Proc) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "poolctl register did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unknown_pool_line(registrar: &str, pool: &str) {
    match resolve(registrar, pool) {
        Err((code, err)) => {
            assert_eq!(code, Some(1), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(&format!("unknown pool \"{pool}\"")), "{err}");
        }
        Ok(v) => panic!("{pool} resolved: {v:?}"),
    }
}

#[test]
fn poolctl_with_our_registrar_over_sctp() {
    if !in_lab("poolctl_with_our_registrar_over_sctp") {
        return;
    }
    let logs = Logs::new("poolctl-sctp-ours");
    let (_reg, port) = logs.local_registrar("registrar", "sctp", &[]);
    let registrar = format!("127.0.0.1:{port}");
    let mut pe = logs.spawn(
        "pe",
        Command::new(POOLCTL).args([
            "register",
            "SctpCtl",
            "--registrar",
            &registrar,
            "--local",
            "127.0.0.1:0",
            "--id",
            "0x51",
            "--policy",
            "Priority:4",
            "--json",
        ]),
    );
    logs.wait_for("pe", "\"registered\"", Duration::from_secs(10));
    let (ids, v) = resolve(&registrar, "SctpCtl").unwrap();
    assert_eq!(ids, vec!["0x00000051"]);
    let e = element(&v, "0x00000051");
    assert_eq!(e["transport"], "sctp");
    assert_eq!(e["addresses"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(e["policy"]["priority"], 4);
    assert!(stop_and_wait(&mut pe).success(), "{}", logs.all());
    assert!(
        logs.read("pe").contains("\"deregistered\""),
        "{}",
        logs.all()
    );
    unknown_pool_line(&registrar, "SctpCtl");
}

#[test]
fn poolctl_with_rspregistrar_over_sctp() {
    if !in_lab("poolctl_with_rspregistrar_over_sctp") {
        return;
    }
    let logs = Logs::new("poolctl-sctp-rsplib");
    let registrar = format!("{SITE}:3863");
    let _reg = logs.spawn(
        "rspregistrar",
        Command::new("rspregistrar").args([
            &format!("-asap={registrar}"),
            &format!("-enrp={SITE}:9901"),
            "-asapannounce=off",
            "-enrpannounce=off",
            "-loglevel=3",
            "-logcolor=off",
        ]),
    );
    logs.wait_for(
        "rspregistrar",
        "registrar is ready",
        Duration::from_secs(10),
    );
    let _rsp = logs.spawn(
        "rspserver",
        Command::new("rspserver").args([
            "-echo",
            "-poolhandle=MixedPool",
            &format!("-registrar={registrar}"),
            "-asapannounce=off",
            &format!("-local={SITE}:7001"),
            "-identifier=0x61",
            "-loglevel=3",
            "-logcolor=off",
        ]),
    );
    let mut pe = logs.spawn(
        "pe",
        Command::new(POOLCTL).args([
            "register",
            "MixedPool",
            "--registrar",
            &registrar,
            "--local",
            &format!("{SITE}:0"),
            "--id",
            "0x62",
            "--policy",
            "RoundRobin",
            "--for",
            "60",
        ]),
    );
    logs.wait_for("pe", "registered PE 0x00000062", Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(15), || resolve(&registrar, "MixedPool")
            .is_ok_and(|(ids, _)| ids == ["0x00000061", "0x00000062"])),
        "both PEs not listed: {:?}\n{}",
        resolve(&registrar, "MixedPool"),
        logs.all()
    );
    let (_, v) = resolve(&registrar, "MixedPool").unwrap();
    for id in ["0x00000061", "0x00000062"] {
        let e = element(&v, id);
        assert_eq!(e["transport"], "sctp");
        assert_eq!(e["addresses"], serde_json::json!([SITE]));
        assert_eq!(
            e["policy"]["name"],
            rserpool_wire::Policy::RoundRobin {}.name()
        );
    }
    assert_eq!(element(&v, "0x00000061")["port"], 7001);
    // The table lists both too.
    let o = poolctl(&["resolve", "MixedPool", "--registrar", &registrar]);
    assert!(o.status.success());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.starts_with("pool MixedPool: 2 PEs"), "{table}");
    assert!(
        table.contains("0x00000061") && table.contains("0x00000062"),
        "{table}"
    );
    // SIGTERM: the PE deregisters from rspregistrar, the RSPLIB PE stays.
    assert!(stop_and_wait(&mut pe).success(), "{}", logs.all());
    assert!(
        logs.read("pe")
            .contains("deregistered PE 0x00000062 from pool MixedPool"),
        "{}",
        logs.all()
    );
    assert_eq!(
        resolve(&registrar, "MixedPool").map(|(ids, _)| ids),
        Ok(vec!["0x00000061".to_string()])
    );
    unknown_pool_line(&registrar, "NoSuchPool");
}
