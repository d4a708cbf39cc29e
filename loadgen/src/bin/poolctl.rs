//! `poolctl`: a small command-line client for people (RSPLIB's `cspmonitor`
//! and `rserpoolctrl` play this role there).
//!
//! Subcommands live in `rserpool_loadgen::poolctl`; this file only parses the
//! command line and dispatches. Exit status: 0 on success, 1 when an input
//! failed (after all inputs were processed) or an operation failed (unknown
//! pool, no registrar reachable, registration refused), 2 for usage errors.
//! Failures are one line on standard error, `poolctl: ...`.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rserpool_loadgen::poolctl::client::CmdError;
use rserpool_loadgen::poolctl::decode::{self, DecodeArgs};
use rserpool_loadgen::poolctl::register::{self, RegisterArgs};
use rserpool_loadgen::poolctl::resolve::{self, ResolveArgs};

#[derive(Debug, Parser)]
#[command(name = "poolctl", version, about = "RSerPool command-line tool", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode ASAP or ENRP messages given in hex and print them as JSON,
    /// one object per line.
    Decode(DecodeArgs),
    /// Resolve a pool handle through a registrar and list its pool
    /// elements (a table, or JSON with --json).
    Resolve(ResolveArgs),
    /// Register a pool element through a registrar and keep it registered
    /// until Ctrl-C / SIGTERM (or --for SECONDS), then deregister.
    Register(RegisterArgs),
}

fn finish(result: Result<(), CmdError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CmdError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e @ CmdError::Usage(_)) => {
            eprintln!("poolctl: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("poolctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Resolve(args) => return finish(resolve::run(args, &mut io::stdout().lock())),
        Command::Register(args) => {
            let stop = match register::stop_on_signals() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("poolctl: cannot catch signals: {e}");
                    return ExitCode::FAILURE;
                }
            };
            return finish(register::run(args, &stop, &mut io::stdout().lock()));
        }
        Command::Decode(args) => decode::run(
            args,
            io::stdin().lock(),
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        // A closed pipe (`poolctl decode | head`) is not worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("poolctl: {e}");
            ExitCode::FAILURE
        }
    }
}
