//! Framing on TCP, our extension for hosts without SCTP.
//!
//! * **ASAP to a registrar over TCP**: each ASAP message as it is, padded to
//!   a multiple of 4 bytes (the codec always pads); the receiver cuts the
//!   stream with [`rserpool_wire::frame_len`] (header length rounded up to
//!   4). This is what our registrar's TCP port speaks.
//! * **Sessions (PU <-> PE) over TCP**: the control channel must share the
//!   connection with the data, so every message is framed with an 8-byte
//!   header that carries what SCTP would carry:
//!
//!   ```text
//!    0                   1                   2                   3
//!   +---------------------------------------------------------------+
//!   |                 PPID (u32, network byte order)                |
//!   +---------------------------------------------------------------+
//!   |        payload length in bytes (u32, network byte order)      |
//!   +---------------------------------------------------------------+
//!   |                  payload (length bytes, no pad)               |
//!   ```
//!
//!   PPID 11 marks an ASAP control message (Cookie, Cookie Echo, Business
//!   Card); any other PPID is user data, delivered with that PPID. Payloads
//!   are at most [`MAX_FRAME`] bytes; a larger length closes the connection.

use rserpool_wire::frame_len;

/// Largest session payload accepted on TCP (16 MiB).
pub const MAX_FRAME: usize = 16 << 20;

/// Bytes of the session frame header.
pub const FRAME_HEADER: usize = 8;

/// Frames one session message for TCP.
pub fn frame(ppid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(FRAME_HEADER + payload.len());
    v.extend_from_slice(&ppid.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Why a stream cannot be framed (the connection must be closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad frame on a TCP stream: {0}")]
pub struct FrameError(pub &'static str);

/// Cuts messages out of a TCP byte stream.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    session: bool,
}

impl Deframer {
    /// For a session connection (PPID-framed).
    pub fn session() -> Self {
        Self {
            buf: Vec::new(),
            session: true,
        }
    }

    /// For a registrar connection (ASAP messages back to back).
    pub fn asap() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message and its PPID (11 for ASAP streams).
    pub fn next_message(&mut self) -> Result<Option<(u32, Vec<u8>)>, FrameError> {
        if self.session {
            let Some(h) = self.buf.get(..FRAME_HEADER) else {
                return Ok(None);
            };
            let ppid = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if len > MAX_FRAME {
                return Err(FrameError("payload too long"));
            }
            if self.buf.len() < FRAME_HEADER + len {
                return Ok(None);
            }
            let payload = self.buf[FRAME_HEADER..FRAME_HEADER + len].to_vec();
            self.buf.drain(..FRAME_HEADER + len);
            Ok(Some((ppid, payload)))
        } else {
            let n = match frame_len(&self.buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(None),
                Err(_) => return Err(FrameError("ASAP length below 4")),
            };
            if self.buf.len() < n {
                return Ok(None);
            }
            let m: Vec<u8> = self.buf.drain(..n).collect();
            Ok(Some((crate::action::ASAP_PPID, m)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_frames_split_anywhere() {
        let mut s = frame(0, b"hello");
        s.extend(frame(11, &[1, 2, 3, 4]));
        s.extend(frame(33, b""));
        for cut in 0..s.len() {
            let mut d = Deframer::session();
            let mut got = Vec::new();
            d.push(&s[..cut]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            d.push(&s[cut..]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            assert_eq!(
                got,
                vec![(0, b"hello".to_vec()), (11, vec![1, 2, 3, 4]), (33, vec![])]
            );
        }
    }

    #[test]
    fn asap_stream_is_cut_by_the_header_length() {
        // Handle resolution for "abc": length 11 -> 12 on the wire.
        let m = [5, 0, 0, 11, 0, 9, 0, 7, b'a', b'b', b'c', 0];
        let mut d = Deframer::asap();
        d.push(&m);
        d.push(&m[..5]);
        assert_eq!(d.next_message().unwrap(), Some((11, m.to_vec())));
        assert_eq!(d.next_message().unwrap(), None);
        let mut bad = Deframer::asap();
        bad.push(&[5, 0, 0, 2]);
        assert!(bad.next_message().is_err());
        let mut huge = Deframer::session();
        huge.push(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(huge.next_message().is_err());
    }
}
