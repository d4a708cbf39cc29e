//! Typed parameters (RFC 5354 §3): decoding from [`crate::Tlv`]s and encoding.

pub(crate) mod address;
pub(crate) mod element;
pub(crate) mod operation_error;
pub(crate) mod policy;
pub(crate) mod simple;
pub(crate) mod transport;
