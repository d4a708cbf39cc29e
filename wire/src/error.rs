//! Decode and encode errors.
//!
//! A decode [`Error`] names the field that failed, says what was wrong with it,
//! remembers where the offending bytes are (so that an error report can echo
//! them, RFC 5354 §3.12 causes 0x1-0x3) and maps to exactly one Operation
//! Error cause via [`Error::cause`]. It is `Copy` and has no lifetime: it
//! records the offending bytes by address, and [`Error::offending`] finds them
//! again in the caller's buffer.

use core::fmt;

use crate::codes::{CauseCode, UnrecognizedAction};

/// What was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes end before the field does.
    Truncated,
    /// A length field is impossible: below its minimum, past its container,
    /// or not the fixed size of the parameter.
    BadLength,
    /// Padding is longer than 3 bytes or not zero.
    BadPadding,
    /// A mandatory parameter is absent.
    Missing,
    /// A known parameter where it does not belong (wrong message, wrong
    /// position, or repeated).
    Misplaced,
    /// A value is longer than allowed (e.g. a pool handle over 32 bytes).
    TooLong,
    /// A value is out of range (e.g. an empty pool handle, a transport with the
    /// wrong number of addresses).
    InvalidValue,
    /// An unknown parameter whose action bits say stop (and maybe report).
    UnrecognizedParameter(UnrecognizedAction),
    /// An unknown message type; `report` follows its action bits.
    UnrecognizedMessage {
        /// Whether the sender must get an Unrecognized Message error.
        report: bool,
    },
}

/// A decoding failure. See the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    field: &'static str,
    addr: usize,
    len: usize,
}

impl Error {
    /// An error about `field`, whose offending bytes are `at`.
    ///
    /// Cold and out of line: decoders call it only on their error paths, so
    /// the success path stays short and branches are laid out for it.
    #[cold]
    #[inline(never)]
    pub(crate) fn new(kind: ErrorKind, field: &'static str, at: &[u8]) -> Self {
        Self {
            kind,
            field,
            addr: at.as_ptr() as usize,
            len: at.len(),
        }
    }

    /// What was wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The field (parameter or message part) that failed, e.g. `"Pool Handle"`.
    pub const fn field(&self) -> &'static str {
        self.field
    }

    /// The Operation Error cause a server sends back for this error, or `None`
    /// when the RFC says to discard the message silently.
    pub const fn cause(&self) -> Option<CauseCode> {
        match self.kind {
            ErrorKind::UnrecognizedParameter(UnrecognizedAction::Stop) => None,
            ErrorKind::UnrecognizedParameter(_) => Some(CauseCode::UNRECOGNIZED_PARAMETER),
            ErrorKind::UnrecognizedMessage { report: true } => {
                Some(CauseCode::UNRECOGNIZED_MESSAGE)
            }
            ErrorKind::UnrecognizedMessage { report: false } => None,
            _ => Some(CauseCode::INVALID_VALUES),
        }
    }

    /// The offending bytes inside `message` (the buffer that was decoded): the
    /// whole parameter for parameter errors, the whole message for message
    /// errors. This is the cause-specific information of the error report.
    /// `None` if `message` is not the buffer the error came from.
    pub fn offending<'m>(&self, message: &'m [u8]) -> Option<&'m [u8]> {
        let start = self.addr.checked_sub(message.as_ptr() as usize)?;
        message.get(start..start.checked_add(self.len)?)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("field", &self.field)
            .field("len", &self.len)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.field;
        match self.kind {
            ErrorKind::Truncated => write!(f, "{what}: truncated"),
            ErrorKind::BadLength => write!(f, "{what}: bad length"),
            ErrorKind::BadPadding => write!(f, "{what}: bad padding"),
            ErrorKind::Missing => write!(f, "{what}: missing mandatory parameter"),
            ErrorKind::Misplaced => write!(f, "{what}: parameter not allowed here"),
            ErrorKind::TooLong => write!(f, "{what}: too long"),
            ErrorKind::InvalidValue => write!(f, "{what}: invalid value"),
            ErrorKind::UnrecognizedParameter(a) => {
                write!(f, "{what}: unrecognized parameter (action {a:?})")
            }
            ErrorKind::UnrecognizedMessage { report } => {
                write!(f, "{what}: unrecognized message type (report: {report})")
            }
        }
    }
}

impl std::error::Error for Error {}

/// An encoding failure, reported by [`crate::Writer::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is too small; `needed` bytes would have been written.
    BufferTooSmall {
        /// Total bytes the encoding needs.
        needed: usize,
    },
    /// A parameter or message would exceed the 16-bit length field.
    TooLarge {
        /// The field that overflowed.
        field: &'static str,
    },
    /// A value cannot be put on the wire (e.g. a pool handle over 32 bytes,
    /// a transport without the addresses its type needs).
    InvalidValue {
        /// The offending field.
        field: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::TooLarge { field } => write!(f, "{field}: longer than a 16-bit length allows"),
            Self::InvalidValue { field } => write!(f, "{field}: value cannot be encoded"),
        }
    }
}

impl std::error::Error for EncodeError {}
