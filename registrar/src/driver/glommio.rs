//! A glommio driver, kept to compare the runtime the design started from
//! with the default epoll loop on the same protocol logic (see
//! docs/benchmarks.md, "Runtime"). TCP only, one shard.
//!
//! Each connection has a reader task (reads, hands every complete message to
//! the core, and writes the answers of one read with one write) and a writer
//! task for messages the shard sends on its own (keep-alives), fed by a local
//! channel. A timer task runs the shard's timers. Knobs, for tuning runs:
//! `RSERPOOL_GLOMMIO_SPIN_US` (spin before park, default 0),
//! `RSERPOOL_GLOMMIO_PREEMPT_US` (preemption timer, default 100 ms),
//! `RSERPOOL_GLOMMIO_RING_DEPTH` (default 128).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};
use rserpool_shard::Time;
use rserpool_shard::mesh::make_assoc;
use rserpool_wire::{TransportKind, frame_len};

use super::{BATCH, CoreSetup};
use crate::core::{ConnMeta, LocalOut};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one core with glommio (TCP only).
pub fn run(setup: CoreSetup) -> io::Result<()> {
    if !setup.sctp.is_empty() {
        return Err(io::Error::other(
            "the glommio driver serves TCP only (use --transport tcp)",
        ));
    }
    executor()?.run(serve(setup))
}

/// Checks that a glommio executor can be made here (io_uring available,
/// enough locked memory for its rings), so that `--driver glommio` fails at
/// start-up with one line rather than in a core thread.
pub fn probe() -> io::Result<()> {
    std::thread::spawn(|| executor().map(drop))
        .join()
        .map_err(|_| io::Error::other("cannot start glommio: its probe panicked"))?
}

fn executor() -> io::Result<glommio::LocalExecutor> {
    let ring_depth = env_u64("RSERPOOL_GLOMMIO_RING_DEPTH", 128);
    if ring_depth == 0 {
        return Err(io::Error::other(
            "RSERPOOL_GLOMMIO_RING_DEPTH must be at least 1",
        ));
    }
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("registrar-glommio")
        .io_memory(64 << 10)
        .spin_before_park(Duration::from_micros(env_u64(
            "RSERPOOL_GLOMMIO_SPIN_US",
            0,
        )))
        .preempt_timer(Duration::from_micros(env_u64(
            "RSERPOOL_GLOMMIO_PREEMPT_US",
            100_000,
        )))
        .ring_depth(usize::try_from(ring_depth).unwrap_or(usize::MAX))
        .make()
        .map_err(|e| {
            io::Error::other(format!(
                "cannot start glommio (io_uring unavailable, or memlock too low?): {e}"
            ))
        })
}

struct Shared {
    setup: RefCell<CoreSetup>,
    conns: RefCell<HashMap<u64, Rc<LocalSender<Vec<u8>>>>>,
    next: RefCell<u32>,
}

/// Outputs of the core, routed after each batch.
#[derive(Default)]
struct Collect {
    items: Vec<(u64, Vec<u8>)>,
}

impl LocalOut for Collect {
    fn deliver(&mut self, assoc: u64, msg: &[u8]) {
        match self.items.last_mut() {
            Some((a, buf)) if *a == assoc => buf.extend_from_slice(msg),
            _ => self.items.push((assoc, msg.to_vec())),
        }
    }

    fn abort(&mut self, assoc: u64) {
        // A zero-length message tells the writer to close.
        self.items.push((assoc, Vec::new()));
    }
}

fn now(start: Instant) -> Time {
    Time(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

async fn serve(setup: CoreSetup) -> io::Result<()> {
    let listeners: Vec<std::net::TcpListener> = setup
        .tcp
        .iter()
        .map(|l| l.try_clone())
        .collect::<io::Result<_>>()?;
    let shared = Rc::new(Shared {
        setup: RefCell::new(setup),
        conns: RefCell::new(HashMap::new()),
        next: RefCell::new(0),
    });
    for l in listeners {
        l.set_nonblocking(true)?;
        // SAFETY: the descriptor is a listening TCP socket we own (a clone
        // of the one opened at start-up); glommio takes it over.
        let gl = unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) };
        glommio::spawn_local(accept_loop(gl, shared.clone())).detach();
    }
    // Timers, replication events and shutdown.
    loop {
        if shared.setup.borrow().shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (start, due) = {
            let s = shared.setup.borrow();
            (s.start, s.core.poll_timeout())
        };
        let t = now(start);
        if due.is_some_and(|d| d <= t) {
            let mut out = Collect::default();
            shared.setup.borrow_mut().core.handle_timeout(t, &mut out);
            shared.setup.borrow_mut().core.flush_replication();
            route(&shared, out);
        }
        let wait = due.map_or(Duration::from_millis(50), |d| {
            Duration::from_micros(d.0.saturating_sub(t.0))
        });
        glommio::timer::sleep(wait.clamp(Duration::from_micros(100), Duration::from_millis(50)))
            .await;
    }
}

fn route(shared: &Shared, out: Collect) {
    let conns = shared.conns.borrow();
    for (assoc, msg) in out.items {
        if let Some(tx) = conns.get(&assoc) {
            let _ = tx.try_send(msg);
        }
    }
}

async fn accept_loop(l: TcpListener, shared: Rc<Shared>) {
    loop {
        let Ok(stream) = l.accept().await else {
            continue;
        };
        let peer = stream.peer_addr().ok();
        stream.set_nodelay(true).ok();
        let id = {
            let mut n = shared.next.borrow_mut();
            *n = n.wrapping_add(1);
            make_assoc(shared.setup.borrow().index, 1, *n)
        };
        shared.setup.borrow().metrics.accepted.inc();
        glommio::spawn_local(connection(stream, id, peer, shared.clone())).detach();
    }
}

async fn connection(
    stream: TcpStream,
    id: u64,
    peer: Option<std::net::SocketAddr>,
    shared: Rc<Shared>,
) {
    let (mut rd, mut wr) = futures_lite::io::split(stream);
    let (tx, rx) = local_channel::new_unbounded::<Vec<u8>>();
    let tx = Rc::new(tx);
    shared.conns.borrow_mut().insert(id, tx.clone());
    // The writer owns the write half: the answers to this connection's reads
    // and the messages the shard sends on its own both go through it.
    let writer = glommio::spawn_local(async move {
        while let Some(msg) = rx.recv().await {
            if msg.is_empty() || wr.write_all(&msg).await.is_err() {
                break;
            }
        }
    })
    .detach();
    let mut meta = ConnMeta::new(
        id,
        TransportKind::Tcp,
        peer.map(|p| vec![p.ip()]).unwrap_or_default(),
        peer.map_or(0, |p| p.port()),
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0;
    loop {
        let n = match rd.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        len += n;
        let mut out = Collect::default();
        let mut pos = 0;
        let mut close = false;
        {
            let mut setup = shared.setup.borrow_mut();
            let t = now(setup.start);
            let max = setup.settings.max_message_size.min(buf.len());
            // Complete frames go to the core a batch at a time (so that it
            // can prefetch for the ones ahead).
            let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
            let mut n = 0;
            loop {
                match frame_len(&buf[pos..len]) {
                    Ok(Some(f)) if f > max => close = true,
                    Ok(Some(f)) if len - pos >= f => {
                        frames[n] = &buf[pos..pos + f];
                        n += 1;
                        pos += f;
                        if n < BATCH {
                            continue;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => close = true,
                }
                setup
                    .core
                    .handle_asap_many(t, &mut meta, &frames[..n], &mut out);
                if n < BATCH || close {
                    break;
                }
                n = 0;
            }
        }
        buf.copy_within(pos..len, 0);
        len -= pos;
        shared.setup.borrow_mut().core.flush_replication();
        route(&shared, out);
        if close {
            break;
        }
    }
    shared.conns.borrow_mut().remove(&id);
    let _ = tx.try_send(Vec::new());
    drop(writer);
    let mut out = Collect::default();
    {
        let mut setup = shared.setup.borrow_mut();
        let t = now(setup.start);
        setup
            .core
            .connection_closed(t, id, meta.registered, &mut out);
        setup.core.flush_replication();
        setup.metrics.closed.inc();
    }
    route(&shared, out);
}
