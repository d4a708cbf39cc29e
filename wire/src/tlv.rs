//! TLV framing: the parameter header, padding, the iterator over a region of
//! parameters, and the positional reader the message parsers use.
//!
//! Padding (RFC 5354 §2): a parameter's length counts its header and value but
//! not the 0-3 zero bytes that pad it to a multiple of 4. When parameters nest,
//! the RFC excludes the pad of the last inner parameter from the outer length;
//! RSPLIB includes it. Both are accepted here: after a parameter the reader
//! skips `min(pad4(len), remaining)` bytes, so a missing final pad is fine, and
//! 1-3 zero bytes left at the end of a region are taken as its final pad. This
//! file is the only place that knows about padding on the decode side.

use zerocopy::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::codes::{UnrecognizedAction, param_type};
use crate::error::{Error, ErrorKind};

/// Rounds a length up to the next multiple of 4.
pub const fn pad4(len: usize) -> usize {
    (len + 3) & !3
}

/// The 4-byte header of every parameter.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TlvHeader {
    /// Parameter type.
    pub ty: U16,
    /// Parameter length: header plus value, without padding.
    pub len: U16,
}

/// One parameter as it is on the wire, before its value is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tlv<'a> {
    ty: u16,
    value: &'a [u8],
    raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The parameter type.
    pub const fn ty(&self) -> u16 {
        self.ty
    }

    /// The value bytes (after the header, without padding).
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Header and value, without padding: what an error report echoes.
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// What a receiver that does not know this type must do.
    pub const fn action(&self) -> UnrecognizedAction {
        UnrecognizedAction::for_param(self.ty)
    }
}

/// Splits the first parameter off `region`.
///
/// `Ok(None)` when the region is exhausted (possibly after 1-3 zero pad
/// bytes). `field` names the container for error messages.
pub(crate) fn split_tlv<'a>(
    region: &'a [u8],
    field: &'static str,
) -> Result<Option<(Tlv<'a>, &'a [u8])>, Error> {
    split(region, field, true)
}

/// Splits the first error cause off `region` (the value of an Operation
/// Error). Causes share the parameter framing, but their codes are not
/// parameter types: errors name the cause, never the parameter type that
/// happens to have the same number (cause 0x9 is not a Pool Handle).
pub(crate) fn split_cause(region: &[u8]) -> Result<Option<(Tlv<'_>, &[u8])>, Error> {
    split(region, "error cause", false)
}

fn split<'a>(
    region: &'a [u8],
    field: &'static str,
    name_by_type: bool,
) -> Result<Option<(Tlv<'a>, &'a [u8])>, Error> {
    let Ok((hdr, _)) = TlvHeader::ref_from_prefix(region) else {
        // Fewer than 4 bytes left: only a final pad may remain.
        return if region.iter().all(|&b| b == 0) {
            Ok(None)
        } else {
            Err(Error::new(ErrorKind::BadPadding, field, region))
        };
    };
    let len = usize::from(hdr.len.get());
    let ty = hdr.ty.get();
    let name = if name_by_type && param_type::is_known(ty) {
        param_type::name(ty)
    } else {
        field
    };
    if len < 4 {
        return Err(Error::new(ErrorKind::BadLength, name, region));
    }
    let Some(raw) = region.get(..len) else {
        return Err(Error::new(ErrorKind::Truncated, name, region));
    };
    let padded = pad4(len).min(region.len());
    let (taken, rest) = region.split_at(padded);
    if taken[len..].iter().any(|&b| b != 0) {
        return Err(Error::new(ErrorKind::BadPadding, name, taken));
    }
    Ok(Some((
        Tlv {
            ty,
            value: &raw[4..],
            raw,
        },
        rest,
    )))
}

/// An iterator over the parameters of a region. Stops after the first error.
#[derive(Clone, Debug)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
    field: &'static str,
    failed: bool,
}

impl<'a> Tlvs<'a> {
    /// Iterates over the parameters in `region` (a message body or the value
    /// of a nesting parameter). `field` names the region in errors.
    pub const fn new(region: &'a [u8], field: &'static str) -> Self {
        Self {
            rest: region,
            field,
            failed: false,
        }
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match split_tlv(self.rest, self.field) {
            Ok(Some((tlv, rest))) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Maximum number of "skip and report" parameters remembered per message.
pub const MAX_REPORTS: usize = 8;

/// Unknown parameters whose action bits say "skip and report" (`11`), found
/// while decoding one message. The message itself decodes; the caller sends
/// one Unrecognized Parameter cause per entry. Fixed capacity, no allocation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reports<'a> {
    items: [&'a [u8]; MAX_REPORTS],
    len: usize,
    dropped: usize,
}

impl<'a> Reports<'a> {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            items: [&[]; MAX_REPORTS],
            len: 0,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, raw: &'a [u8]) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = raw;
            self.len += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// The offending parameters (header and value), in message order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.items.iter().take(self.len).copied()
    }

    /// Whether nothing needs reporting.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many reportable parameters did not fit.
    pub const fn dropped(&self) -> usize {
        self.dropped
    }
}

/// Reads the parameters of one region in order, applying the unknown-type
/// rules (RFC 5354 §3) so the parsers only ever see known types.
pub(crate) struct Reader<'a, 'r> {
    rest: &'a [u8],
    peeked: Option<(Tlv<'a>, &'a [u8])>,
    reports: &'r mut Reports<'a>,
    field: &'static str,
}

impl<'a, 'r> Reader<'a, 'r> {
    pub(crate) fn new(region: &'a [u8], field: &'static str, reports: &'r mut Reports<'a>) -> Self {
        Self {
            rest: region,
            peeked: None,
            reports,
            field,
        }
    }

    /// The report list nested parsers add to.
    pub(crate) fn reports(&mut self) -> &mut Reports<'a> {
        self.reports
    }

    /// The bytes not yet consumed, including a peeked parameter.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        match self.peeked {
            Some((_, before)) => before,
            None => self.rest,
        }
    }

    /// The next parameter of a known type, skipping (and recording) unknown
    /// ones whose action bits allow it.
    pub(crate) fn peek(&mut self) -> Result<Option<Tlv<'a>>, Error> {
        if let Some((tlv, _)) = self.peeked {
            return Ok(Some(tlv));
        }
        loop {
            let before = self.rest;
            let Some((tlv, rest)) = split_tlv(before, self.field)? else {
                return Ok(None);
            };
            self.rest = rest;
            if param_type::is_known(tlv.ty) {
                self.peeked = Some((tlv, before));
                return Ok(Some(tlv));
            }
            let action = tlv.action();
            if action.reports() && !action.stops() {
                self.reports.push(tlv.raw);
            }
            if action.stops() {
                return Err(Error::new(
                    ErrorKind::UnrecognizedParameter(action),
                    "unrecognized parameter",
                    tlv.raw,
                ));
            }
        }
    }

    /// Consumes the parameter returned by the last `peek`.
    fn take(&mut self) -> Option<Tlv<'a>> {
        self.peeked.take().map(|(tlv, _)| tlv)
    }

    /// The next known parameter, which must have type `ty`.
    pub(crate) fn expect(&mut self, ty: u16, field: &'static str) -> Result<Tlv<'a>, Error> {
        match self.peek()? {
            Some(tlv) if tlv.ty == ty => Ok(self.take().unwrap_or(tlv)),
            Some(tlv) => Err(Error::new(
                ErrorKind::Misplaced,
                param_type::name(tlv.ty),
                tlv.raw,
            )),
            None => Err(Error::new(ErrorKind::Missing, field, self.rest)),
        }
    }

    /// The next known parameter if it has type `ty`.
    pub(crate) fn optional(&mut self, ty: u16) -> Result<Option<Tlv<'a>>, Error> {
        match self.peek()? {
            Some(tlv) if tlv.ty == ty => Ok(self.take()),
            _ => Ok(None),
        }
    }

    /// The next known parameter if it has one of the types accepted by `f`.
    pub(crate) fn optional_if(
        &mut self,
        f: impl Fn(u16) -> bool,
    ) -> Result<Option<Tlv<'a>>, Error> {
        match self.peek()? {
            Some(tlv) if f(tlv.ty) => Ok(self.take()),
            _ => Ok(None),
        }
    }

    /// Fails if any known parameter is left.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        match self.peek()? {
            None => Ok(()),
            Some(tlv) => Err(Error::new(
                ErrorKind::Misplaced,
                param_type::name(tlv.ty),
                tlv.raw,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad4_rounds_up() {
        assert_eq!(
            [pad4(0), pad4(1), pad4(4), pad4(5), pad4(15)],
            [0, 4, 4, 8, 16]
        );
    }

    #[test]
    fn accepts_missing_final_pad_and_rejects_nonzero_pad() {
        // Pool handle "abc": length 7, one pad byte.
        let with_pad = [0, 9, 0, 7, b'a', b'b', b'c', 0];
        let (tlv, rest) = split_tlv(&with_pad, "x").unwrap().unwrap();
        assert_eq!((tlv.ty(), tlv.value(), rest.len()), (9, &b"abc"[..], 0));
        let (tlv, _) = split_tlv(&with_pad[..7], "x").unwrap().unwrap();
        assert_eq!(tlv.value(), b"abc");
        let bad = [0, 9, 0, 7, b'a', b'b', b'c', 1];
        assert_eq!(
            split_tlv(&bad, "x").unwrap_err().kind(),
            ErrorKind::BadPadding
        );
    }

    #[test]
    fn rejects_short_and_overlong_lengths() {
        assert_eq!(
            split_tlv(&[0, 9, 0, 3], "x").unwrap_err().kind(),
            ErrorKind::BadLength
        );
        assert_eq!(
            split_tlv(&[0, 9, 0, 9, 1, 2, 3, 4], "x")
                .unwrap_err()
                .kind(),
            ErrorKind::Truncated
        );
        assert_eq!(
            split_tlv(&[0, 0, 1], "x").unwrap_err().kind(),
            ErrorKind::BadPadding
        );
        assert!(split_tlv(&[0, 0, 0], "x").unwrap().is_none());
    }

    #[test]
    fn reader_applies_action_bits() {
        let mut reports = Reports::new();
        // 0xc123 skip+report, 0x8123 skip, then a PE identifier.
        let region = [
            0xc1, 0x23, 0, 4, 0x81, 0x23, 0, 4, 0, 0x0e, 0, 8, 0, 0, 0, 1,
        ];
        let mut r = Reader::new(&region, "m", &mut reports);
        let tlv = r
            .expect(param_type::PE_IDENTIFIER, "PE Identifier")
            .unwrap();
        assert_eq!(tlv.value(), &[0, 0, 0, 1]);
        r.finish().unwrap();
        assert_eq!(reports.iter().collect::<Vec<_>>(), vec![&region[..4]]);

        let mut reports = Reports::new();
        let stop = [0x41, 0x23, 0, 4];
        let err = Reader::new(&stop, "m", &mut reports).peek().unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::UnrecognizedParameter(UnrecognizedAction::StopAndReport)
        );
        assert_eq!(err.offending(&stop), Some(&stop[..]));
        let silent = [0x01, 0x23, 0, 4];
        let err = Reader::new(&silent, "m", &mut reports).peek().unwrap_err();
        assert_eq!(err.cause(), None);
    }
}
