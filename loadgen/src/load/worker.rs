//! One worker thread: a mio (epoll) loop that owns a share of the emulated
//! PEs and PUs, each a sans-IO core of `rserpool-client` with its own
//! registrar connection(s). Reads are drained per wake-up and cut into ASAP
//! frames; writes are queued per connection and flushed once per wake-up.
//!
//! The main thread steers every worker through [`Control`] (phase, step and
//! offered rates) and receives their counters as [`Report`]s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rserpool_client::types::load_of;
use rserpool_client::{
    Action, ConnId, PeEvent, PeSpec, PoolElementCore, PoolUserCore, Proto, PuEvent,
    RegistrarConfig, RequestError, RequestId, ResolveError, Time, UserConfig,
};
use rserpool_net::sctp;
use rserpool_wire::asap::AsapMessage;
use rserpool_wire::{AsapType, CauseCode, frame_len};
use std::os::fd::AsRawFd;

use super::config::Settings;
use super::population::{Population, echo_answer};
use super::rng::Rng;
use super::stats::{Kind, Stats};

/// Phase: PEs register, PUs connect.
pub const SETUP: u8 = 0;
/// Phase: the measured window (one per sweep step).
pub const RUN: u8 = 1;
/// Phase: PEs deregister, answers drain.
pub const TEARDOWN: u8 = 2;
/// Phase: stop; what is unanswered times out.
pub const STOP: u8 = 3;
/// Phase: between sweep steps: nothing new is sent, answers still count.
pub const PAUSE: u8 = 4;

/// Shared steering and progress counters.
#[derive(Debug)]
pub struct Control {
    /// Current phase.
    pub phase: AtomicU8,
    /// Current step (sweep) of the run phase.
    pub step: AtomicU32,
    /// Offered resolution rate of the step (f64 bits; 0 = none).
    pub res_rate: AtomicU64,
    /// Offered re-registration rate of the step (f64 bits; 0 = none).
    pub reg_rate: AtomicU64,
    /// PEs whose first registration finished plus PUs connected.
    pub setup_done: AtomicUsize,
    /// PEs currently registered.
    pub registered: AtomicUsize,
    /// Workers with nothing left in flight during teardown.
    pub drained: AtomicUsize,
    /// Phase or step changes seen, summed over the workers (each reports
    /// the counts of the old phase before it counts the change).
    pub seen: AtomicUsize,
    /// The common epoch of all workers.
    pub base: Instant,
}

impl Control {
    /// Fresh control at phase set-up.
    pub fn new() -> Self {
        Self {
            phase: AtomicU8::new(SETUP),
            step: AtomicU32::new(0),
            res_rate: AtomicU64::new(0),
            reg_rate: AtomicU64::new(0),
            setup_done: AtomicUsize::new(0),
            registered: AtomicUsize::new(0),
            drained: AtomicUsize::new(0),
            seen: AtomicUsize::new(0),
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Sets a step's offered rates (read by the workers when they enter
    /// [`RUN`]).
    pub fn set_rates(&self, res_rate: f64, reg_rate: f64) {
        self.res_rate.store(res_rate.to_bits(), Ordering::Relaxed);
        self.reg_rate.store(reg_rate.to_bits(), Ordering::Relaxed);
    }

    /// Moves the workers to `phase` and `step`.
    pub fn set_phase(&self, phase: u8, step: u32) {
        self.step.store(step, Ordering::Release);
        self.phase.store(phase, Ordering::Release);
    }
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of one worker over part of an interval.
#[derive(Debug)]
pub struct Report {
    /// Worker index.
    pub thread: usize,
    /// Phase the counts belong to.
    pub phase: u8,
    /// Step the counts belong to.
    pub step: u32,
    /// Interval index (start = index x interval after the epoch).
    pub interval: u64,
    /// Whether the worker has moved past this interval.
    pub closes_interval: bool,
    /// Whether this is the worker's last report.
    pub last: bool,
    /// The counts.
    pub stats: Stats,
}

enum Sock {
    Tcp(TcpStream),
    Sctp(socket2::Socket),
}

impl Sock {
    fn open(addr: std::net::SocketAddr, proto: Proto) -> io::Result<Self> {
        match proto {
            Proto::Tcp => TcpStream::connect(addr).map(Self::Tcp),
            Proto::Sctp => {
                use socket2::{Domain, Protocol, Socket, Type};
                let s = Socket::new(
                    Domain::for_address(addr),
                    Type::STREAM,
                    Some(Protocol::from(libc::IPPROTO_SCTP)),
                )?;
                s.set_nonblocking(true)?;
                sctp::configure(s.as_raw_fd(), rserpool_client::ASAP_PPID)?;
                match s.connect(&addr.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                Ok(Self::Sctp(s))
            }
        }
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Self::Tcp(s) => s.take_error(),
            Self::Sctp(s) => s.take_error(),
        }
    }

    fn connected(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.peer_addr().map(drop),
            Self::Sctp(s) => s.peer_addr().map(drop),
        }
    }
}

struct Conn {
    s: Sock,
    /// SCTP: lengths of the messages queued back to back in `wbuf`.
    lens: Vec<u32>,
    /// SCTP: the first pieces of a message received in parts.
    partial: Vec<u8>,
    ent: usize,
    id: ConnId,
    connecting: bool,
    rbuf: Vec<u8>,
    rlen: usize,
    wbuf: Vec<u8>,
    dirty: bool,
}

struct Pe {
    core: PoolElementCore,
    pidx: usize,
    reg: Option<(u64, Kind)>,
    dereg: Option<u64>,
    registered: bool,
    down: bool,
    first_done: bool,
    refused_without_cause: bool,
}

struct Pu {
    core: PoolUserCore,
    gidx: usize,
    inflight: HashMap<RequestId, (u64, usize, bool)>,
    busy: Vec<bool>,
    warm: bool,
}

enum Role {
    Pe(Box<Pe>),
    Pu(Box<Pu>),
}

struct Ent {
    role: Role,
    conns: Vec<(ConnId, usize)>,
    sched: Option<u64>,
}

/// One worker; see the module documentation.
pub struct Worker {
    id: usize,
    set: Arc<Settings>,
    pop: Arc<Population>,
    ctl: Arc<Control>,
    tx: Sender<Report>,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    free_later: Vec<usize>,
    dirty: Vec<usize>,
    ents: Vec<Ent>,
    pes: Vec<usize>,
    pus: Vec<usize>,
    timers: BinaryHeap<Reverse<(u64, usize)>>,
    stats: Stats,
    rng: Rng,
    phase: u8,
    step: u32,
    interval: u64,
    // schedulers
    setup_next: usize,
    setup_at: u64,
    step_start: u64,
    res_rate: f64,
    res_k: u64,
    res_next: u64,
    res_backlog: VecDeque<u64>,
    res_out: usize,
    reg_rate: f64,
    reg_k: u64,
    reg_next: u64,
    reg_backlog: VecDeque<u64>,
    reg_out: usize,
    churn_next: u64,
    rejoin: VecDeque<(u64, usize)>,
    pu_ptr: usize,
    pe_ptr: usize,
    drained: bool,
    pus_warm: bool,
    next_scan: u64,
    recv: Option<sctp::RecvBatch>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.id).finish()
    }
}

const READ_BUF: usize = 64 * 1024;
const MAX_READ_BUF: usize = 1 << 20;
const MAX_BACKLOG: usize = 1 << 20;
const MAX_ISSUE_PER_PASS: usize = 4096;

fn registrar_config(set: &Settings, global: usize) -> RegistrarConfig {
    let mut list = set.registrars.clone();
    if set.spread && !list.is_empty() {
        let n = list.len();
        list.rotate_left(global % n);
    }
    let mut c = RegistrarConfig::with_registrars(list);
    c.response_timeout = set.timeout;
    c.request_timeout = set.timeout;
    c.connect_timeout = Duration::from_secs(5);
    c.hunt_retry_delay = Duration::from_millis(500);
    c.hunt_retry_max = Duration::from_secs(5);
    c.connect_max_trials = 2;
    c
}

fn cause_name(c: CauseCode) -> String {
    format!("{c:?}")
}

impl Worker {
    /// A worker for thread `id` of `set.threads`, owning PEs and PUs whose
    /// index modulo the thread count is `id`.
    pub fn new(
        id: usize,
        set: Arc<Settings>,
        pop: Arc<Population>,
        ctl: Arc<Control>,
        tx: Sender<Report>,
    ) -> io::Result<Self> {
        let mut w = Self {
            id,
            poll: Poll::new()?,
            conns: Vec::new(),
            free: Vec::new(),
            free_later: Vec::new(),
            dirty: Vec::new(),
            ents: Vec::new(),
            pes: Vec::new(),
            pus: Vec::new(),
            timers: BinaryHeap::new(),
            stats: Stats::new(),
            rng: Rng::new(
                set.seed
                    .wrapping_add(1 + id as u64)
                    .wrapping_mul(0x2545_f491),
            ),
            phase: SETUP,
            step: 0,
            interval: 0,
            setup_next: 0,
            setup_at: 0,
            step_start: 0,
            res_rate: 0.0,
            res_k: 0,
            res_next: u64::MAX,
            res_backlog: VecDeque::new(),
            res_out: 0,
            reg_rate: 0.0,
            reg_k: 0,
            reg_next: u64::MAX,
            reg_backlog: VecDeque::new(),
            reg_out: 0,
            churn_next: u64::MAX,
            rejoin: VecDeque::new(),
            pu_ptr: 0,
            pe_ptr: 0,
            drained: false,
            pus_warm: false,
            next_scan: 0,
            recv: None,
            set,
            pop,
            ctl,
            tx,
        };
        let t = w.set.threads;
        for pidx in (0..w.set.pes).filter(|i| i % t == id) {
            let core = w.pe_core(pidx);
            w.ents.push(Ent {
                role: Role::Pe(Box::new(Pe {
                    core,
                    pidx,
                    reg: None,
                    dereg: None,
                    registered: false,
                    down: false,
                    first_done: false,
                    refused_without_cause: false,
                })),
                conns: Vec::new(),
                sched: None,
            });
            w.pes.push(w.ents.len() - 1);
        }
        for g in (0..w.set.pus).filter(|i| i % t == id) {
            let cfg = UserConfig {
                cache_lifetime: Duration::ZERO,
                resolution_items: w.set.items,
                ..UserConfig::default()
            };
            let seed = w.set.seed ^ (g as u64).wrapping_mul(0x9e37_79b9);
            let core = PoolUserCore::new(registrar_config(&w.set, w.set.pes + g), cfg, seed);
            w.ents.push(Ent {
                role: Role::Pu(Box::new(Pu {
                    core,
                    gidx: g,
                    inflight: HashMap::new(),
                    busy: vec![false; w.set.pools],
                    warm: false,
                })),
                conns: Vec::new(),
                sched: None,
            });
            w.pus.push(w.ents.len() - 1);
        }
        Ok(w)
    }

    fn pe_core(&self, pidx: usize) -> PoolElementCore {
        let d = &self.pop.pes[pidx];
        let mut spec = PeSpec::new(
            self.pop.pools[d.pool].clone(),
            d.id,
            self.set.registrars.first().map_or(Proto::Tcp, |r| r.proto),
            d.port,
            vec![self.set.pe_address],
        );
        spec.policy = self.set.policy;
        spec.reregistration_interval = self.set.rereg_interval;
        PoolElementCore::new(spec, registrar_config(&self.set, pidx))
    }

    fn now(&self) -> u64 {
        self.ctl.now_ns()
    }

    /// Runs until the main thread says stop.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let interval_ns = self.set.interval.as_nanos().max(1) as u64;
        let now = self.now();
        self.interval = now / interval_ns;
        self.setup_at = now;
        loop {
            let now = self.now();
            let timeout = self.timeout(now, interval_ns);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("loadgen: worker {}: poll failed: {e}", self.id);
                    break;
                }
            }
            let now = self.now();
            for ev in events.iter() {
                self.on_io(
                    ev.token().0,
                    ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    ev.is_writable(),
                    now,
                );
            }
            self.free.append(&mut self.free_later);
            self.fire_timers(now);
            let phase = self.ctl.phase.load(Ordering::Acquire);
            let step = self.ctl.step.load(Ordering::Acquire);
            if (phase, step) != (self.phase, self.step) {
                self.enter(phase, step, now);
            }
            if self.phase == STOP {
                self.flush_writes(now);
                self.stop_now();
                self.report(true, true);
                return;
            }
            self.work(now);
            self.flush_writes(now);
            self.free.append(&mut self.free_later);
            let idx = self.now() / interval_ns;
            if idx != self.interval {
                self.report(true, false);
                self.interval = idx;
            }
        }
        self.report(true, true);
    }

    fn report(&mut self, closes_interval: bool, last: bool) {
        let stats = std::mem::take(&mut self.stats);
        let _ = self.tx.send(Report {
            thread: self.id,
            phase: self.phase,
            step: self.step,
            interval: self.interval,
            closes_interval,
            last,
            stats,
        });
    }

    fn timeout(&self, now: u64, interval_ns: u64) -> Duration {
        let mut t = (self.interval + 1) * interval_ns;
        if let Some(Reverse((us, _))) = self.timers.peek() {
            t = t.min(us.saturating_mul(1000));
        }
        match self.phase {
            SETUP if self.setup_next < self.pes.len() => t = t.min(self.setup_at),
            SETUP if !self.pus_warm => t = t.min(now + 5_000_000),
            RUN => {
                t = t.min(self.res_next).min(self.reg_next).min(self.churn_next);
                if !self.res_backlog.is_empty() || !self.reg_backlog.is_empty() {
                    t = t.min(now + 1_000_000);
                }
            }
            _ => {}
        }
        if let Some((at, _)) = self.rejoin.front() {
            t = t.min(*at);
        }
        // Look at the phase at least every 10 ms.
        let wait = t.saturating_sub(now).min(10_000_000);
        if wait < 1_000_000 {
            // epoll waits whole milliseconds: for shorter waits, spin (with
            // --spin) or sleep that long first, so that requests leave on
            // schedule.
            if !self.set.spin && wait > 0 {
                std::thread::sleep(Duration::from_nanos(wait));
            }
            Duration::ZERO
        } else {
            Duration::from_millis(wait / 1_000_000)
        }
    }

    fn enter(&mut self, phase: u8, step: u32, now: u64) {
        if self.phase == RUN {
            for _ in self.res_backlog.drain(..) {
                self.stats.sent(Kind::HandleResolution);
                self.stats.error(
                    Kind::HandleResolution,
                    None,
                    "not sent within its step: no PU free (loadgen backlog)",
                );
            }
            for _ in self.reg_backlog.drain(..) {
                self.stats.sent(Kind::Reregistration);
                self.stats.error(
                    Kind::Reregistration,
                    None,
                    "not sent within its step: no PE free (loadgen backlog)",
                );
            }
            self.res_next = u64::MAX;
            self.reg_next = u64::MAX;
            self.churn_next = u64::MAX;
        }
        self.report(false, false);
        self.ctl.seen.fetch_add(1, Ordering::AcqRel);
        self.phase = phase;
        self.step = step;
        match phase {
            RUN => {
                self.step_start = now;
                let t = self.set.threads as f64;
                self.res_rate = f64::from_bits(self.ctl.res_rate.load(Ordering::Relaxed)) / t;
                self.reg_rate = f64::from_bits(self.ctl.reg_rate.load(Ordering::Relaxed)) / t;
                self.res_k = 0;
                self.reg_k = 0;
                self.res_next = self.sched_time(self.res_rate, 0);
                self.reg_next = self.sched_time(self.reg_rate, 0);
                self.churn_next = match self.set.churn_rate {
                    Some(r) if !self.pes.is_empty() => {
                        now + (1e9 * t / r * (1.0 + self.id as f64 / t)) as u64
                    }
                    _ => u64::MAX,
                };
            }
            TEARDOWN => {
                self.res_next = u64::MAX;
                self.reg_next = u64::MAX;
                self.churn_next = u64::MAX;
                self.rejoin.clear();
                let pes = self.pes.clone();
                for e in pes {
                    self.deregister(e, now);
                }
            }
            _ => {}
        }
    }

    fn sched_time(&self, rate: f64, k: u64) -> u64 {
        if rate <= 0.0 {
            return u64::MAX;
        }
        let off = self.id as f64 / self.set.threads as f64;
        self.step_start + ((k as f64 + off) * 1e9 / rate) as u64
    }

    fn share(&self, total: usize) -> usize {
        let t = self.set.threads;
        total / t + usize::from(self.id < total % t)
    }

    fn work(&mut self, now: u64) {
        match self.phase {
            SETUP => {
                let per = 1e9 * self.set.threads as f64 / self.set.setup_rate;
                let mut n = 0;
                while self.setup_next < self.pes.len()
                    && self.setup_at <= now
                    && n < MAX_ISSUE_PER_PASS
                {
                    let e = self.pes[self.setup_next];
                    self.setup_next += 1;
                    self.setup_at += per as u64;
                    n += 1;
                    self.register(e, now, Kind::Registration);
                }
                if self.setup_at < now.saturating_sub(1_000_000_000) {
                    self.setup_at = now;
                }
                // PUs connect (one resolution each) once this worker's PEs
                // are in.
                // (Scanned at most every 5 ms: 10,000 PEs per pass add up.)
                let scan = !self.pus_warm && now >= self.next_scan;
                if scan {
                    self.next_scan = now + 5_000_000;
                }
                let pes_done = scan
                    && self.pes.iter().all(|&e| match &self.ents[e].role {
                        Role::Pe(p) => p.first_done,
                        Role::Pu(_) => true,
                    });
                if pes_done && !self.pus_warm {
                    self.pus_warm = true;
                    for i in 0..self.pus.len() {
                        let e = self.pus[i];
                        let Role::Pu(u) = &mut self.ents[e].role else {
                            continue;
                        };
                        if u.warm {
                            continue;
                        }
                        u.warm = true;
                        let pool = u.gidx % self.set.pools;
                        self.issue_resolution_on(e, pool, now, now, true);
                    }
                }
            }
            RUN => {
                self.run_resolutions(now);
                self.run_registrations(now);
                let mut n = 0;
                while self.churn_next <= now && n < MAX_ISSUE_PER_PASS {
                    n += 1;
                    let r = self.set.churn_rate.unwrap_or(1.0) / self.set.threads as f64;
                    self.churn_next += (1e9 / r) as u64;
                    self.churn_one(now);
                }
            }
            TEARDOWN if !self.drained && now >= self.next_scan => {
                self.next_scan = now + 5_000_000;
                if self.nothing_in_flight() {
                    self.drained = true;
                    self.ctl.drained.fetch_add(1, Ordering::AcqRel);
                }
            }
            _ => {}
        }
        while let Some(&(at, e)) = self.rejoin.front() {
            if at > now {
                break;
            }
            self.rejoin.pop_front();
            if self.phase == RUN {
                let Role::Pe(p) = &self.ents[e].role else {
                    continue;
                };
                let core = self.pe_core(p.pidx);
                if let Role::Pe(p) = &mut self.ents[e].role {
                    p.core = core;
                    p.down = false;
                    p.registered = false;
                }
                self.register(e, now, Kind::Registration);
            }
        }
    }

    fn nothing_in_flight(&self) -> bool {
        self.ents.iter().all(|e| match &e.role {
            Role::Pe(p) => p.reg.is_none() && p.dereg.is_none(),
            Role::Pu(u) => u.inflight.is_empty(),
        })
    }

    fn run_resolutions(&mut self, now: u64) {
        let mut n = 0;
        while let Some(&t) = self.res_backlog.front() {
            if n >= MAX_ISSUE_PER_PASS || !self.issue_resolution(t, now) {
                break;
            }
            self.res_backlog.pop_front();
            n += 1;
        }
        while self.res_next <= now && n < MAX_ISSUE_PER_PASS {
            let t = self.res_next;
            self.res_k += 1;
            self.res_next = self.sched_time(self.res_rate, self.res_k);
            n += 1;
            if !self.res_backlog.is_empty() || !self.issue_resolution(t, now) {
                if self.res_backlog.len() >= MAX_BACKLOG {
                    self.stats.sent(Kind::HandleResolution);
                    self.stats.error(
                        Kind::HandleResolution,
                        None,
                        "not sent: loadgen backlog full",
                    );
                } else {
                    self.res_backlog.push_back(t);
                }
            }
        }
        if let Some(k) = self.set.in_flight {
            let k = self.share(k);
            while self.res_out < k && n < MAX_ISSUE_PER_PASS {
                if !self.issue_resolution(now, now) {
                    break;
                }
                n += 1;
            }
        }
    }

    fn run_registrations(&mut self, now: u64) {
        let mut n = 0;
        while let Some(&t) = self.reg_backlog.front() {
            if n >= MAX_ISSUE_PER_PASS || !self.issue_reregistration(t, now) {
                break;
            }
            self.reg_backlog.pop_front();
            n += 1;
        }
        while self.reg_next <= now && n < MAX_ISSUE_PER_PASS {
            let t = self.reg_next;
            self.reg_k += 1;
            self.reg_next = self.sched_time(self.reg_rate, self.reg_k);
            n += 1;
            if !self.reg_backlog.is_empty() || !self.issue_reregistration(t, now) {
                if self.reg_backlog.len() >= MAX_BACKLOG {
                    self.stats.sent(Kind::Reregistration);
                    self.stats
                        .error(Kind::Reregistration, None, "not sent: loadgen backlog full");
                } else {
                    self.reg_backlog.push_back(t);
                }
            }
        }
        if let Some(k) = self.set.reg_in_flight {
            let k = self.share(k);
            while self.reg_out < k && n < MAX_ISSUE_PER_PASS {
                if !self.issue_reregistration(now, now) {
                    break;
                }
                n += 1;
            }
        }
    }

    /// A resolution intended at `intended` on a PU that has none in flight
    /// for the chosen pool; false if every PU is busy with it.
    fn issue_resolution(&mut self, intended: u64, now: u64) -> bool {
        let n = self.pus.len();
        if n == 0 {
            return false;
        }
        let pools = self.set.pools;
        let first = self.rng.below(pools);
        for dp in 0..pools.min(4) {
            let pool = (first + dp) % pools;
            for a in 0..n {
                let i = (self.pu_ptr + a) % n;
                let e = self.pus[i];
                let Role::Pu(u) = &self.ents[e].role else {
                    continue;
                };
                if !u.busy[pool] {
                    self.pu_ptr = (i + 1) % n;
                    self.issue_resolution_on(e, pool, intended, now, false);
                    return true;
                }
            }
        }
        false
    }

    fn issue_resolution_on(&mut self, e: usize, pool: usize, intended: u64, now: u64, warm: bool) {
        let t = Time(now / 1000);
        let handle = &self.pop.pools[pool];
        let Role::Pu(u) = &mut self.ents[e].role else {
            return;
        };
        let r = u.core.resolve(t, handle);
        u.inflight.insert(r, (intended, pool, warm));
        u.busy[pool] = true;
        if !warm {
            self.res_out += 1;
        }
        self.stats.sent(Kind::HandleResolution);
        self.after(e, now);
    }

    fn issue_reregistration(&mut self, intended: u64, now: u64) -> bool {
        let n = self.pes.len();
        for a in 0..n {
            let i = (self.pe_ptr + a) % n;
            let e = self.pes[i];
            let Role::Pe(p) = &mut self.ents[e].role else {
                continue;
            };
            if !p.registered || p.down || p.reg.is_some() || p.dereg.is_some() {
                continue;
            }
            self.pe_ptr = (i + 1) % n;
            p.reg = Some((intended, Kind::Reregistration));
            let t = Time(now / 1000);
            let policy = p.core.spec().policy;
            match load_of(&policy) {
                Some(load) => p.core.set_load(t, load.wrapping_add(u32::MAX / 2)),
                None => p.core.set_policy(t, policy),
            }
            self.reg_out += 1;
            self.stats.sent(Kind::Reregistration);
            self.after(e, now);
            return true;
        }
        false
    }

    fn register(&mut self, e: usize, now: u64, kind: Kind) {
        let Role::Pe(p) = &mut self.ents[e].role else {
            return;
        };
        p.reg = Some((now, kind));
        p.core.register(Time(now / 1000));
        self.stats.sent(kind);
        self.after(e, now);
    }

    fn deregister(&mut self, e: usize, now: u64) {
        let Role::Pe(p) = &mut self.ents[e].role else {
            return;
        };
        if p.down || p.dereg.is_some() {
            return;
        }
        use rserpool_client::PeState as S;
        match p.core.state() {
            S::Registered | S::Registering => {
                p.dereg = Some(now);
                if let Some((_, k)) = p.reg.take() {
                    // Superseded by the deregistration: no answer will come.
                    self.stats.error(k, None, "superseded by deregistration");
                    if k == Kind::Reregistration {
                        self.reg_out = self.reg_out.saturating_sub(1);
                    }
                    if k == Kind::Registration && !p.first_done {
                        p.first_done = true;
                        self.ctl.setup_done.fetch_add(1, Ordering::AcqRel);
                    }
                }
                self.stats.sent(Kind::Deregistration);
                p.core.deregister(Time(now / 1000));
                self.after(e, now);
            }
            _ => {}
        }
    }

    fn churn_one(&mut self, now: u64) {
        let n = self.pes.len();
        let start = self.rng.below(n.max(1));
        for a in 0..n {
            let e = self.pes[(start + a) % n];
            let Role::Pe(p) = &self.ents[e].role else {
                continue;
            };
            if p.registered && !p.down && p.reg.is_none() && p.dereg.is_none() {
                self.deregister(e, now);
                if let Role::Pe(p) = &mut self.ents[e].role {
                    p.down = true;
                }
                let at = now + self.set.churn_down.as_nanos() as u64;
                self.rejoin.push_back((at, e));
                return;
            }
        }
    }

    fn stop_now(&mut self) {
        for i in 0..self.ents.len() {
            match &mut self.ents[i].role {
                Role::Pe(p) => {
                    if let Some((_, k)) = p.reg.take() {
                        self.stats.timeout(k);
                    }
                    if p.dereg.take().is_some() {
                        self.stats.timeout(Kind::Deregistration);
                    }
                }
                Role::Pu(u) => {
                    for _ in u.inflight.drain() {
                        self.stats.timeout(Kind::HandleResolution);
                    }
                }
            }
        }
        for _ in self.res_backlog.drain(..) {
            self.stats.sent(Kind::HandleResolution);
            self.stats.error(
                Kind::HandleResolution,
                None,
                "not sent: no PU free before the end",
            );
        }
        for _ in self.reg_backlog.drain(..) {
            self.stats.sent(Kind::Reregistration);
            self.stats.error(
                Kind::Reregistration,
                None,
                "not sent: no PE free before the end",
            );
        }
    }

    // ----- timers -----

    fn fire_timers(&mut self, now: u64) {
        let us = now / 1000;
        while let Some(&Reverse((t, e))) = self.timers.peek() {
            if t > us {
                break;
            }
            self.timers.pop();
            if self.ents[e].sched != Some(t) {
                continue;
            }
            self.ents[e].sched = None;
            match &mut self.ents[e].role {
                Role::Pe(p) => p.core.handle_timeout(Time(us)),
                Role::Pu(u) => u.core.handle_timeout(Time(us)),
            }
            self.after(e, now);
        }
    }

    fn reschedule(&mut self, e: usize) {
        let t = match &self.ents[e].role {
            Role::Pe(p) => p.core.poll_timeout(),
            Role::Pu(u) => u.core.poll_timeout(),
        }
        .map(|t| t.0);
        if t != self.ents[e].sched {
            self.ents[e].sched = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, e)));
            }
        }
    }

    // ----- cores: actions and events -----

    fn after(&mut self, e: usize, now: u64) {
        loop {
            let mut any = false;
            loop {
                let a = match &mut self.ents[e].role {
                    Role::Pe(p) => p.core.poll_action(),
                    Role::Pu(u) => u.core.poll_action(),
                };
                let Some(a) = a else { break };
                any = true;
                self.act(e, a, now);
            }
            loop {
                let handled = match &mut self.ents[e].role {
                    Role::Pe(p) => match p.core.poll_event() {
                        Some(ev) => {
                            self.pe_event(e, ev, now);
                            true
                        }
                        None => false,
                    },
                    Role::Pu(u) => match u.core.poll_event() {
                        Some(ev) => {
                            self.pu_event(e, ev, now);
                            true
                        }
                        None => false,
                    },
                };
                if !handled {
                    break;
                }
                any = true;
            }
            if !any {
                break;
            }
        }
        self.reschedule(e);
    }

    fn act(&mut self, e: usize, a: Action, now: u64) {
        let t = Time(now / 1000);
        match a {
            Action::ConnectRegistrar { conn, to } => {
                let ok = to
                    .addrs
                    .first()
                    .ok_or_else(|| io::Error::other("no address"))
                    .and_then(|addr| Sock::open(*addr, to.proto))
                    .and_then(|s| self.add_conn(e, conn, s));
                if ok.is_err() {
                    match &mut self.ents[e].role {
                        Role::Pe(p) => p.core.handle_connect_failed(t, conn),
                        Role::Pu(u) => u.core.handle_connect_failed(t, conn),
                    }
                }
            }
            Action::ConnectPe { conn, .. } => {
                // Sessions are not emulated.
                if let Role::Pu(u) = &mut self.ents[e].role {
                    u.core.handle_connect_failed(t, conn);
                }
            }
            Action::Send { conn, data, .. } => {
                if let Role::Pe(p) = &mut self.ents[e].role {
                    if p.reg.is_none()
                        && p.dereg.is_none()
                        && data.first() == Some(&AsapType::Registration.code())
                    {
                        // A re-registration the PE makes on its own (its
                        // interval, or a change queued behind another).
                        p.reg = Some((now, Kind::Reregistration));
                        self.stats.sent(Kind::Reregistration);
                        self.reg_out += 1;
                    }
                }
                if let Some(&(_, idx)) = self.ents[e].conns.iter().find(|(c, _)| *c == conn) {
                    if let Some(c) = self.conns[idx].as_mut() {
                        c.wbuf.extend_from_slice(&data);
                        if matches!(c.s, Sock::Sctp(_)) {
                            c.lens.push(data.len() as u32);
                        }
                        if !c.dirty {
                            c.dirty = true;
                            self.dirty.push(idx);
                        }
                    }
                }
            }
            Action::Close { conn } => {
                if let Some(i) = self.ents[e].conns.iter().position(|(c, _)| *c == conn) {
                    let (_, idx) = self.ents[e].conns.swap_remove(i);
                    self.drop_conn(idx);
                }
            }
        }
    }

    fn add_conn(&mut self, e: usize, id: ConnId, mut s: Sock) -> io::Result<()> {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        let r = match &mut s {
            Sock::Tcp(t) => {
                let _ = t.set_nodelay(true);
                self.poll.registry().register(t, Token(idx), interest)
            }
            Sock::Sctp(x) => {
                self.poll
                    .registry()
                    .register(&mut SourceFd(&x.as_raw_fd()), Token(idx), interest)
            }
        };
        if let Err(err) = r {
            self.free.push(idx);
            return Err(err);
        }
        self.conns[idx] = Some(Conn {
            s,
            lens: Vec::new(),
            partial: Vec::new(),
            ent: e,
            id,
            connecting: true,
            rbuf: vec![0; READ_BUF],
            rlen: 0,
            wbuf: Vec::new(),
            dirty: false,
        });
        self.ents[e].conns.push((id, idx));
        Ok(())
    }

    fn drop_conn(&mut self, idx: usize) {
        if let Some(mut c) = self.conns[idx].take() {
            let _ = match &mut c.s {
                Sock::Tcp(t) => self.poll.registry().deregister(t),
                Sock::Sctp(x) => self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&x.as_raw_fd())),
            };
            self.free_later.push(idx);
        }
    }

    /// The connection broke or closed: tell its core.
    fn conn_lost(&mut self, idx: usize, now: u64) {
        let Some(c) = self.conns[idx].as_ref() else {
            return;
        };
        let (e, id, connecting) = (c.ent, c.id, c.connecting);
        self.drop_conn(idx);
        self.ents[e].conns.retain(|(c, _)| *c != id);
        let t = Time(now / 1000);
        match &mut self.ents[e].role {
            Role::Pe(p) if connecting => p.core.handle_connect_failed(t, id),
            Role::Pe(p) => p.core.handle_closed(t, id),
            Role::Pu(u) if connecting => u.core.handle_connect_failed(t, id),
            Role::Pu(u) => u.core.handle_closed(t, id, true),
        }
        self.after(e, now);
    }

    fn on_io(&mut self, idx: usize, readable: bool, writable: bool, now: u64) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if c.connecting {
            if !(writable || readable) {
                return;
            }
            match c.s.take_error() {
                Ok(None) => {}
                _ => return self.conn_lost(idx, now),
            }
            match c.s.connected() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.conn_lost(idx, now),
            }
            c.connecting = false;
            let (e, id) = (c.ent, c.id);
            let t = Time(now / 1000);
            match &mut self.ents[e].role {
                Role::Pe(p) => p.core.handle_connected(t, id),
                Role::Pu(u) => u.core.handle_connected(t, id),
            }
            self.after(e, now);
        }
        if writable {
            self.write_conn(idx, now);
        }
        if readable {
            self.read_conn(idx, now);
        }
    }

    fn read_conn(&mut self, idx: usize, now: u64) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let s = match &mut c.s {
            Sock::Sctp(_) => return self.read_sctp(idx, now),
            Sock::Tcp(s) => s,
        };
        let mut closed = false;
        loop {
            if c.rlen == c.rbuf.len() {
                if c.rbuf.len() >= MAX_READ_BUF {
                    closed = true;
                    break;
                }
                let n = c.rbuf.len() * 2;
                c.rbuf.resize(n, 0);
            }
            match s.read(&mut c.rbuf[c.rlen..]) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    c.rlen += n;
                    if c.rlen < c.rbuf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let (e, id) = (c.ent, c.id);
        let mut buf = std::mem::take(&mut c.rbuf);
        let len = c.rlen;
        let mut pos = 0;
        let mut bad = false;
        while pos < len {
            match frame_len(&buf[pos..len]) {
                Ok(Some(n)) if pos + n <= len => {
                    self.on_frame(e, id, &buf[pos..pos + n], now);
                    pos += n;
                }
                Ok(_) => break,
                Err(_) => {
                    bad = true;
                    break;
                }
            }
        }
        buf.copy_within(pos..len, 0);
        // The frame handlers may have closed the connection.
        match self.conns.get_mut(idx).and_then(Option::as_mut) {
            Some(c) if c.id == id && c.ent == e => {
                c.rbuf = buf;
                c.rlen = len - pos;
            }
            _ => return,
        }
        if bad {
            self.stats.wrong(
                self.kind_of_ent(e),
                None,
                "undecodable framing from the registrar",
            );
        }
        if closed || bad {
            self.conn_lost(idx, now);
        }
    }

    fn kind_of_ent(&self, e: usize) -> Kind {
        match &self.ents[e].role {
            Role::Pe(_) => Kind::Registration,
            Role::Pu(_) => Kind::HandleResolution,
        }
    }

    fn on_frame(&mut self, e: usize, conn: ConnId, frame: &[u8], now: u64) {
        let t = Time(now / 1000);
        let answer;
        let bytes: &[u8] = if self.set.echo {
            match echo_answer(&self.pop, frame) {
                Ok(Some(a)) => {
                    answer = a;
                    &answer
                }
                Ok(None) => return,
                Err(why) => {
                    let k = self.kind_of_ent(e);
                    self.stats.wrong(k, None, why);
                    return;
                }
            }
        } else {
            self.check_unsolicited(e, frame);
            frame
        };
        match &mut self.ents[e].role {
            Role::Pe(p) => p.core.handle_message(t, conn, bytes),
            Role::Pu(u) => u
                .core
                .handle_message(t, conn, rserpool_client::ASAP_PPID, bytes),
        }
        self.after(e, now);
    }

    /// Answers the cores would drop silently as unsolicited, counted as
    /// wrong here: a resolution of a pool the PU did not ask for, a
    /// registration answer for another PE, a refusal without a cause.
    fn check_unsolicited(&mut self, e: usize, frame: &[u8]) {
        let Ok(m) = AsapMessage::parse(frame) else {
            let k = self.kind_of_ent(e);
            self.stats.wrong(k, None, "undecodable message");
            return;
        };
        match (&mut self.ents[e].role, m) {
            (Role::Pu(u), AsapMessage::HandleResolutionResponse(r)) => {
                let asked = self
                    .pop
                    .pool_index(r.pool_handle.as_bytes())
                    .is_some_and(|i| u.busy[i]);
                if !asked {
                    self.stats.wrong(
                        Kind::HandleResolution,
                        None,
                        "answer for a pool that was not asked",
                    );
                }
            }
            (Role::Pe(p), AsapMessage::RegistrationResponse(r)) => {
                let spec = p.core.spec();
                if r.pool_handle.as_bytes() != spec.pool.as_bytes() || r.pe_id != spec.id {
                    self.stats.wrong(
                        Kind::Registration,
                        None,
                        "registration answer for another PE",
                    );
                } else if r.reject && r.error.and_then(|e| e.first_code()).is_none() {
                    p.refused_without_cause = true;
                }
            }
            _ => {}
        }
    }

    fn pe_event(&mut self, e: usize, ev: PeEvent, now: u64) {
        let Role::Pe(p) = &mut self.ents[e].role else {
            return;
        };
        let lat = |t0: u64| now.saturating_sub(t0);
        let mut setup_finished = false;
        match ev {
            PeEvent::Registered { .. } => {
                if !p.registered {
                    p.registered = true;
                    self.ctl.registered.fetch_add(1, Ordering::AcqRel);
                }
                if let Some((t0, k)) = p.reg.take() {
                    self.stats.ok(k, lat(t0));
                    if k == Kind::Reregistration {
                        self.reg_out = self.reg_out.saturating_sub(1);
                    }
                }
                if self.set.load_changes {
                    if let Some(load) = load_of(&p.core.spec().policy) {
                        // Under 1 % of the range: the core keeps it for the
                        // next periodic re-registration.
                        let step = (self.rng.next_u32() % (u32::MAX / 200)) as i64;
                        let up = self.rng.next_u32() & 1 == 1;
                        let new = if up {
                            (i64::from(load) + step).min(i64::from(u32::MAX))
                        } else {
                            (i64::from(load) - step).max(0)
                        };
                        p.core.set_load(Time(now / 1000), new as u32);
                    }
                }
                setup_finished = true;
            }
            PeEvent::Rejected { cause } => {
                let without = std::mem::take(&mut p.refused_without_cause);
                if let Some((t0, k)) = p.reg.take() {
                    if without {
                        self.stats
                            .wrong(k, Some(lat(t0)), "refused without a cause");
                    } else {
                        self.stats.error(
                            k,
                            Some(lat(t0)),
                            &format!("refused: {}", cause_name(cause)),
                        );
                    }
                    if k == Kind::Reregistration {
                        self.reg_out = self.reg_out.saturating_sub(1);
                    }
                }
                setup_finished = true;
            }
            PeEvent::RegistrationFailed { error } => {
                if let Some((t0, k)) = p.reg.take() {
                    match error {
                        RequestError::Timeout => self.stats.timeout(k),
                        RequestError::NoRegistrar => {
                            self.stats.error(k, None, "no registrar reachable")
                        }
                        RequestError::AsapError(c) => self.stats.error(
                            k,
                            Some(lat(t0)),
                            &format!("ASAP error {}", cause_name(c)),
                        ),
                    }
                    if k == Kind::Reregistration {
                        self.reg_out = self.reg_out.saturating_sub(1);
                    }
                }
                setup_finished = true;
            }
            PeEvent::Deregistered { result } => {
                if let Some(t0) = p.dereg.take() {
                    match result {
                        Ok(()) => self.stats.ok(Kind::Deregistration, lat(t0)),
                        Err(RequestError::Timeout) => self.stats.timeout(Kind::Deregistration),
                        Err(RequestError::NoRegistrar) => {
                            self.stats
                                .error(Kind::Deregistration, None, "no registrar reachable")
                        }
                        Err(RequestError::AsapError(c)) => self.stats.error(
                            Kind::Deregistration,
                            Some(lat(t0)),
                            &format!("refused: {}", cause_name(c)),
                        ),
                    }
                }
                if p.registered {
                    p.registered = false;
                    self.ctl.registered.fetch_sub(1, Ordering::AcqRel);
                }
            }
            PeEvent::KeepAlive { .. } => {
                self.stats.sent(Kind::KeepAlive);
                self.stats.kind_mut(Kind::KeepAlive).ok += 1;
            }
            PeEvent::HomeChanged { .. } => {}
            PeEvent::RegistrarLost => self.stats.note("PE lost its registrar connection"),
        }
        if setup_finished && !p.first_done {
            p.first_done = true;
            self.ctl.setup_done.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn pu_event(&mut self, e: usize, ev: PuEvent, now: u64) {
        let PuEvent::Resolved {
            request,
            pool,
            result,
        } = ev
        else {
            return;
        };
        let Role::Pu(u) = &mut self.ents[e].role else {
            return;
        };
        let Some((t0, pidx, warm)) = u.inflight.remove(&request) else {
            return;
        };
        u.busy[pidx] = false;
        if warm {
            self.ctl.setup_done.fetch_add(1, Ordering::AcqRel);
        } else {
            self.res_out = self.res_out.saturating_sub(1);
        }
        let lat = now.saturating_sub(t0);
        let k = Kind::HandleResolution;
        match result {
            Ok(pes) => {
                let mut why = None;
                if pool != self.pop.pools[pidx] {
                    why = Some("answer names another pool");
                }
                if self.set.items > 0 && pes.len() > self.set.items as usize {
                    why = Some("more PEs than asked for");
                }
                for (i, pe) in pes.iter().enumerate() {
                    match self.pop.pe(pe.id) {
                        None => why = Some("a PE that was never registered"),
                        Some(d) if d.pool != pidx => why = Some("a PE of another pool"),
                        Some(d) if d.port != pe.port => why = Some("a PE with a wrong port"),
                        Some(_) => {}
                    }
                    if pes[..i].iter().any(|q| q.id == pe.id) {
                        why = Some("the same PE twice");
                    }
                }
                match why {
                    Some(w) => self.stats.wrong(k, Some(lat), w),
                    None => self.stats.ok(k, lat),
                }
                if !warm
                    && self.set.eu_prob > 0.0
                    && !pes.is_empty()
                    && self.rng.unit() < self.set.eu_prob
                {
                    let victim = pes[self.rng.below(pes.len())].id;
                    if let Role::Pu(u) = &mut self.ents[e].role {
                        if u.core.report_failure(Time(now / 1000), &pool, victim) {
                            self.stats.sent(Kind::EndpointUnreachable);
                            self.stats.kind_mut(Kind::EndpointUnreachable).ok += 1;
                        }
                    }
                }
            }
            Err(ResolveError::UnknownPool) => self.stats.error(k, Some(lat), "unknown pool handle"),
            Err(ResolveError::Refused(c)) => {
                self.stats
                    .error(k, Some(lat), &format!("refused: {}", cause_name(c)))
            }
            Err(ResolveError::NoUsablePe) => self.stats.error(k, Some(lat), "answer with no PE"),
            Err(ResolveError::NoReachablePe) => self.stats.error(k, Some(lat), "no reachable PE"),
            Err(ResolveError::Request(RequestError::Timeout)) => self.stats.timeout(k),
            Err(ResolveError::Request(RequestError::NoRegistrar)) => {
                self.stats.error(k, None, "no registrar reachable")
            }
            Err(ResolveError::Request(RequestError::AsapError(c))) => {
                self.stats
                    .error(k, Some(lat), &format!("ASAP error {}", cause_name(c)))
            }
        }
    }

    /// SCTP: one `recvmmsg` batch after another until the socket is empty;
    /// PPID 11 checked on every message.
    fn read_sctp(&mut self, idx: usize, now: u64) {
        let mut rb = self
            .recv
            .take()
            .unwrap_or_else(|| sctp::RecvBatch::new(64, 8192));
        let mut closed = false;
        'outer: while let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) {
            let (e, id) = (c.ent, c.id);
            let Sock::Sctp(x) = &c.s else { break };
            let n = match rb.recv(x.as_raw_fd()) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            };
            for (data, m) in rb.iter() {
                if m.notification {
                    continue;
                }
                if m.len == 0 && m.complete {
                    closed = true;
                    break 'outer;
                }
                let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                    break 'outer;
                };
                if !m.complete {
                    c.partial.extend_from_slice(data);
                    continue;
                }
                let whole: Vec<u8>;
                let msg: &[u8] = if c.partial.is_empty() {
                    data
                } else {
                    c.partial.extend_from_slice(data);
                    whole = std::mem::take(&mut c.partial);
                    &whole
                };
                if m.ppid.is_some_and(|p| p != rserpool_client::ASAP_PPID) {
                    let k = self.kind_of_ent(e);
                    self.stats
                        .wrong(k, None, "message with a PPID other than 11");
                    continue;
                }
                self.on_frame(e, id, msg, now);
            }
            if n < rb.slots() {
                break;
            }
        }
        self.recv = Some(rb);
        if closed {
            self.conn_lost(idx, now);
        }
    }

    /// SCTP: the queued messages with `sendmmsg`, as many as the socket
    /// takes.
    fn write_sctp(&mut self, idx: usize, fd: std::os::fd::RawFd, now: u64) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let sent = sctp::send_queue(fd, &c.wbuf, &c.lens, rserpool_client::ASAP_PPID);
        c.wbuf.drain(..sent.bytes);
        c.lens.drain(..sent.msgs);
        if sent.failed {
            self.conn_lost(idx, now);
        }
    }

    // ----- writes -----

    fn flush_writes(&mut self, now: u64) {
        let dirty = std::mem::take(&mut self.dirty);
        for idx in dirty {
            self.write_conn(idx, now);
        }
    }

    fn write_conn(&mut self, idx: usize, now: u64) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        c.dirty = false;
        if c.connecting || c.wbuf.is_empty() {
            return;
        }
        let s = match &mut c.s {
            Sock::Sctp(x) => {
                let fd = x.as_raw_fd();
                return self.write_sctp(idx, fd, now);
            }
            Sock::Tcp(s) => s,
        };
        let mut off = 0;
        let mut failed = false;
        while off < c.wbuf.len() {
            match s.write(&c.wbuf[off..]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        c.wbuf.drain(..off);
        if failed {
            self.conn_lost(idx, now);
        }
    }
}
