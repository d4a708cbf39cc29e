//! Zero-copy codec for ASAP (RFC 5352) and ENRP (RFC 5353) messages with the
//! parameters of RFC 5354 and the policies of RFC 5356, plus the extensions
//! RSPLIB puts on the wire.
//!
//! This crate does no I/O, reads no clock and uses no async runtime.
//!
//! # Decoding
//!
//! [`AsapMessage::parse`] and [`EnrpMessage::parse`] take one received
//! message (an SCTP user message, a UDP datagram, or a frame cut from a TCP
//! stream with [`frame_len`]) and return a typed value that borrows from the
//! bytes: nothing is allocated. Lists inside a message (PEs, addresses, causes,
//! pool entries, servers) are [`Seq`]s over the received bytes.
//!
//! **Contract:** a message is validated completely before `parse` returns it
//! (every nested parameter, every length, every padding byte). Once accepted,
//! no field access or iteration can panic or fail.
//!
//! Errors are typed ([`Error`], [`ErrorKind`]), name the field, and map to the
//! Operation Error cause a server sends back ([`Error::cause`]), with the
//! offending bytes at hand ([`Error::offending`]). Unknown parameters follow
//! their two action bits; those marked "skip and report" are collected in
//! [`Reports`] by [`AsapMessage::parse_reporting`].
//!
//! Both length conventions are accepted: RFC 5354 lengths exclude the pad
//! after the last nested parameter, RSPLIB's include it.
//!
//! # Encoding
//!
//! Everything decodable implements [`Encode`]: `emit` into a [`Writer`] over a
//! caller-owned buffer, no allocation, length fields filled in by the writer.
//! [`Encode::encoded_len`] runs the same code in counting mode, so it is exact.
//! The output is the RFC form (lengths without the final pad, pad bytes always
//! sent), which RSPLIB and Wireshark both decode. Hot paths that copy
//! pre-encoded parameters (a registrar's stored Pool Elements) use
//! [`Writer::put_param_bytes`].
//!
//! # Safety
//!
//! `#![forbid(unsafe_code)]`: fixed headers are read through zerocopy's
//! derived, checked conversions.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod asap;
pub mod codes;
pub mod enrp;
mod error;
mod header;
mod param;
mod params;
mod seq;
mod time;
mod tlv;
mod writer;

pub use asap::AsapMessage;
pub use codes::{AsapType, CauseCode, EnrpType, UnrecognizedAction, consts, flags, param_type};
pub use enrp::EnrpMessage;
pub use error::{EncodeError, Error, ErrorKind};
pub use header::{CommonHeader, MessageView, frame_len, peek_pe_id, peek_pool_handle};
pub use param::Param;
pub use params::element::{PoolElement, REGISTRATION_LIFE_INFINITE, ServerInfo};
pub use params::operation_error::{Cause, CauseInfo, OperationError};
pub use params::policy::{Policy, PolicyParam, PolicyType, PolicyValues};
pub use params::simple::{Cookie, HandleResolutionOption, PeChecksum, PeId, PoolHandle, ServerId};
pub use params::transport::{Transport, TransportKind, TransportUse};
pub use seq::{Seq, SeqIter, WireItem};
pub use time::Time;
pub use tlv::{MAX_REPORTS, Reports, Tlv, TlvHeader, Tlvs, pad4};
pub use writer::{APPEND_GUESS, Encode, Mark, Writer};

/// The protocol a message belongs to (decided by SCTP PPID or port, never by
/// the message itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// ASAP (PPID 11, port 3863).
    Asap,
    /// ENRP (PPID 12, port 9901).
    Enrp,
}

/// A message of either protocol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Message<'a> {
    /// An ASAP message.
    Asap(AsapMessage<'a>),
    /// An ENRP message.
    Enrp(EnrpMessage<'a>),
}

impl<'a> Message<'a> {
    /// Decodes a message of the given protocol.
    pub fn parse(protocol: Protocol, bytes: &'a [u8]) -> Result<Self, Error> {
        match protocol {
            Protocol::Asap => AsapMessage::parse(bytes).map(Self::Asap),
            Protocol::Enrp => EnrpMessage::parse(bytes).map(Self::Enrp),
        }
    }
}

impl Encode for Message<'_> {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            Self::Asap(m) => m.emit(w),
            Self::Enrp(m) => m.emit(w),
        }
    }
}
