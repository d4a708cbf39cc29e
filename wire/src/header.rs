//! The common message header (RFC 5354 §4), the checked message view, and
//! framing of messages on a byte stream (TCP).

use zerocopy::network_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, ErrorKind};
use crate::tlv::pad4;

/// The 4-byte header of every ASAP and ENRP message.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CommonHeader {
    /// Message type.
    pub ty: u8,
    /// Message flags.
    pub flags: u8,
    /// Message length: header plus value, without the final padding.
    pub len: U16,
}

/// The two server identifiers that start every ENRP message body.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub(crate) struct EnrpIds {
    pub(crate) sender: U32,
    pub(crate) receiver: U32,
}

/// A message whose header has been checked against the received bytes.
///
/// Contract (as smoltcp's packet views): once [`MessageView::new_checked`]
/// accepted the bytes, no accessor can panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageView<'a> {
    ty: u8,
    flags: u8,
    body: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> MessageView<'a> {
    /// Checks one received message (an SCTP user message, a UDP datagram, or
    /// a frame cut from a TCP stream by [`frame_len`]).
    ///
    /// The length field may or may not count the final padding (RFC 5354 vs
    /// RSPLIB); the bytes after it must be 0-3 zero pad bytes.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Error> {
        let Ok((hdr, _)) = CommonHeader::ref_from_prefix(bytes) else {
            return Err(Error::new(ErrorKind::Truncated, "message header", bytes));
        };
        let len = usize::from(hdr.len.get());
        if len < 4 || bytes.len() > pad4(len) {
            return Err(Error::new(ErrorKind::BadLength, "message length", bytes));
        }
        let Some(msg) = bytes.get(..len) else {
            return Err(Error::new(ErrorKind::Truncated, "message", bytes));
        };
        if bytes[len..].iter().any(|&b| b != 0) {
            return Err(Error::new(ErrorKind::BadPadding, "message", bytes));
        }
        Ok(Self {
            ty: hdr.ty,
            flags: hdr.flags,
            body: &msg[4..],
            bytes,
        })
    }

    /// Message type.
    pub const fn ty(&self) -> u8 {
        self.ty
    }

    /// Message flags.
    pub const fn flags(&self) -> u8 {
        self.flags
    }

    /// The value after the header, up to the length field (may include the
    /// final pad when the sender counted it).
    pub const fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The whole message as received, padding included.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The size of the first message in a byte stream, padding included.
///
/// `Ok(None)` until the 4-byte header has arrived; then the number of bytes
/// the frame occupies (`pad4(length)`), which may be more than has arrived
/// yet. A length below 4 can never be framed: the connection must be closed.
///
/// No RFC defines ASAP over TCP framing; this is the natural one (every
/// message is sent padded to 4 bytes), and it reads RSPLIB's form too.
pub fn frame_len(stream: &[u8]) -> Result<Option<usize>, Error> {
    let Ok((hdr, _)) = CommonHeader::ref_from_prefix(stream) else {
        return Ok(None);
    };
    let len = usize::from(hdr.len.get());
    if len < 4 {
        return Err(Error::new(
            ErrorKind::BadLength,
            "message length",
            stream.get(..4).unwrap_or(stream),
        ));
    }
    Ok(Some(pad4(len)))
}

/// The Pool Handle of an ASAP message, if its first parameter is one, without
/// parsing the rest: a cheap look-ahead for routing and prefetching a batch
/// before the messages are parsed one by one. Registration, Deregistration,
/// Handle Resolution, Endpoint Keep Alive Ack and Endpoint Unreachable all
/// start with it (RFC 5352 §2.2; an Endpoint Keep Alive has its 4-byte Server
/// Identifier field first, so this gives `None` for it). A hint only: the message
/// may still turn out malformed when parsed.
pub fn peek_pool_handle(msg: &[u8]) -> Option<&[u8]> {
    let ty = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    let len = usize::from(u16::from_be_bytes([*msg.get(6)?, *msg.get(7)?]));
    if ty != crate::codes::param_type::POOL_HANDLE || len < 4 {
        return None;
    }
    msg.get(8..4 + len)
}

/// The PE id of an ASAP message about one PE, read from the parameter that
/// follows the pool handle (see [`peek_pool_handle`]): the id inside a Pool
/// Element (Registration) or a PE Identifier (Deregistration, Endpoint Keep
/// Alive Ack, Endpoint Unreachable). `None` for any other message, and for
/// PE id 0 (never valid). A hint only, as [`peek_pool_handle`].
pub fn peek_pe_id(msg: &[u8]) -> Option<u32> {
    use crate::codes::param_type::{PE_IDENTIFIER, POOL_ELEMENT};
    let handle = peek_pool_handle(msg)?;
    let at = 4 + ((handle.len() + 4 + 3) & !3);
    let p = msg.get(at..at + 8)?;
    let ty = u16::from_be_bytes([p[0], p[1]]);
    let len = u16::from_be_bytes([p[2], p[3]]);
    if !(ty == POOL_ELEMENT || ty == PE_IDENTIFIER) || len < 8 {
        return None;
    }
    let id = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    (id != 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_length_conventions_are_accepted() {
        let rfc = [
            5, 0, 0, 19, 0, 9, 0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0,
        ];
        let mut rsplib = rfc;
        rsplib[3] = 20;
        assert_eq!(MessageView::new_checked(&rfc).unwrap().body().len(), 15);
        assert_eq!(MessageView::new_checked(&rsplib).unwrap().body().len(), 16);
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let kind = |b: &[u8]| MessageView::new_checked(b).unwrap_err().kind();
        assert_eq!(kind(&[5, 0]), ErrorKind::Truncated);
        assert_eq!(kind(&[5, 0, 0, 3]), ErrorKind::BadLength);
        assert_eq!(kind(&[5, 0, 0, 8, 0, 0]), ErrorKind::Truncated);
        assert_eq!(kind(&[5, 0, 0, 4, 0, 0, 0, 0]), ErrorKind::BadLength);
        assert_eq!(kind(&[5, 0, 0, 5, 1, 0, 9, 0]), ErrorKind::BadPadding);
    }

    #[test]
    fn framing_reads_header_then_padded_length() {
        assert_eq!(frame_len(&[5, 0]).unwrap(), None);
        assert_eq!(frame_len(&[5, 0, 0, 19]).unwrap(), Some(20));
        assert_eq!(frame_len(&[5, 0, 0, 20, 1]).unwrap(), Some(20));
        assert!(frame_len(&[5, 0, 0, 2]).is_err());
    }

    #[test]
    fn the_pool_handle_is_peeked_from_the_first_parameter() {
        // Handle Resolution (type 5) for pool "ab", padded.
        let hr = [5, 0, 0, 12, 0, 9, 0, 6, b'a', b'b', 0, 0];
        assert_eq!(peek_pool_handle(&hr), Some(&b"ab"[..]));
        // An empty handle is still a handle (the parser refuses it).
        assert_eq!(peek_pool_handle(&[5, 0, 0, 8, 0, 9, 0, 4]), Some(&b""[..]));
        // Another first parameter, a short length, truncation: none.
        assert_eq!(
            peek_pool_handle(&[5, 0, 0, 12, 0, 10, 0, 6, 1, 2, 0, 0]),
            None
        );
        assert_eq!(peek_pool_handle(&[5, 0, 0, 8, 0, 9, 0, 3]), None);
        assert_eq!(peek_pool_handle(&hr[..9]), None);
        assert_eq!(peek_pool_handle(&hr[..4]), None);
        assert_eq!(peek_pool_handle(&[]), None);
    }

    #[test]
    fn the_pe_id_is_peeked_from_the_parameter_after_the_handle() {
        // Deregistration (type 2) of PE 0x01020304 from pool "abc" (padded).
        let d = [
            5, 2, 0, 20, 0, 9, 0, 7, b'a', b'b', b'c', 0, 0, 14, 0, 8, 1, 2, 3, 4,
        ];
        assert_eq!(peek_pe_id(&d), Some(0x0102_0304));
        // PE id 0, another parameter, a short one, truncation: none.
        let mut zero = d;
        zero[16..20].fill(0);
        assert_eq!(peek_pe_id(&zero), None);
        let mut other = d;
        other[13] = 15;
        assert_eq!(peek_pe_id(&other), None);
        let mut short = d;
        short[15] = 7;
        assert_eq!(peek_pe_id(&short), None);
        assert_eq!(peek_pe_id(&d[..19]), None);
        // A handle resolution names no PE.
        assert_eq!(
            peek_pe_id(&[5, 0, 0, 12, 0, 9, 0, 6, b'a', b'b', 0, 0]),
            None
        );
    }
}
