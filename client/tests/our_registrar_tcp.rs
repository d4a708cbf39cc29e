//! Our pool elements and pool users with our registrar over TCP (ASAP and
//! sessions over TCP, our extension): no SCTP needed, runs on any host.
//!
//! Proves: PEs register over TCP and answer keep-alives (they stay listed
//! across several keep-alive periods); a PU resolves (item option, policy),
//! holds a session with cookies, and after the PE in use is killed fails
//! over to the other PE, echoing the last cookie first (the new PE prints
//! it); in-process PEs re-register with load changes and deregister.

mod common;
use std::process::Command;
use std::time::Duration;

use common::*;
use rserpool_client::*;

fn echo_pe(logs: &Logs, name: &str, port: u16, pool: &str, id: &str) -> Proc {
    let p = logs.spawn(
        name,
        Command::new(example_bin("echo_pe")).args([
            "--transport",
            "tcp",
            "--registrar",
            &format!("tcp:127.0.0.1:{port}"),
            "--local",
            "127.0.0.1:0",
            "--pool",
            pool,
            "--id",
            id,
            "--cookies",
            "--rereg-interval",
            "1000",
        ]),
    );
    logs.wait_for(name, "registered PE", Duration::from_secs(10));
    p
}

fn tcp_user(port: u16) -> PoolUser {
    let reg = RegistrarConfig::with_registrars(vec![RegistrarAddr::tcp(addr(&format!(
        "127.0.0.1:{port}"
    )))]);
    let user = UserConfig {
        cache_lifetime: Duration::ZERO,
        ..UserConfig::default()
    };
    PoolUser::new(&reg, &user).unwrap()
}

#[test]
fn tcp_session_fails_over_with_its_cookie_to_the_other_pe() {
    let logs = Logs::new("client-tcp");
    let (_reg, port) = logs.local_registrar(
        "registrar",
        "tcp",
        &[
            "--keep-alive-interval",
            "500",
            "--keep-alive-timeout",
            "500",
            "--keep-alive-jitter",
            "0",
        ],
    );
    let mut pe1 = echo_pe(&logs, "pe1", port, "TcpPool", "0x101");
    let mut pe2 = echo_pe(&logs, "pe2", port, "TcpPool", "0x102");
    let pu = tcp_user(port);
    let ids = |v: Vec<PeInfo>| {
        let mut v: Vec<u32> = v.iter().map(|p| p.id.0).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(pu.handle_resolution("TcpPool").unwrap()),
        vec![0x101, 0x102]
    );
    // Several keep-alive periods later both are still there: they answer.
    std::thread::sleep(Duration::from_millis(2000));
    let listed = pu.handle_resolution("TcpPool").unwrap();
    assert_eq!(ids(listed.clone()), vec![0x101, 0x102], "{}", logs.all());
    assert!(
        listed
            .iter()
            .all(|p| p.transport == rserpool_wire::TransportKind::Tcp)
    );
    assert!(matches!(
        pu.handle_resolution("NoSuchPool"),
        Err(Error::Resolve(ResolveError::UnknownPool))
    ));

    let s = pu.session("TcpPool").unwrap();
    s.send(b"one").unwrap();
    assert_eq!(
        s.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some((0, b"one".to_vec()))
    );
    let first = s.pe().unwrap();
    // The cookie follows the echo; wait until the session has it.
    assert!(eventually(Duration::from_secs(3), || s
        .status()
        .cookie
        .is_some()));
    let cookie = String::from_utf8(s.status().cookie.unwrap()).unwrap();
    assert_eq!(cookie, format!("echo:{first}:1"));

    let (killed, other) = if first.0 == 0x101 {
        (&mut pe1, "pe2")
    } else {
        (&mut pe2, "pe1")
    };
    killed.kill();
    s.send(b"two").unwrap();
    assert_eq!(
        s.recv_timeout(Duration::from_secs(10)).unwrap(),
        Some((0, b"two".to_vec())),
        "{}",
        logs.all()
    );
    assert_ne!(s.pe(), Some(first));
    assert_eq!(s.status().failovers, 1);
    logs.wait_for(
        other,
        &format!("cookie echo: {cookie}"),
        Duration::from_secs(3),
    );
    // The new PE continues the count it got from the cookie.
    assert!(eventually(Duration::from_secs(3), || {
        s.status()
            .cookie
            .as_deref()
            .is_some_and(|c| c.ends_with(b":2"))
    }));
}

#[test]
fn in_process_pe_reregisters_with_load_and_deregisters() {
    let logs = Logs::new("client-tcp-inproc");
    let (_reg, port) = logs.local_registrar("registrar", "tcp", &[]);
    let reg = RegistrarConfig::with_registrars(vec![RegistrarAddr::tcp(addr(&format!(
        "127.0.0.1:{port}"
    )))]);
    let opts = PeOptions {
        proto: Proto::Tcp,
        local: addr("127.0.0.1:0"),
        min_address_scope: AddressScope::Loopback,
        policy: rserpool_wire::Policy::LeastUsed { load: 0 },
        reregistration_interval: Duration::from_millis(300),
        ..PeOptions::default()
    };
    let pe = PoolElement::register(&reg, "LoadPool", opts).unwrap();
    assert!(pe.status().registered);
    assert_eq!(pe.addresses(), &[ip("127.0.0.1")]);
    let pu = tcp_user(port);
    let load_of = |pu: &PoolUser| match pu.handle_resolution("LoadPool").unwrap()[0].policy {
        Some(rserpool_wire::Policy::LeastUsed { load }) => load,
        p => panic!("{p:?}"),
    };
    assert_eq!(load_of(&pu), 0);
    pe.set_load(u32::MAX / 4);
    assert!(eventually(Duration::from_secs(3), || load_of(&pu) == u32::MAX / 4));
    // Periodic re-registrations keep coming.
    let n = pe.status().registrations;
    assert!(eventually(Duration::from_secs(3), || pe
        .status()
        .registrations
        >= n + 2));
    // A session straight to the in-process PE.
    let server = std::thread::spawn({
        let pe_id = pe.id();
        move || (pe, pe_id)
    });
    let (pe, _) = server.join().unwrap();
    let h = std::thread::spawn(move || {
        let mut s = pe.accept_timeout(Duration::from_secs(5)).unwrap().unwrap();
        let m = s.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        if let PeMessage::Data { ppid, data } = &m {
            s.send_ppid(*ppid, data).unwrap();
        }
        (pe, m)
    });
    let session = pu.session("LoadPool").unwrap();
    session.send_ppid(77, b"hi").unwrap();
    assert_eq!(
        session.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some((77, b"hi".to_vec()))
    );
    let (pe, m) = h.join().unwrap();
    assert_eq!(
        m,
        PeMessage::Data {
            ppid: 77,
            data: b"hi".to_vec()
        }
    );
    drop(session);
    pe.deregister().unwrap();
    assert!(matches!(
        pu.handle_resolution("LoadPool"),
        Err(Error::Resolve(ResolveError::UnknownPool))
    ));
}

#[test]
fn terminal_example_talks_to_the_echo_pe_example() {
    let logs = Logs::new("client-tcp-terminal");
    let (_reg, port) = logs.local_registrar("registrar", "tcp", &[]);
    let _pe = echo_pe(&logs, "pe", port, "EchoPool", "0x77");
    let mut term = Command::new(example_bin("terminal"))
        .args([
            "--transport",
            "tcp",
            "--registrar",
            &format!("tcp:127.0.0.1:{port}"),
            "--linger",
            "1000",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = term.stdin.take().unwrap();
        stdin.write_all(b"hello\nworld\n").unwrap();
    }
    let out = term.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from PE 0x00000077: hello\nfrom PE 0x00000077: world\n",
        "{}",
        logs.all()
    );
    // The echo PE's cookies reach the terminal's session.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cookie: echo:0x00000077:2"), "{err}");
}
