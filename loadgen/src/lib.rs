//! The load generator (`loadgen`) and the `poolctl` command-line tool for
//! RSerPool registrars.
//!
//! * [`json`] renders any decoded ASAP/ENRP message as a `serde_json::Value`;
//! * [`hex`] reads hex as people paste it;
//! * [`load`] is the load generator behind the `loadgen` binary;
//! * [`poolctl`] holds the subcommands of the `poolctl` binary.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod hex;
pub mod json;
pub mod load;
pub mod poolctl;
