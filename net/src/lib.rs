//! Sockets for RSerPool, shared by the registrar and the client library.
//!
//! * [`sctp`]: kernel SCTP through libc. One-to-one (`SOCK_STREAM`) sockets,
//!   which behave like TCP connections but keep message boundaries; every
//!   message carries a payload protocol identifier (PPID: 11 for ASAP, 12 for
//!   ENRP) that is set on send and checked on receive; receives and sends are
//!   batched (`recvmmsg`/`sendmmsg`) so that many messages cost one system
//!   call.
//! * [`mcast`]: UDP multicast sockets for ASAP Server Announces and ENRP
//!   presences.
//!
//! This is the only crate of the workspace with `unsafe` code: the libc calls
//! and the kernel structures they take. Every block says why it is sound.

pub mod mcast;
pub mod sctp;
mod sys;
