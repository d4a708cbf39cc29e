//! The subcommands of `poolctl`, each a clap `Args` struct and a `run`
//! function, so the binary (`src/bin/poolctl.rs`) stays a thin dispatcher and
//! the commands can be tested without spawning it.

pub mod decode;
