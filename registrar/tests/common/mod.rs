//! Harness for end-to-end tests: the real `registrar` binary on loopback,
//! and a raw ASAP-over-TCP peer built on the codec (test scaffolding that
//! sends exact bytes; the client library lives in rserpool-client).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rserpool_wire::asap::*;
use rserpool_wire::*;

/// A running registrar process.
pub struct Reg {
    pub child: Child,
    pub port: u16,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Reg {
    /// Starts the binary on 127.0.0.1 (port chosen by the kernel) with
    /// announces off, loopback addresses allowed, and `extra` arguments.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec![
            "--asap",
            "127.0.0.1:0",
            "--announce",
            "off",
            "--min-address-scope",
            "loopback",
            "--transport",
            "tcp",
        ];
        args.extend_from_slice(extra);
        Self::start_raw(&args)
    }

    pub fn start_raw(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_registrar"))
            .args(args)
            .env("RSERPOOL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("registrar starts");
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(p) = line.split("port=").nth(1) {
                    if line.contains("registrar is ready") {
                        let port: u16 = p
                            .split_whitespace()
                            .next()
                            .unwrap_or("0")
                            .parse()
                            .unwrap_or(0);
                        let _ = tx.send(port);
                    }
                }
                keep.lock().unwrap().push(line);
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("registrar says it is ready");
        Self {
            child,
            port,
            stderr: lines,
        }
    }

    pub fn connect(&self) -> Peer {
        Peer::connect(self.port)
    }
}

impl Drop for Reg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw ASAP peer over TCP.
pub struct Peer {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    pub fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).unwrap();
        Self { s, buf: Vec::new() }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn send(&mut self, m: &AsapMessage<'_>) {
        let v = m.to_vec().unwrap();
        self.send_raw(&v);
    }

    /// The next message, or `None` if nothing arrives within `wait` (or the
    /// connection closed: then `closed` is set).
    pub fn recv_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(Some(n)) = frame_len(&self.buf) {
                if self.buf.len() >= n {
                    return Some(self.buf.drain(..n).collect());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(_) => return None,
            }
        }
    }

    pub fn recv(&mut self) -> Vec<u8> {
        self.recv_within(Duration::from_secs(5))
            .expect("a message within 5 s")
    }

    /// Whether the registrar closed the connection (within `wait`).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.s
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let mut tmp = [0u8; 4096];
            match self.s.read(&mut tmp) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}

pub fn lo() -> [IpAddr; 1] {
    ["127.0.0.1".parse().unwrap()]
}

pub fn registration<'a>(
    pool: &'a str,
    id: u32,
    policy: Policy,
    addrs: &'a [IpAddr],
) -> AsapMessage<'a> {
    AsapMessage::Registration(Registration {
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        element: PoolElement {
            id: PeId(id),
            home_server: ServerId(0),
            registration_life: 60_000,
            user_transport: Transport::tcp(7000, TransportUse::DATA_PLUS_CONTROL, addrs),
            policy: policy.into(),
            asap_transport: None,
        },
    })
}

pub fn resolution(pool: &str, items: Option<u32>) -> AsapMessage<'_> {
    AsapMessage::HandleResolution(HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        option: items.map(|items| HandleResolutionOption { items }),
    })
}

/// Resolves and returns the PE ids, or the error cause.
pub fn resolve(p: &mut Peer, pool: &str) -> Result<Vec<u32>, CauseCode> {
    p.send(&resolution(pool, Some(10)));
    let bytes = p.recv();
    let AsapMessage::HandleResolutionResponse(r) = AsapMessage::parse(&bytes).unwrap() else {
        panic!("expected a handle resolution response, got {bytes:02x?}")
    };
    match r.error {
        Some(e) => Err(e.first_code().unwrap()),
        None => Ok(r.elements.iter().map(|e| e.id.0).collect()),
    }
}

/// Retries `f` until it returns true or `wait` passes.
pub fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
