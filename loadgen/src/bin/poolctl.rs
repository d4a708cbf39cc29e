//! `poolctl`: a small command-line client for people (RSPLIB's `cspmonitor`
//! and `rserpoolctrl` play this role there).
//!
//! Subcommands live in `rserpool_loadgen::poolctl`; this file only parses the
//! command line and dispatches. Exit status: 0 on success, 1 when an input
//! failed (after all inputs were processed), 2 for usage errors (clap).

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rserpool_loadgen::poolctl::decode::{self, DecodeArgs};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
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
