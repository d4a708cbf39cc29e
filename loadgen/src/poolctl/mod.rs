//! The subcommands of `poolctl`, each a clap `Args` struct and a `run`
//! function, so the binary (`src/bin/poolctl.rs`) stays a thin dispatcher and
//! the commands can be tested without spawning it.
//!
//! `resolve` and `register` are thin users of `rserpool-client` (its pool
//! user and pool element); [`client`] holds what they share.

pub mod client;
pub mod decode;
pub mod register;
pub mod resolve;
