//! The encoder: one pass into a caller-owned buffer, no allocation.
//!
//! Length fields are never written by callers: [`Writer::begin_param`] and
//! [`Writer::begin_message`] reserve them and return a `#[must_use]` [`Mark`];
//! [`Writer::end_param`] / [`Writer::end_message`] fill them in and pad to 4.
//!
//! Canonical form (RFC 5354 §2, §4): a length counts header and value but not
//! the pad after the last inner parameter; the pad bytes are always written.
//! RSPLIB and Wireshark both accept this form.
//!
//! A writer over a too-small buffer keeps counting without writing, so the
//! same `emit` code gives the exact [`Encode::encoded_len`] (run it against
//! [`Writer::counting`]) and [`Writer::finish`] reports how much was needed.

use crate::error::EncodeError;
use crate::tlv::pad4;

/// Writes messages and parameters into a byte buffer.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    /// Zero pad bytes at the end of what was written so far: the final pad of
    /// the last parameter, which enclosing lengths do not count.
    pad_tail: usize,
    error: Option<EncodeError>,
}

/// A reserved length field; give it back to the matching `end_*` call.
#[must_use = "an unfinished parameter leaves its length field zero"]
#[derive(Debug)]
pub struct Mark {
    start: usize,
    field: &'static str,
}

impl<'b> Writer<'b> {
    /// A writer appending to `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            pad_tail: 0,
            error: None,
        }
    }

    /// A writer that only counts bytes (for [`Encode::encoded_len`]).
    pub fn counting() -> Writer<'static> {
        Writer {
            buf: &mut [],
            pos: 0,
            pad_tail: 0,
            error: None,
        }
    }

    /// Bytes written (or counted) so far.
    pub const fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been written.
    pub const fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Records an error; the first one wins and is returned by `finish`.
    pub fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }

    /// Writes raw bytes.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
        self.pad_tail = 0;
    }

    /// Writes one byte.
    pub fn put_u8(&mut self, v: u8) {
        self.put_bytes(&[v]);
    }

    /// Writes a big-endian u16.
    pub fn put_u16(&mut self, v: u16) {
        self.put_bytes(&v.to_be_bytes());
    }

    /// Writes a big-endian u32.
    pub fn put_u32(&mut self, v: u32) {
        self.put_bytes(&v.to_be_bytes());
    }

    fn pad(&mut self) {
        let pad = pad4(self.pos) - self.pos;
        if pad > 0 {
            let tail = self.pad_tail;
            self.put_bytes(&[0; 3][..pad]);
            self.pad_tail = tail + pad;
        }
    }

    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }

    fn close(&mut self, mark: Mark, len_at: usize) {
        let len = self.pos - self.pad_tail - mark.start;
        match u16::try_from(len) {
            Ok(len) => self.patch_u16(len_at, len),
            Err(_) => self.fail(EncodeError::TooLarge { field: mark.field }),
        }
        self.pad();
    }

    /// Starts a parameter of type `ty`; `field` names it in errors.
    pub fn begin_param(&mut self, ty: u16, field: &'static str) -> Mark {
        let start = self.pos;
        self.put_u16(ty);
        self.put_u16(0);
        Mark { start, field }
    }

    /// Finishes a parameter: fills in its length and pads it.
    pub fn end_param(&mut self, mark: Mark) {
        let at = mark.start + 2;
        self.close(mark, at);
    }

    /// Starts a message of type `ty` with `flags`.
    pub fn begin_message(&mut self, ty: u8, flags: u8, field: &'static str) -> Mark {
        let start = self.pos;
        self.put_u8(ty);
        self.put_u8(flags);
        self.put_u16(0);
        Mark { start, field }
    }

    /// Finishes a message: fills in its length and pads it to 4 bytes.
    pub fn end_message(&mut self, mark: Mark) {
        let at = mark.start + 2;
        self.close(mark, at);
    }

    /// Copies a complete, already encoded parameter (e.g. a stored Pool
    /// Element), with or without its final pad. Its own length field tells
    /// how much of it is padding.
    pub fn put_param_bytes(&mut self, tlv: &[u8]) {
        let declared = match tlv.get(2..4) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => {
                self.fail(EncodeError::InvalidValue {
                    field: "encoded parameter",
                });
                return;
            }
        };
        if declared < 4
            || declared > tlv.len()
            || tlv.len() - declared > 3
            || tlv[declared..].iter().any(|&b| b != 0)
        {
            self.fail(EncodeError::InvalidValue {
                field: "encoded parameter",
            });
            return;
        }
        self.put_bytes(tlv);
        self.pad_tail = tlv.len() - declared;
        self.pad();
    }

    /// Ends writing: the number of bytes written, or the first error.
    pub fn finish(self) -> Result<usize, EncodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.pos > self.buf.len() {
            return Err(EncodeError::BufferTooSmall { needed: self.pos });
        }
        Ok(self.pos)
    }
}

/// Bytes [`Encode::append_to`] makes room for before it knows the length:
/// enough for every ASAP message but Handle Resolution Responses with many
/// PEs, and for any Pool Element parameter with a few addresses.
pub const APPEND_GUESS: usize = 512;

/// Anything that can be put on the wire: a message or a parameter.
pub trait Encode {
    /// Writes `self` (header, value, padding) at the writer's position.
    fn emit(&self, w: &mut Writer<'_>);

    /// Exactly the number of bytes [`Encode::emit`] writes, padding included.
    fn encoded_len(&self) -> usize {
        let mut w = Writer::counting();
        self.emit(&mut w);
        w.len()
    }

    /// Encodes into `buf`; returns the number of bytes written.
    fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer::new(buf);
        self.emit(&mut w);
        w.finish()
    }

    /// Appends the encoding to `out`; returns the number of bytes appended.
    /// One pass when the encoding fits in [`APPEND_GUESS`] bytes: those are
    /// zeroed and written, then cut to size (instead of a counting pass
    /// first, which costs as much as the encoding). A longer one is counted
    /// by that pass and written by a second. On error `out` is left as it
    /// was.
    fn append_to(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let start = out.len();
        out.resize(start + APPEND_GUESS, 0);
        let result = match self.encode(&mut out[start..]) {
            Err(EncodeError::BufferTooSmall { needed }) => {
                out.resize(start + needed, 0);
                self.encode(&mut out[start..])
            }
            r => r,
        };
        match result {
            Ok(n) => out.truncate(start + n),
            Err(_) => out.truncate(start),
        }
        result
    }

    /// Encodes at the start of `buf`, a scratch buffer reused from one call
    /// to the next; returns the encoding's length (`buf[..n]`). `buf` is
    /// grown (zeroed) to at least [`APPEND_GUESS`] bytes, or to the length
    /// needed, and never shrunk: the writer writes every byte of the
    /// encoding, pads included, so what an earlier call left after it needs
    /// no zeroing. For a caller that encodes many values into one scratch
    /// buffer ([`Encode::append_to`] zeroes its guess every time).
    fn encode_over(&self, buf: &mut Vec<u8>) -> Result<usize, EncodeError> {
        if buf.len() < APPEND_GUESS {
            buf.resize(APPEND_GUESS, 0);
        }
        match self.encode(buf) {
            Err(EncodeError::BufferTooSmall { needed }) => {
                buf.resize(needed, 0);
                self.encode(buf)
            }
            r => r,
        }
    }

    /// Encodes into a new vector (a convenience that allocates; not for hot paths).
    fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = vec![0; self.encoded_len()];
        let n = self.encode(&mut v)?;
        v.truncate(n);
        Ok(v)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn emit(&self, w: &mut Writer<'_>) {
        (**self).emit(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lengths_exclude_only_the_final_pad() {
        let mut buf = [0xaa; 32];
        let mut w = Writer::new(&mut buf);
        let m = w.begin_message(5, 0, "msg");
        let outer = w.begin_param(0x000c, "outer");
        let inner = w.begin_param(0x0009, "inner");
        w.put_bytes(b"abc");
        w.end_param(inner);
        w.end_param(outer);
        w.end_message(m);
        let n = w.finish().unwrap();
        assert_eq!(n, 16);
        // message length 4 + 4 + 7 = 15, outer 4 + 7 = 11, inner 7, one zero pad.
        assert_eq!(
            &buf[..16],
            &[5, 0, 0, 15, 0, 0x0c, 0, 11, 0, 9, 0, 7, b'a', b'b', b'c', 0]
        );
    }

    #[test]
    fn too_small_buffer_counts_what_is_needed() {
        let mut buf = [0; 4];
        let mut w = Writer::new(&mut buf);
        let p = w.begin_param(9, "p");
        w.put_bytes(b"hello");
        w.end_param(p);
        assert_eq!(w.finish(), Err(EncodeError::BufferTooSmall { needed: 12 }));
    }

    #[test]
    fn oversized_parameter_is_an_error() {
        let big = vec![0u8; 70_000];
        let mut w = Writer::counting();
        let p = w.begin_param(0x000d, "Cookie");
        w.put_bytes(&big);
        w.end_param(p);
        assert_eq!(w.finish(), Err(EncodeError::TooLarge { field: "Cookie" }));
    }

    #[test]
    fn param_bytes_keep_their_own_padding_rule() {
        let mut buf = [0; 16];
        let mut w = Writer::new(&mut buf);
        let m = w.begin_message(6, 0, "m");
        w.put_param_bytes(&[0, 9, 0, 5, b'x']); // no pad given: writer pads
        w.end_message(m);
        assert_eq!(w.finish().unwrap(), 12);
        assert_eq!(&buf[..12], &[6, 0, 0, 9, 0, 9, 0, 5, b'x', 0, 0, 0]);
    }

    #[test]
    fn param_bytes_with_dirty_pad_or_bad_length_are_refused() {
        for bad in [
            &[0, 9, 0, 5, b'x', 1][..],
            &[0, 9, 0, 9, b'x'],
            &[0, 9, 0, 3],
            &[0, 9],
        ] {
            let mut w = Writer::counting();
            w.put_param_bytes(bad);
            assert_eq!(
                w.finish(),
                Err(EncodeError::InvalidValue {
                    field: "encoded parameter"
                }),
                "{bad:?}"
            );
        }
    }

    /// A parameter whose value is `.0` bytes of `.1` (an encoding error past
    /// 65531 bytes: its length would not fit).
    struct Blob(usize, u8);

    impl Encode for Blob {
        fn emit(&self, w: &mut Writer<'_>) {
            let m = w.begin_param(0x0009, "blob");
            for _ in 0..self.0 {
                w.put_u8(self.1);
            }
            w.end_param(m);
        }
    }

    #[test]
    fn append_to_matches_to_vec_short_long_and_failing() {
        for n in [0, 3, APPEND_GUESS - 4, APPEND_GUESS - 3, APPEND_GUESS, 5000] {
            let b = Blob(n, 0x5a);
            let mut out = vec![0xee; 7];
            let got = b.append_to(&mut out).unwrap();
            let want = b.to_vec().unwrap();
            assert_eq!(got, want.len(), "{n}");
            assert_eq!(&out[..7], &[0xee; 7], "{n}: earlier bytes kept");
            assert_eq!(&out[7..], &want[..], "{n}");
        }
        // Over a reused scratch buffer: a short encoding after a long one
        // is exact in its first `n` bytes, whatever the buffer held.
        let mut scratch = vec![0xee; 3];
        for n in [5000, 0, 3, APPEND_GUESS - 3, 7] {
            let b = Blob(n, 0x5a);
            let got = b.encode_over(&mut scratch).unwrap();
            assert_eq!(&scratch[..got], &b.to_vec().unwrap()[..], "over, {n}");
        }
        assert!(scratch.len() >= 5000, "never shrunk");
        // Too large for a 16-bit length: an error, and `out` as it was.
        let mut out = vec![1, 2, 3];
        assert!(Blob(70_000, 1).append_to(&mut out).is_err());
        assert_eq!(out, [1, 2, 3]);
    }
}
