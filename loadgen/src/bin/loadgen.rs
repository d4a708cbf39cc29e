//! `loadgen`: load generator for RSerPool registrars. See `loadgen --help`
//! and the `rserpool_loadgen::load` module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rserpool_loadgen::load::config::{RunOptions, Settings, parse_cores};
use rserpool_loadgen::load::echo::{EchoServer, parse_listen};
use rserpool_loadgen::load::stats::Kind;
use rserpool_loadgen::load::svg::{Series, plot};
use rserpool_loadgen::load::sweep::{Stepper, SweepKind, judge, parse_objectives};
use rserpool_loadgen::load::{Outcome, StepResult, execute, single_step};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for RSerPool registrars: emulated PEs and PUs, checked answers, HdrHistogram latencies"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Register PEs, load the registrar for one window, deregister.
    Run(RunArgs),
    /// Step the offered rate until a latency objective fails.
    Sweep(SweepArgs),
    /// The floor: a trivial server that sends every ASAP frame back.
    Echo(EchoArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    opts: RunOptions,
    /// Then run the same load against this `loadgen echo` server (the
    /// floor, `[tcp:|sctp:]ADDR:PORT`; without a prefix, over the
    /// registrar's transport) and print the registrar's figures as ratios
    /// to it.
    #[arg(long, value_name = "[tcp:|sctp:]ADDR:PORT")]
    floor: Option<String>,
}

#[derive(clap::Args, Debug)]
struct SweepArgs {
    #[command(flatten)]
    opts: RunOptions,
    /// Latency objectives the answered requests must meet, e.g. p99=1ms
    /// (comma-separated).
    #[arg(long, default_value = "p99=1ms")]
    objective: String,
    /// What to step: resolution (default) or registration.
    #[arg(
        long,
        default_value = "resolution",
        value_name = "resolution|registration"
    )]
    sweep: String,
    /// First offered rate per second.
    #[arg(long, default_value_t = 1000.0)]
    start_rate: f64,
    /// Add this much per step (default: multiply by --step-factor).
    #[arg(long)]
    step_rate: Option<f64>,
    /// Multiply by this per step when --step-rate is not given.
    #[arg(long, default_value_t = 1.5)]
    step_factor: f64,
    /// Highest offered rate tried.
    #[arg(long, default_value_t = 1_000_000.0)]
    max_rate: f64,
    /// Write the plot of latency percentiles against offered load here.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug)]
struct EchoArgs {
    /// Where to listen, `[tcp:|sctp:]ADDR:PORT` (port 0: any free one;
    /// the first line printed names it).
    #[arg(long, value_name = "[tcp:|sctp:]ADDR:PORT")]
    listen: String,
    /// Transport for a listen address without a prefix: tcp (default) or
    /// sctp (one-to-one style associations, PPIDs kept, as the registrar).
    #[arg(long, value_name = "tcp|sctp")]
    transport: Option<String>,
    /// Event-loop threads (default 1).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// CPUs to pin them to ("none" = no pinning).
    #[arg(long, default_value = "none")]
    cores: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Sweep(a) => sweep(a),
        Cmd::Echo(a) => echo(a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn settings(o: RunOptions) -> Result<Settings, String> {
    o.with_scenario()?.resolve()
}

fn write_json(
    set: &Settings,
    out: &Outcome,
    extra: Option<serde_json::Value>,
) -> Result<(), String> {
    if let Some(p) = &set.json {
        let mut v = out.to_json(set);
        if let (Some(serde_json::Value::Object(x)), Some(m)) = (extra, v.as_object_mut()) {
            m.extend(x);
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?;
        std::fs::write(p, text + "\n").map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// Exit status: 0 when every request of the run was answered correctly, 1
/// when some answers were wrong (errors and timeouts are reported, not
/// failed on: they are what a load test is for).
fn status(out: &Outcome) -> ExitCode {
    let wrong: u64 = Kind::ALL.iter().map(|k| out.total.kind(*k).wrong).sum();
    if wrong > 0 {
        eprintln!("loadgen: {wrong} wrong answers");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(a: RunArgs) -> Result<ExitCode, String> {
    let set = settings(a.opts.clone())?;
    let floor_set = match &a.floor {
        Some(f) => {
            let mut o = a.opts.clone();
            // Without a prefix, the floor is reached like the registrar.
            o.transport = Some(set.registrars[0].proto.name().to_string());
            o.registrar = vec![f.clone()];
            o.echo = true;
            o.registrar_pid = None;
            o.json = None;
            o.interval_log = None;
            Some(settings(o)?)
        }
        None => None,
    };
    let mut plan = single_step(&set);
    let out = execute(&set, &mut plan)?;
    print!("{}", out.tables());
    let extra = match floor_set {
        Some(fs) => {
            let mut plan = single_step(&fs);
            let floor = execute(&fs, &mut plan)?;
            println!("\nthe floor (echo at {}):", fs.registrars[0]);
            print!("{}", floor.tables());
            let (text, json) = ratios(&out, &floor);
            println!("\n{text}");
            Some(json)
        }
        None => None,
    };
    write_json(
        &set,
        &out,
        extra.map(|j| serde_json::json!({ "floor_ratios": j })),
    )?;
    Ok(status(&out))
}

/// The registrar's step figures as ratios to the floor's: answered rate,
/// p50 and p99 per message type.
fn ratios(reg: &Outcome, floor: &Outcome) -> (String, serde_json::Value) {
    use rserpool_loadgen::load::stats::Kind;
    let mut text =
        String::from("ratios to the floor (registrar / echo): type, answered rate, p50, p99\n");
    let mut json = serde_json::Map::new();
    let (Some(r), Some(f)) = (reg.steps.first(), floor.steps.first()) else {
        return (text, serde_json::Value::Null);
    };
    for k in Kind::ALL.into_iter().filter(|k| k.answered()) {
        let (rs, fs) = (r.stats.kind(k), f.stats.kind(k));
        if rs.latency.is_empty() || fs.latency.is_empty() {
            continue;
        }
        let q = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let rate = q(r.answered_rate(k), f.answered_rate(k));
        let p50 = q(rs.percentile_ns(0.5) as f64, fs.percentile_ns(0.5) as f64);
        let p99 = q(rs.percentile_ns(0.99) as f64, fs.percentile_ns(0.99) as f64);
        text += &format!("  {:<20} {rate:>6.2} {p50:>6.2} {p99:>6.2}\n", k.name());
        json.insert(
            k.name().into(),
            serde_json::json!({ "rate": rate, "p50": p50, "p99": p99 }),
        );
    }
    (text, serde_json::Value::Object(json))
}

fn sweep(a: SweepArgs) -> Result<ExitCode, String> {
    let objectives = parse_objectives(&a.objective)?;
    let kind = match a.sweep.as_str() {
        "resolution" => SweepKind::Resolution,
        "registration" => SweepKind::Registration,
        s => {
            return Err(format!(
                "unknown --sweep {s:?} (resolution or registration)"
            ));
        }
    };
    for (name, v) in [("--start-rate", a.start_rate), ("--max-rate", a.max_rate)] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(format!("{name} must be a positive number"));
        }
    }
    let ok_step = a.step_rate.is_none_or(|s| s > 0.0 && s.is_finite());
    if !ok_step || a.step_factor.is_nan() || a.step_factor <= 1.0 {
        return Err("--step-rate must be positive and --step-factor more than 1".into());
    }
    let mut set = settings(a.opts)?;
    match kind {
        SweepKind::Resolution => {
            if set.pus == 0 {
                return Err("a resolution sweep needs PUs (--pus)".into());
            }
            set.rate = None;
            set.in_flight = None;
        }
        SweepKind::Registration => {
            if set.pes == 0 {
                return Err("a registration sweep needs PEs (--pes)".into());
            }
            set.reg_rate = None;
            set.reg_in_flight = None;
        }
    }
    let stepper = Stepper {
        start: a.start_rate,
        step: a.step_rate,
        factor: a.step_factor,
        max: a.max_rate,
    };
    let mut verdicts: Vec<Result<(), String>> = Vec::new();
    let mut last_rate = None;
    let quiet = set.quiet;
    let mut plan = |_step: u32, prev: Option<&StepResult>| {
        if let Some(p) = prev {
            let v = judge(p, kind, &objectives);
            if !quiet {
                let rate = match kind {
                    SweepKind::Resolution => p.offered_res,
                    SweepKind::Registration => p.offered_reg,
                };
                match &v {
                    Ok(()) => eprintln!("loadgen: {rate:.0}/s passes"),
                    Err(why) => eprintln!("loadgen: {rate:.0}/s fails: {why}"),
                }
            }
            let failed = v.is_err();
            verdicts.push(v);
            if failed {
                return None;
            }
        }
        let r = stepper.next(last_rate)?;
        last_rate = Some(r);
        Some(match kind {
            SweepKind::Resolution => (r, set.reg_rate.unwrap_or(0.0)),
            SweepKind::Registration => (set.rate.unwrap_or(0.0), r),
        })
    };
    let out = execute(&set, &mut plan)?;
    // The last step is judged here (the plan is not asked again after the
    // maximum rate).
    if verdicts.len() < out.steps.len() {
        if let Some(last) = out.steps.last() {
            verdicts.push(judge(last, kind, &objectives));
        }
    }
    print!("{}", out.tables());
    let rate_of = |s: &StepResult| match kind {
        SweepKind::Resolution => s.offered_res,
        SweepKind::Registration => s.offered_reg,
    };
    let best = out
        .steps
        .iter()
        .zip(&verdicts)
        .take_while(|(_, v)| v.is_ok())
        .map(|(s, _)| rate_of(s))
        .last();
    println!();
    println!("sweep of {} against {}:", kind.kind().name(), a.objective);
    for (s, v) in out.steps.iter().zip(&verdicts) {
        let st = s.stats.kind(kind.kind());
        println!(
            "  offered {:>9.0}/s answered {:>9.0}/s p50 {:>9} p99 {:>9} p99.9 {:>9}  {}",
            rate_of(s),
            s.answered_rate(kind.kind()),
            rserpool_loadgen::load::stats::fmt_ns(st.percentile_ns(0.5)),
            rserpool_loadgen::load::stats::fmt_ns(st.percentile_ns(0.99)),
            rserpool_loadgen::load::stats::fmt_ns(st.percentile_ns(0.999)),
            match v {
                Ok(()) => "pass".to_string(),
                Err(w) => format!("FAIL: {w}"),
            }
        );
    }
    match best {
        Some(b) => println!("highest rate meeting the objective: {b:.0}/s"),
        None => println!("no rate met the objective"),
    }
    if let Some(p) = &a.svg {
        let qs = [
            ("p50", 0.5, "#1f77b4"),
            ("p90", 0.9, "#2ca02c"),
            ("p99", 0.99, "#ff7f0e"),
            ("p99.9", 0.999, "#9467bd"),
        ];
        let series: Vec<Series> = qs
            .iter()
            .map(|(n, q, c)| Series {
                name: (*n).to_string(),
                color: c,
                points: out
                    .steps
                    .iter()
                    .filter(|s| !s.stats.kind(kind.kind()).latency.is_empty())
                    .map(|s| {
                        (
                            rate_of(s),
                            s.stats.kind(kind.kind()).percentile_ns(*q) as f64 / 1000.0,
                        )
                    })
                    .collect(),
            })
            .collect();
        let hl: Vec<(String, f64)> = objectives
            .iter()
            .map(|o| (format!("{} objective", o.label), o.limit_ns as f64 / 1000.0))
            .collect();
        let title = format!(
            "{} latency vs offered load{}",
            kind.kind().name(),
            match best {
                Some(b) => format!(" (max {b:.0}/s at {})", a.objective),
                None => String::new(),
            }
        );
        let svg = plot(&title, "offered rate (per second)", &series, &hl);
        std::fs::write(p, svg).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    let extra = serde_json::json!({ "sweep": {
        "objective": a.objective,
        "kind": kind.kind().name(),
        "highest_passing_rate": best,
        "verdicts": verdicts.iter().map(|v| match v { Ok(()) => "pass".to_string(), Err(w) => w.clone() }).collect::<Vec<_>>(),
    }});
    write_json(&set, &out, Some(extra))?;
    Ok(status(&out))
}

fn echo(a: EchoArgs) -> Result<ExitCode, String> {
    if a.threads == 0 || a.threads > 256 {
        return Err("--threads must be 1..256".into());
    }
    let cores = parse_cores(&a.cores)?;
    let (proto, listen) = parse_listen(&a.listen, a.transport.as_deref())?;
    let srv = EchoServer::start(proto, listen, a.threads, &cores)
        .map_err(|e| format!("cannot listen on {}:{listen}: {e}", proto.name()))?;
    println!("echo server listening on {}", srv.target());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    srv.join();
    Ok(ExitCode::SUCCESS)
}
