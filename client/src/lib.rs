//! The client side of RSerPool (draft).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
mod cache;
mod channel;
pub mod config;
pub mod control;
pub mod element;
pub mod framing;
mod rng;
pub mod rt;
pub mod time;
pub mod types;
pub mod user;

pub use action::{ASAP_PPID, Action};
pub use channel::RequestError;
pub use config::{LifeUnit, PeSpec, RegistrarConfig, UserConfig};
pub use control::ControlMessage;
pub use element::{PeEvent, PeState, PoolElementCore};
pub use rt::{
    Error, PeMessage, PeOptions, PeSession, PeStatus, PoolElement, PoolUser, Session, SessionEvent,
    SessionStatus,
};
pub use time::Time;
pub use types::*;
pub use user::{PoolUserCore, PuEvent, ResolveError, Selection};
