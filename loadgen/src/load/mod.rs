//! The load generator: emulated PEs and PUs (the sans-IO cores of
//! `rserpool-client`) on per-core mio loops ([`worker`]), answers checked
//! against the known population ([`population`]), counters and HdrHistogram
//! latencies per message type ([`stats`]), the echo floor ([`echo`]), and
//! the capacity sweep with its SVG plot ([`sweep`], [`svg`]).
//!
//! A run has phases: set-up (the PEs register, each over its own
//! association; every PU connects with one resolution), one or more
//! measured steps (open- or closed-loop load, each followed by a short
//! pause in which answers still count), and teardown (every PE
//! deregisters). [`execute`] drives them and returns an [`Outcome`].

pub mod config;
pub mod cpu;
pub mod echo;
pub mod population;
pub mod rng;
pub mod stats;
pub mod svg;
pub mod sweep;
pub mod worker;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crossbeam::channel::{Receiver, RecvTimeoutError, unbounded};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use serde_json::{Value, json};

use config::Settings;
use population::Population;
use stats::{Kind, Stats, fmt_ns};
use worker::{Control, PAUSE, RUN, Report, SETUP, STOP, TEARDOWN, Worker};

/// One measured step.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// Step number.
    pub step: u32,
    /// Offered open-loop resolution rate (0 = none or closed loop).
    pub offered_res: f64,
    /// Offered open-loop re-registration rate.
    pub offered_reg: f64,
    /// Length of the step's window, s.
    pub secs: f64,
    /// Counts (the window and the pause after it).
    pub stats: Stats,
    /// Registrar CPU seconds per second during the window.
    pub registrar_cpu: Option<f64>,
    /// Load generator CPU seconds per second during the window.
    pub loadgen_cpu: Option<f64>,
}

impl StepResult {
    /// Answered requests of `k` per second of the window (ok + wrong +
    /// errors that came with an answer).
    pub fn answered_rate(&self, k: Kind) -> f64 {
        let s = self.stats.kind(k);
        if self.secs > 0.0 {
            s.latency.len() as f64 / self.secs
        } else {
            0.0
        }
    }

    /// JSON form.
    pub fn to_json(&self) -> Value {
        json!({
            "step": self.step,
            "offered_resolutions_per_s": self.offered_res,
            "offered_reregistrations_per_s": self.offered_reg,
            "registrar_cpu_s_per_s": self.registrar_cpu,
            "loadgen_cpu_s_per_s": self.loadgen_cpu,
            "stats": self.stats.to_json(self.secs),
        })
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Set-up counts (first registrations, PU connections).
    pub setup: Stats,
    /// Set-up length, s.
    pub setup_secs: f64,
    /// Whether every PE and PU finished set-up before the timeout.
    pub setup_complete: bool,
    /// The measured steps.
    pub steps: Vec<StepResult>,
    /// Teardown counts (deregistrations; what was unanswered at the end).
    pub teardown: Stats,
    /// Teardown length, s.
    pub teardown_secs: f64,
    /// Everything together.
    pub total: Stats,
}

impl Outcome {
    /// The end-of-run tables.
    pub fn tables(&self) -> String {
        let mut s = self.setup.table("set-up", self.setup_secs);
        for st in &self.steps {
            let mut title = format!("step {}", st.step);
            if st.offered_res > 0.0 {
                title += &format!(", offered {:.0} resolutions/s", st.offered_res);
            }
            if st.offered_reg > 0.0 {
                title += &format!(", offered {:.0} re-registrations/s", st.offered_reg);
            }
            if let Some(c) = st.registrar_cpu {
                title += &format!(", registrar CPU {c:.3} s/s");
            }
            if let Some(c) = st.loadgen_cpu {
                title += &format!(", loadgen CPU {c:.3} s/s");
            }
            s += "\n";
            s += &st.stats.table(&title, st.secs);
        }
        s += "\n";
        s += &self.teardown.table("teardown", self.teardown_secs);
        s
    }

    /// The JSON summary.
    pub fn to_json(&self, set: &Settings) -> Value {
        json!({
            "settings": settings_json(set),
            "setup": { "complete": self.setup_complete, "stats": self.setup.to_json(self.setup_secs) },
            "steps": self.steps.iter().map(StepResult::to_json).collect::<Vec<_>>(),
            "teardown": self.teardown.to_json(self.teardown_secs),
            "total": self.total.to_json(0.0),
        })
    }
}

fn settings_json(s: &Settings) -> Value {
    json!({
        "registrars": s.registrars.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "spread": s.spread,
        "echo": s.echo,
        "pes": s.pes,
        "pools": s.pools,
        "policy": format!("{:?}", s.policy),
        "pus": s.pus,
        "rate": s.rate,
        "in_flight": s.in_flight,
        "reg_rate": s.reg_rate,
        "reg_in_flight": s.reg_in_flight,
        "churn_rate": s.churn_rate,
        "eu_prob": s.eu_prob,
        "items": s.items,
        "duration_s": s.duration.as_secs_f64(),
        "threads": s.threads,
        "cores": s.cores,
        "seed": s.seed,
        "rereg_interval_ms": s.rereg_interval.as_millis() as u64,
        "timeout_ms": s.timeout.as_millis() as u64,
    })
}

/// Decides the steps: called with the step number and the previous step's
/// result; returns the next step's offered (resolution, re-registration)
/// rates, or `None` to end.
pub type Plan<'a> = dyn FnMut(u32, Option<&StepResult>) -> Option<(f64, f64)> + 'a;

type LogWriter<'a, 'b> = hdrhistogram::serialization::interval_log::IntervalLogWriter<
    'a,
    'b,
    BufWriter<File>,
    V2DeflateSerializer,
>;

struct Collector<'a, 'b> {
    rx: Receiver<Report>,
    threads: usize,
    buckets: BTreeMap<(u8, u32), Stats>,
    intervals: BTreeMap<u64, Stats>,
    done_upto: Vec<Option<u64>>,
    ended: Vec<bool>,
    log: Option<LogWriter<'a, 'b>>,
    log_error: Option<String>,
    interval: Duration,
    quiet: bool,
    registrar_pid: Option<String>,
    last_cpu: Option<(Instant, u64)>,
    ctl: Arc<Control>,
    total_pes: usize,
}

impl Collector<'_, '_> {
    fn add(&mut self, r: Report) {
        self.intervals
            .entry(r.interval)
            .or_default()
            .merge(&r.stats);
        self.buckets
            .entry((r.phase, r.step))
            .or_default()
            .merge(&r.stats);
        if r.closes_interval {
            let d = &mut self.done_upto[r.thread];
            *d = Some(d.map_or(r.interval, |x| x.max(r.interval)));
        }
        if r.last {
            self.ended[r.thread] = true;
        }
        self.emit(false);
    }

    /// Writes out (log, progress) the intervals every worker has finished.
    fn emit(&mut self, all: bool) {
        let upto = if all {
            u64::MAX
        } else {
            match self
                .done_upto
                .iter()
                .zip(&self.ended)
                .map(|(d, e)| if *e { Some(u64::MAX) } else { *d })
                .min()
                .flatten()
            {
                Some(u) => u,
                None => return,
            }
        };
        while let Some((&k, _)) = self.intervals.first_key_value() {
            if k > upto {
                break;
            }
            let (k, st) = self.intervals.pop_first().expect("checked above");
            let start = self.interval.mul_f64(k as f64);
            if let Some(log) = self.log.as_mut() {
                for kind in Kind::ALL {
                    let ks = st.kind(kind);
                    if ks.latency.is_empty() {
                        continue;
                    }
                    if let Err(e) = log.write_histogram(
                        &ks.latency,
                        start,
                        self.interval,
                        Tag::new(kind.name()),
                    ) {
                        self.log_error.get_or_insert(format!("interval log: {e}"));
                    }
                }
            }
            if !self.quiet {
                self.progress(&st, k);
            }
        }
    }

    fn progress(&mut self, st: &Stats, k: u64) {
        let secs = self.interval.as_secs_f64();
        let mut line = format!("[{:>7.1}s]", (k + 1) as f64 * secs);
        let phase = match self.ctl.phase.load(Ordering::Relaxed) {
            SETUP => "set-up".to_string(),
            RUN => format!("step {}", self.ctl.step.load(Ordering::Relaxed)),
            PAUSE => "pause".to_string(),
            TEARDOWN => "teardown".to_string(),
            _ => "stop".to_string(),
        };
        line += &format!(
            " {phase:<9} PEs {}/{}",
            self.ctl.registered.load(Ordering::Relaxed),
            self.total_pes
        );
        let short = |k: Kind| match k {
            Kind::Registration => "reg",
            Kind::Reregistration => "rereg",
            Kind::Deregistration => "dereg",
            Kind::HandleResolution => "hr",
            Kind::EndpointUnreachable => "eu",
            Kind::KeepAlive => "ka",
        };
        let (mut wrong, mut err, mut to) = (0, 0, 0);
        for kind in Kind::ALL {
            let ks = st.kind(kind);
            wrong += ks.wrong;
            err += ks.errors;
            to += ks.timeouts;
            if ks.sent == 0 && ks.finished() == 0 {
                continue;
            }
            line += &format!(" | {} {:.0}/s", short(kind), ks.sent as f64 / secs);
            if kind.answered() && !ks.latency.is_empty() {
                line += &format!(
                    " p50 {} p99 {}",
                    fmt_ns(ks.percentile_ns(0.5)),
                    fmt_ns(ks.percentile_ns(0.99))
                );
            }
        }
        line += &format!(" | wrong {wrong} err {err} timeout {to}");
        if let Some(pid) = &self.registrar_pid {
            if let Some(now) = cpu::cpu_ns(pid) {
                let t = Instant::now();
                if let Some((t0, c0)) = self.last_cpu {
                    let wall = t.duration_since(t0).as_secs_f64();
                    if wall > 0.0 {
                        line += &format!(
                            " | registrar CPU {:.3} s/s",
                            now.saturating_sub(c0) as f64 / 1e9 / wall
                        );
                    }
                }
                self.last_cpu = Some((t, now));
            }
        }
        eprintln!("{line}");
    }

    /// Receives reports until `until`.
    fn pump_until(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            match self.rx.recv_timeout(until - now) {
                Ok(r) => self.add(r),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(until - now);
                    break;
                }
            }
        }
    }

    fn drain_now(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            self.add(r);
        }
    }

    /// Moves the workers to (`phase`, `step`) and waits until each has
    /// reported the counts of the phase it left.
    fn switch(&mut self, phase: u8, step: u32, switches: &mut usize) -> Result<(), String> {
        self.ctl.set_phase(phase, step);
        *switches += 1;
        let want = *switches * self.threads;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ctl.seen.load(Ordering::Acquire) < want {
            if Instant::now() > deadline {
                return Err("a worker thread stopped answering".into());
            }
            self.pump_until(Instant::now() + Duration::from_millis(2));
        }
        self.drain_now();
        Ok(())
    }

    fn take(&mut self, phase: u8, step: u32) -> Stats {
        self.buckets.remove(&(phase, step)).unwrap_or_default()
    }
}

/// Runs the load described by `set`, with the steps `plan` gives.
pub fn execute(set: &Settings, plan: &mut Plan<'_>) -> Result<Outcome, String> {
    let set = Arc::new(set.clone());
    let pop = Arc::new(Population::new(&set));
    let ctl = Arc::new(Control::new());
    let wall_base = SystemTime::now();
    let (tx, rx) = unbounded();
    let mut handles = Vec::new();
    for i in 0..set.threads {
        let (set2, pop2, ctl2, tx2) = (set.clone(), pop.clone(), ctl.clone(), tx.clone());
        let core = (!set.cores.is_empty()).then(|| set.cores[i % set.cores.len()]);
        let h = std::thread::Builder::new()
            .name(format!("loadgen-{i}"))
            .spawn(move || {
                if let Some(c) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                        eprintln!("loadgen: cannot pin worker {i} to CPU {c}");
                    }
                }
                match Worker::new(i, set2, pop2, ctl2, tx2) {
                    Ok(w) => w.run(),
                    Err(e) => eprintln!("loadgen: worker {i}: {e}"),
                }
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        handles.push(h);
    }
    drop(tx);

    let mut file = match &set.interval_log {
        Some(p) => {
            Some(BufWriter::new(File::create(p).map_err(|e| {
                format!("cannot create {}: {e}", p.display())
            })?))
        }
        None => None,
    };
    let mut ser = V2DeflateSerializer::new();
    let log = match file.as_mut() {
        Some(f) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("loadgen (rserpool-rs) latencies in ns; tags are ASAP message types")
                .with_start_time(wall_base)
                .with_base_time(wall_base)
                .with_max_value_divisor(1e6)
                .begin_log_with(f, &mut ser)
                .map_err(|e| format!("interval log: {e}"))?,
        ),
        None => None,
    };
    let mut c = Collector {
        rx,
        threads: set.threads,
        buckets: BTreeMap::new(),
        intervals: BTreeMap::new(),
        done_upto: vec![None; set.threads],
        ended: vec![false; set.threads],
        log,
        log_error: None,
        interval: set.interval,
        quiet: set.quiet,
        registrar_pid: set.registrar_pid.map(|p| p.to_string()),
        last_cpu: None,
        ctl: ctl.clone(),
        total_pes: set.pes,
    };
    let result = drive(&set, &ctl, &mut c, plan);
    // Whatever happened, stop the workers.
    ctl.set_phase(STOP, u32::MAX);
    for h in handles {
        let _ = h.join();
    }
    c.drain_now();
    c.emit(true);
    let log_error = c.log_error.take();
    let mut out = result?;
    // Leftovers counted at STOP belong to teardown.
    let stop = c.take(STOP, u32::MAX);
    out.teardown.merge(&stop);
    for (_, b) in std::mem::take(&mut c.buckets) {
        out.teardown.merge(&b);
    }
    let mut total = out.setup.clone();
    for s in &out.steps {
        total.merge(&s.stats);
    }
    total.merge(&out.teardown);
    out.total = total;
    drop(c);
    if let Some(f) = file.as_mut() {
        f.flush().map_err(|e| format!("interval log: {e}"))?;
    }
    if let Some(e) = log_error {
        return Err(e);
    }
    Ok(out)
}

fn drive(
    set: &Settings,
    ctl: &Control,
    c: &mut Collector<'_, '_>,
    plan: &mut Plan<'_>,
) -> Result<Outcome, String> {
    let mut switches = 0;
    // Set-up.
    let t0 = Instant::now();
    let want = set.pes + set.pus;
    let deadline = t0 + set.setup_timeout;
    while ctl.setup_done.load(Ordering::Acquire) < want && Instant::now() < deadline {
        c.pump_until(Instant::now() + Duration::from_millis(5));
    }
    let setup_complete = ctl.setup_done.load(Ordering::Acquire) >= want;
    if !setup_complete && !set.quiet {
        eprintln!(
            "loadgen: set-up incomplete after {:.0} s: {}/{} PEs and PUs done",
            set.setup_timeout.as_secs_f64(),
            ctl.setup_done.load(Ordering::Acquire),
            want
        );
    }
    let mut steps = Vec::new();
    let mut step = 0u32;
    let mut setup = None;
    let mut setup_secs = 0.0;
    while let Some((res, reg)) = plan(step, steps.last()) {
        ctl.set_rates(res, reg);
        let cpu0 = set.registrar_pid.and_then(|p| cpu::cpu_ns(&p.to_string()));
        let me0 = cpu::cpu_ns("self");
        let start = Instant::now();
        c.switch(RUN, step, &mut switches)?;
        if setup.is_none() {
            setup_secs = start.duration_since(t0).as_secs_f64();
            setup = Some(c.take(SETUP, 0));
        }
        let start = Instant::now();
        c.pump_until(start + set.duration);
        c.switch(PAUSE, step, &mut switches)?;
        let secs = start.elapsed().as_secs_f64();
        let cpu1 = set.registrar_pid.and_then(|p| cpu::cpu_ns(&p.to_string()));
        let me1 = cpu::cpu_ns("self");
        // Answers to the step's last requests still count for it.
        c.pump_until(Instant::now() + set.timeout.min(Duration::from_millis(300)));
        c.switch(PAUSE, step | 0x8000_0000, &mut switches)?;
        let mut stats = c.take(RUN, step);
        stats.merge(&c.take(PAUSE, step));
        let rate = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if secs > 0.0 => Some(b.saturating_sub(a) as f64 / 1e9 / secs),
            _ => None,
        };
        steps.push(StepResult {
            step,
            offered_res: res,
            offered_reg: reg,
            secs,
            stats,
            registrar_cpu: rate(cpu0, cpu1),
            loadgen_cpu: rate(me0, me1),
        });
        step += 1;
    }
    let setup = match setup {
        Some(s) => s,
        None => {
            setup_secs = t0.elapsed().as_secs_f64();
            c.drain_now();
            c.take(SETUP, 0)
        }
    };
    // Teardown.
    let t1 = Instant::now();
    c.switch(TEARDOWN, 0, &mut switches)?;
    let deadline = t1 + set.drain;
    while ctl.drained.load(Ordering::Acquire) < set.threads && Instant::now() < deadline {
        c.pump_until(Instant::now() + Duration::from_millis(5));
    }
    c.switch(STOP, u32::MAX, &mut switches)?;
    let teardown_secs = t1.elapsed().as_secs_f64();
    let mut teardown = c.take(TEARDOWN, 0);
    for (_, b) in std::mem::take(&mut c.buckets)
        .into_iter()
        .filter(|((p, _), _)| *p == PAUSE)
    {
        teardown.merge(&b);
    }
    Ok(Outcome {
        setup,
        setup_secs,
        setup_complete,
        steps,
        teardown,
        teardown_secs,
        total: Stats::new(),
    })
}

/// A plan of one step with the settings' rates (the `run` command).
pub fn single_step(set: &Settings) -> impl FnMut(u32, Option<&StepResult>) -> Option<(f64, f64)> {
    let (res, reg) = (set.rate.unwrap_or(0.0), set.reg_rate.unwrap_or(0.0));
    move |step, _| (step == 0).then_some((res, reg))
}
