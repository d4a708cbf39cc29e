//! The blocking API's error type.

use std::time::Duration;

use rserpool_wire::CauseCode;

use crate::channel::RequestError;
use crate::user::ResolveError;

/// Why a blocking call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pool handle must be 1 to 32 bytes.
    #[error("invalid pool handle (1 to 32 bytes)")]
    InvalidPoolHandle,
    /// A setting or argument does not work.
    #[error("{0}")]
    Config(String),
    /// The operating system refused something.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The registrar refused the registration.
    #[error("registration refused (cause 0x{:04x}: {})", .0 .0, .0.name())]
    Rejected(CauseCode),
    /// No registration within the wait.
    #[error("not registered within {0:?}: {1}")]
    NotRegistered(Duration, String),
    /// A request to the registrar failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No PE could be had.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The session or element was closed (or its background thread ended).
    #[error("closed")]
    Closed,
}
