//! Our pool elements and pool users under kernel SCTP, with RSPLIB 3.4.4
//! (`rspregistrar`, `rspserver -echo`, `rspterminal`) and with our own
//! registrar. Each test runs inside the project's SCTP lab when this kernel
//! has no SCTP (see `rserpool_tests::lab`).
//!
//! Proves:
//! * our echo PE registers with `rspregistrar` and RSPLIB's `rspterminal`
//!   reaches it and gets its echo; our PU's session through `rspregistrar`
//!   to our echo PEs fails over to the other one after the first is killed,
//!   echoing the last cookie first (the new PE prints it and continues);
//! * our PU resolves RSPLIB's `rspserver -echo` PEs through `rspregistrar`,
//!   gets echoes, and fails over to the other RSPLIB PE when the one in use
//!   is killed. RSPLIB's echo service sends no cookies (docs/
//!   rsplib-behaviour.md 7.3), so that session has none to echo, which is
//!   checked too; cookie echo is proven with our echo PE above and below;
//! * the same session failover with cookies against our own registrar over
//!   SCTP.
//!
//! RSPLIB strips loopback addresses from registrations, so with
//! `rspregistrar` everything uses the lab's site-local 10.77.0.254.

mod common;
use std::process::Command;
use std::time::Duration;

use common::*;
use rserpool_client::*;
use rserpool_tests::lab::{self, Hosts};

const SITE: &str = "10.77.0.254";

/// Whether the body may run: inside the lab guest (which has 10.77.0.254).
/// Outside (the lab ran it, or a host with SCTP but no lab address) it
/// returns false, the latter with a loud skip line.
fn in_lab(test: &str) -> bool {
    // The registrar binary is built on the host, before the guest boots.
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

fn rspregistrar(logs: &Logs) -> Proc {
    let p = logs.spawn(
        "rspregistrar",
        Command::new("rspregistrar").args([
            &format!("-asap={SITE}:3863"),
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
    p
}

/// Our echo PE (the example) over SCTP, with cookies.
fn echo_pe(logs: &Logs, name: &str, registrar: &str, local: &str, pool: &str, id: &str) -> Proc {
    let p = logs.spawn(
        name,
        Command::new(example_bin("echo_pe")).args([
            "--registrar",
            registrar,
            "--local",
            local,
            "--pool",
            pool,
            "--id",
            id,
            "--cookies",
        ]),
    );
    logs.wait_for(name, "registered PE", Duration::from_secs(10));
    p
}

/// RSPLIB's echo PE.
fn rspserver(logs: &Logs, name: &str, pool: &str, port: u16, id: &str) -> Proc {
    logs.spawn(
        name,
        Command::new("rspserver").args([
            "-echo",
            &format!("-poolhandle={pool}"),
            &format!("-registrar={SITE}:3863"),
            "-asapannounce=off",
            &format!("-local={SITE}:{port}"),
            &format!("-identifier={id}"),
            "-loglevel=3",
            "-logcolor=off",
        ]),
    )
}

fn sctp_user(registrar: &str) -> PoolUser {
    let reg = RegistrarConfig::with_registrars(vec![RegistrarAddr::sctp(addr(registrar))]);
    let user = UserConfig {
        cache_lifetime: Duration::ZERO,
        ..UserConfig::default()
    };
    PoolUser::new(&reg, &user).unwrap()
}

fn ids(pu: &PoolUser, pool: &str) -> Vec<u32> {
    let mut v: Vec<u32> = pu
        .handle_resolution(pool)
        .map(|v| v.iter().map(|p| p.id.0).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits up to `wait` for a session event that `f` accepts (others are
/// dropped).
fn wait_event(s: &Session, wait: Duration, f: impl Fn(&SessionEvent) -> bool) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(e)) = s.recv_event(Duration::from_millis(100)) {
            if f(&e) {
                return true;
            }
        }
    }
    false
}

/// A session to `pool` (whose PEs are `pes`: id, log name, process, all our
/// echo PEs with cookies): echo, cookie, kill the PE in use, the next
/// message reaches the other PE after the cookie echo.
fn session_fails_over_with_its_cookie(
    logs: &Logs,
    pu: &PoolUser,
    pool: &str,
    pes: &mut [(u32, &str, Proc)],
) {
    let s = pu.session(pool).unwrap();
    s.send(b"one").unwrap();
    assert_eq!(
        s.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some((0, b"one".to_vec())),
        "{}",
        logs.all()
    );
    let first = s.pe().expect("connected");
    assert!(
        eventually(Duration::from_secs(3), || s.status().cookie.is_some()),
        "no cookie recorded\n{}",
        logs.all()
    );
    let cookie = String::from_utf8(s.status().cookie.unwrap()).unwrap();
    assert_eq!(cookie, format!("echo:{first}:1"));
    let i = pes
        .iter()
        .position(|p| p.0 == first.0)
        .expect("one of ours");
    pes[i].2.kill();
    let other = pes[1 - i].1;
    // Data handed to SCTP for a PE that has just died is lost with it (the
    // kernel took it; the dead PE's SHUTDOWN may come only after its
    // outstanding data is acknowledged, i.e. after the delayed SACK). So
    // wait until the session noticed, then send while it fails over: that
    // data must go to the new PE, after the cookie echo.
    let noticed = wait_event(
        &s,
        Duration::from_secs(10),
        |e| matches!(e, SessionEvent::Down { pe } if *pe == first),
    );
    assert!(
        noticed,
        "the session did not notice the loss\n{}",
        logs.all()
    );
    s.send(b"two").unwrap();
    let mut up = None;
    let mut data = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while data.is_none() && std::time::Instant::now() < deadline {
        match s.recv_event(Duration::from_millis(200)).unwrap() {
            Some(SessionEvent::Up {
                pe,
                failover,
                cookie_echoed,
            }) => up = Some((pe, failover, cookie_echoed)),
            Some(SessionEvent::Data { ppid, data: d }) => data = Some((ppid, d)),
            Some(SessionEvent::Failed(e)) => panic!("session failed: {e}\n{}", logs.all()),
            _ => {}
        }
    }
    assert_eq!(data, Some((0, b"two".to_vec())), "{}", logs.all());
    let (pe, failover, cookie_echoed) = up.expect("an Up event before the data");
    assert_ne!(pe, first);
    assert!(failover && cookie_echoed, "{up:?}");
    assert_ne!(s.pe(), Some(first));
    assert_eq!(s.status().failovers, 1);
    logs.wait_for(
        other,
        &format!("cookie echo: {cookie}"),
        Duration::from_secs(3),
    );
    assert!(
        eventually(Duration::from_secs(3), || s
            .status()
            .cookie
            .as_deref()
            .is_some_and(|c| c.ends_with(b":2"))),
        "the new PE did not continue the count\n{}",
        logs.all()
    );
}

#[test]
fn our_pe_with_rspregistrar_serves_rspterminal_and_our_pu_fails_over_with_cookies() {
    if !in_lab("our_pe_with_rspregistrar_serves_rspterminal_and_our_pu_fails_over_with_cookies") {
        return;
    }
    let logs = Logs::new("interop-our-pe");
    let _reg = rspregistrar(&logs);
    let registrar = format!("{SITE}:3863");
    let local = format!("{SITE}:0");
    let pe1 = echo_pe(&logs, "pe1", &registrar, &local, "EchoPool", "0x201");
    let pe2 = echo_pe(&logs, "pe2", &registrar, &local, "EchoPool", "0x202");

    // RSPLIB's terminal resolves through RSPLIB's registrar and gets its
    // line back from one of our PEs.
    let mut term = Command::new("timeout")
        .args([
            "8",
            "rspterminal",
            "-poolhandle=EchoPool",
            &format!("-registrar={registrar}"),
            "-asapannounce=off",
            "-loglevel=1",
            "-logcolor=off",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rspterminal");
    {
        use std::io::Write;
        let mut stdin = term.stdin.take().unwrap();
        writeln!(stdin, "Hello from RSPLIB").unwrap();
        std::thread::sleep(Duration::from_secs(2));
    }
    let out = term.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\u{1b}', "")
        + &String::from_utf8_lossy(&out.stderr).replace('\u{1b}', "");
    assert!(
        text.contains("Hello from RSPLIB"),
        "rspterminal got no echo:\n{text}\n{}",
        logs.all()
    );
    let served = (logs.read("pe1") + &logs.read("pe2")).contains("echo 18 bytes, ppid 0");
    assert!(served, "no PE of ours echoed 18 bytes\n{}", logs.all());

    // Our pool user through rspregistrar: both PEs, SCTP, site-local.
    let pu = sctp_user(&registrar);
    assert_eq!(ids(&pu, "EchoPool"), vec![0x201, 0x202]);
    let listed = pu.handle_resolution("EchoPool").unwrap();
    assert!(listed.iter().all(
        |p| p.transport == rserpool_wire::TransportKind::Sctp && p.addresses == vec![ip(SITE)]
    ));
    assert!(matches!(
        pu.handle_resolution("NoSuchPool"),
        Err(Error::Resolve(ResolveError::UnknownPool))
    ));
    let mut pes = [(0x201, "pe1", pe1), (0x202, "pe2", pe2)];
    session_fails_over_with_its_cookie(&logs, &pu, "EchoPool", &mut pes);
}

#[test]
fn our_pu_uses_rsplib_echo_pes_through_rspregistrar_and_fails_over() {
    if !in_lab("our_pu_uses_rsplib_echo_pes_through_rspregistrar_and_fails_over") {
        return;
    }
    let logs = Logs::new("interop-rsplib-pes");
    let _reg = rspregistrar(&logs);
    let mut pes = [
        (0x301, rspserver(&logs, "rsp1", "RspEcho", 7001, "0x301")),
        (0x302, rspserver(&logs, "rsp2", "RspEcho", 7002, "0x302")),
    ];
    let pu = sctp_user(&format!("{SITE}:3863"));
    assert!(
        eventually(Duration::from_secs(15), || ids(&pu, "RspEcho")
            == vec![0x301, 0x302]),
        "the RSPLIB PEs did not register\n{}",
        logs.all()
    );
    let listed = pu.handle_resolution("RspEcho").unwrap();
    assert!(
        listed
            .iter()
            .all(|p| p.addresses == vec![ip(SITE)] && [7001, 7002].contains(&p.port)),
        "{listed:?}"
    );

    // GETPRIMARYSERVER / GETNEXTSERVER give both.
    let a = pu.resolve("RspEcho").unwrap();
    let b = pu.report_failure_and_next("RspEcho", a.id).unwrap();
    assert_ne!(a.id, b.id);

    let s = pu.session("RspEcho").unwrap();
    for m in [&b"one"[..], b"one more"] {
        s.send(m).unwrap();
        assert_eq!(
            s.recv_timeout(Duration::from_secs(5)).unwrap(),
            Some((0, m.to_vec())),
            "{}",
            logs.all()
        );
    }
    let first = s.pe().expect("connected");
    let i = pes
        .iter()
        .position(|p| p.0 == first.0)
        .expect("an RSPLIB PE");
    pes[i].1.kill();
    // As in session_fails_over_with_its_cookie: send once the loss is seen.
    assert!(
        wait_event(&s, Duration::from_secs(10), |e| matches!(
            e,
            SessionEvent::Down { pe } if *pe == first
        )),
        "the session did not notice the loss\n{}",
        logs.all()
    );
    s.send(b"two").unwrap();
    assert_eq!(
        s.recv_timeout(Duration::from_secs(15)).unwrap(),
        Some((0, b"two".to_vec())),
        "{}",
        logs.all()
    );
    assert_eq!(s.pe().map(|p| p.0), Some(pes[1 - i].0));
    assert_eq!(s.status().failovers, 1);
    // RSPLIB's echo service sends no cookies, so there was none to echo.
    assert_eq!(s.status().cookie, None);
}

#[test]
fn our_registrar_over_sctp_session_fails_over_with_its_cookie() {
    if !in_lab("our_registrar_over_sctp_session_fails_over_with_its_cookie") {
        return;
    }
    let logs = Logs::new("interop-our-registrar");
    let (_reg, port) = logs.local_registrar("registrar", "sctp", &[]);
    let registrar = format!("127.0.0.1:{port}");
    let pe1 = echo_pe(&logs, "pe1", &registrar, "127.0.0.1:0", "SctpPool", "0x401");
    let pe2 = echo_pe(&logs, "pe2", &registrar, "127.0.0.1:0", "SctpPool", "0x402");
    let pu = sctp_user(&registrar);
    assert_eq!(ids(&pu, "SctpPool"), vec![0x401, 0x402]);
    assert!(
        pu.handle_resolution("SctpPool")
            .unwrap()
            .iter()
            .all(|p| p.transport == rserpool_wire::TransportKind::Sctp)
    );
    let mut pes = [(0x401, "pe1", pe1), (0x402, "pe2", pe2)];
    session_fails_over_with_its_cookie(&logs, &pu, "SctpPool", &mut pes);
}
