//! `registrar`: the RSerPool registrar. Run with no options for sensible
//! defaults (ASAP on port 3863 over SCTP where the kernel has it and TCP,
//! announces on 239.0.0.50:3863). `registrar --help` lists the options; the
//! `rspregistrar` spellings are accepted too.

use std::process::ExitCode;

use rserpool_registrar::Registrar;
use rserpool_registrar::config::{ConfigError, Settings};

/// mimalloc instead of glibc's malloc: in the shard benchmarks at 10^6 PEs
/// it made registrations 16-45 % faster and most other operations 8-33 %
/// (docs/benchmarks.md, "Allocator"), for 8-12 % more resident memory
/// (transparent huge pages; `MIMALLOC_ALLOW_THP=0` trades them back, see
/// tuning/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(s: &Settings) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("RSERPOOL_LOG").unwrap_or_else(|_| EnvFilter::new(&s.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &s.log_file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .init();
        }
        None => {
            use std::io::IsTerminal;
            builder
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let settings = match Settings::from_args(std::env::args_os()) {
        Ok(s) => s,
        Err(ConfigError::Clap(e)) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(ConfigError::Invalid(msg)) => {
            eprintln!("registrar: error: {msg}");
            return ExitCode::from(2);
        }
    };
    if let Err(msg) = init_logging(&settings) {
        eprintln!("registrar: error: {msg}");
        return ExitCode::from(1);
    }
    if let Some(pid) = &settings.pid_file {
        if let Err(e) = std::fs::write(pid, format!("{}\n", std::process::id())) {
            eprintln!(
                "registrar: error: cannot write pid file {}: {e}",
                pid.display()
            );
            return ExitCode::from(1);
        }
    }
    let signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("registrar: error: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let registrar = match Registrar::start(settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("registrar: error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut signals = signals;
    if let Some(sig) = signals.forever().next() {
        if !registrar.failed() {
            tracing::info!(signal = sig, "shutting down");
        }
    }
    registrar.shutdown();
    if registrar.join() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
