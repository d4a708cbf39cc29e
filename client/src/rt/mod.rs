//! The blocking runtime: threads, kernel SCTP through rserpool-net, TCP
//! through std. Each [`PoolElement`] and [`PoolUser`] runs its sans-IO core
//! on a background thread that owns the registrar connection; helper
//! threads connect, read sockets and hear announces.

mod conn;
mod driver;
mod element;
mod error;
mod user;

pub use element::{PeMessage, PeOptions, PeSession, PeStatus, PoolElement};
pub use error::Error;
pub use user::{PoolUser, Session, SessionEvent, SessionStatus};
