//! One shard of the RSerPool handlespace as a deterministic, sans-IO state
//! machine: pools, pool elements, every selection policy of RFC 5356 and
//! RSPLIB, keep-alive and lifetime timers, ownership and handlespace
//! checksums (RFC 5353 §3.6).
//!
//! No I/O, no clock, no threads: time is an argument ([`Time`]), outputs are
//! values the caller polls. The registrar runs one [`Shard`] per core; the
//! replication core and the simulation tests drive the same code.
//!
//! A pool lives wholly in one shard, chosen by [`shard_for`]; the messages
//! that cross between cores are the owned types of [`mesh`].
//!
//! The crate has one `unsafe` block: the CPU's prefetch hint (`prefetch`),
//! which reads nothing and cannot fault; everything else is safe code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod checksum;
mod config;
mod dheap;
mod index;
pub mod mesh;
mod owners;
pub mod pipeline;
pub mod policy;
mod prefetch;
mod route;
mod select;
mod shard;
mod slab;
mod store;
mod time;
mod timer;
mod weights;

pub use config::{Config, LifeUnit};
pub use pipeline::{Prefetch, Target};
pub use policy::Compat;
pub use route::shard_for;
pub use shard::{Association, Event, RegistrationOutcome, Shard, Stats, TableCursor, Transmit};
pub use time::Time;

/// The padded length of the parameter at the start of `bytes` (0 if
/// unreadable): stored parameters are always complete, so this is their size.
fn tlv_len(bytes: &[u8]) -> usize {
    match bytes.get(2..4) {
        Some(&[a, b]) => (usize::from(u16::from_be_bytes([a, b])) + 3) & !3,
        _ => 0,
    }
}
