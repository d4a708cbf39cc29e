//! Scripted registrar for the sans-IO core tests: builds what a registrar
//! would send and decodes what the cores send.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rserpool_client::{Action, ConnId, PoolHandleBuf, RegistrarAddr, RegistrarConfig, Time};
use rserpool_wire::asap::*;
use rserpool_wire::*;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn at(n: u64) -> Time {
    Time::from_millis(n)
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn reg(s: &str) -> RegistrarAddr {
    RegistrarAddr::sctp(addr(s))
}

pub fn pool(s: &str) -> PoolHandleBuf {
    PoolHandleBuf::new(s).unwrap()
}

pub fn registrars(list: &[&str]) -> RegistrarConfig {
    RegistrarConfig::with_registrars(list.iter().map(|s| reg(s)).collect())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn enc(m: AsapMessage<'_>) -> Vec<u8> {
    m.to_vec().unwrap()
}

pub fn registration_response(pool: &str, id: u32, reject: Option<CauseCode>) -> Vec<u8> {
    let causes = reject.map(|c| [Cause::new(c)]);
    enc(AsapMessage::RegistrationResponse(RegistrationResponse {
        reject: reject.is_some(),
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        pe_id: PeId(id),
        error: causes.as_ref().map(|c| OperationError::new(c)),
    }))
}

pub fn deregistration_response(pool: &str, id: u32) -> Vec<u8> {
    enc(AsapMessage::DeregistrationResponse(
        DeregistrationResponse {
            pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
            pe_id: PeId(id),
            error: None,
        },
    ))
}

pub fn keep_alive(server: u32, pool: &str, pe: Option<u32>, home: bool) -> Vec<u8> {
    enc(AsapMessage::EndpointKeepAlive(EndpointKeepAlive {
        home,
        server_id: ServerId(server),
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        pe_id: pe.map(PeId),
    }))
}

pub fn announce(server: u32, transports: &[Transport<'_>]) -> Vec<u8> {
    enc(AsapMessage::ServerAnnounce(ServerAnnounce {
        server_id: ServerId(server),
        transports: Seq::from_items(transports),
    }))
}

/// A PE as a registrar lists it: SCTP on 10.0.0.`id`:`7000 + id`.
pub struct Pe {
    pub id: u32,
    pub policy: Policy,
    pub addrs: [IpAddr; 1],
    pub port: u16,
}

pub fn pe(id: u32, policy: Policy) -> Pe {
    Pe {
        id,
        policy,
        addrs: [ip(&format!("10.0.0.{id}"))],
        port: 7000 + id as u16,
    }
}

pub fn resolution_response(pool: &str, policy: Option<Policy>, pes: &[Pe]) -> Vec<u8> {
    let elements: Vec<PoolElement<'_>> = pes
        .iter()
        .map(|p| PoolElement {
            id: PeId(p.id),
            home_server: ServerId(1),
            registration_life: 30_000,
            user_transport: Transport::sctp(p.port, TransportUse::DATA_PLUS_CONTROL, &p.addrs),
            policy: p.policy.into(),
            asap_transport: None,
        })
        .collect();
    enc(AsapMessage::HandleResolutionResponse(
        HandleResolutionResponse {
            accept: false,
            pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
            policy: policy.map(Into::into),
            elements: Seq::from_items(&elements),
            error: None,
        },
    ))
}

pub fn unknown_pool(pool: &str) -> Vec<u8> {
    let c = [Cause::new(CauseCode::UNKNOWN_POOL_HANDLE)];
    enc(AsapMessage::HandleResolutionResponse(
        HandleResolutionResponse {
            accept: false,
            pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
            policy: None,
            elements: Seq::empty(),
            error: Some(OperationError::new(&c)),
        },
    ))
}

/// The ASAP message type of a Send action's payload.
pub fn sent_type(a: &Action) -> Option<(ConnId, AsapType)> {
    match a {
        Action::Send {
            conn,
            ppid: 11,
            data,
        } => Some((*conn, AsapMessage::parse(data).unwrap().message_type())),
        _ => None,
    }
}

// ----- processes (end-to-end and lab tests) -----

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// `target/<profile>/`, found from this test binary
/// (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in target/<profile>/deps")
        .to_path_buf()
}

/// The path of our registrar binary, built with cargo first when this runs
/// outside the lab (inside, the host's build is used as is).
pub fn registrar_bin() -> PathBuf {
    let bin = target_dir().join("registrar");
    if !rserpool_tests::lab::inside() {
        let profile = target_dir()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug")
            .to_string();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "rserpool-registrar",
            "--bin",
            "registrar",
        ]);
        if profile == "release" {
            cmd.arg("--release");
        } else if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        let ok = cmd
            .current_dir(rserpool_tests::lab::workspace())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok || bin.exists(),
            "cannot build the registrar binary ({})",
            bin.display()
        );
    }
    assert!(
        bin.exists(),
        "our registrar binary is not built: {} (run `cargo build -p rserpool-registrar`)",
        bin.display()
    );
    bin
}

/// An example of this package (cargo test builds them).
pub fn example_bin(name: &str) -> PathBuf {
    let bin = target_dir().join("examples").join(name);
    assert!(
        bin.exists(),
        "example {name} is not built: {} (cargo test builds examples; or run `cargo build -p rserpool-client --examples`)",
        bin.display()
    );
    bin
}

/// Log files of the processes a test starts.
pub struct Logs {
    pub dir: rserpool_tests::TempDir,
}

impl Logs {
    pub fn new(label: &str) -> Self {
        Self {
            dir: rserpool_tests::TempDir::new(label).unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(&format!("{name}.log"))
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .replace('\u{1b}', "")
    }

    /// Everything, for failure messages.
    pub fn all(&self) -> String {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|p| {
                format!(
                    "--- {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .replace('\u{1b}', "")
                )
            })
            .collect()
    }

    /// Starts `cmd` with stdout and stderr into `<name>.log`.
    pub fn spawn(&self, name: &str, cmd: &mut Command) -> Proc {
        let log = std::fs::File::create(self.path(name)).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Proc(child)
    }

    /// Waits until `<name>.log` contains `what`.
    pub fn wait_for(&self, name: &str, what: &str, wait: Duration) {
        let deadline = Instant::now() + wait;
        while !self.read(name).contains(what) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what:?} in {name}.log\n{}",
                self.all()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts our registrar for a test on this host: ASAP on an ephemeral
    /// loopback port over `transport` (`tcp` or `sctp`), no server
    /// announcements, loopback addresses accepted from PEs, then `extra`.
    /// Returns it and its ASAP port.
    pub fn local_registrar(&self, name: &str, transport: &str, extra: &[&str]) -> (Proc, u16) {
        let mut args = vec![
            "--asap",
            "127.0.0.1:0",
            "--transport",
            transport,
            "--announce",
            "off",
            "--min-address-scope",
            "loopback",
        ];
        args.extend_from_slice(extra);
        self.registrar(name, &args)
    }

    /// Starts our registrar with `args` (and `--log-level debug` unless they
    /// set a level) and returns it and its ASAP port.
    pub fn registrar(&self, name: &str, args: &[&str]) -> (Proc, u16) {
        let mut cmd = Command::new(registrar_bin());
        cmd.args(args);
        if !args.contains(&"--log-level") {
            cmd.args(["--log-level", "debug"]);
        }
        let p = self.spawn(name, &mut cmd);
        self.wait_for(name, "registrar is ready", Duration::from_secs(10));
        let log = self.read(name);
        let line = log
            .lines()
            .find(|l| l.contains("registrar is ready"))
            .unwrap();
        let port = line
            .split("port=")
            .nth(1)
            .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .expect("the ready line names the port");
        (p, port)
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Retries `f` until it is true or `wait` passes.
pub fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
