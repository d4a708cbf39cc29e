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
#[inline(always)]
pub(crate) fn split_tlv<'a>(
    region: &'a [u8],
    field: &'static str,
) -> Result<Option<(Tlv<'a>, &'a [u8])>, Error> {
    split(region, field, true, true)
}

/// Splits the first error cause off `region` (the value of an Operation
/// Error). Causes share the parameter framing, but their codes are not
/// parameter types: errors name the cause, never the parameter type that
/// happens to have the same number (cause 0x9 is not a Pool Handle).
#[inline(always)]
pub(crate) fn split_cause(region: &[u8]) -> Result<Option<(Tlv<'_>, &[u8])>, Error> {
    split(region, "error cause", false, true)
}

/// Splits the first parameter off a region that was validated when its
/// message was parsed (the lists behind a [`crate::Seq`]). Padding is not
/// checked again. `None` at the end, and also if the bytes do not frame
/// (impossible for a validated region): the caller ends its sequence.
#[inline(always)]
pub(crate) fn split_validated(region: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    split(region, "parameter", true, false).ok()?
}

/// The next parameter of a validated region (see [`split_validated`]) whose
/// type `wanted` accepts; the parameters before it are skipped. `None` at
/// the end of the region.
#[inline(always)]
pub(crate) fn next_validated<'a>(
    region: &mut &'a [u8],
    wanted: impl Fn(u16) -> bool,
) -> Option<Tlv<'a>> {
    loop {
        let (tlv, rest) = split_validated(region)?;
        *region = rest;
        if wanted(tlv.ty) {
            return Some(tlv);
        }
    }
}

/// The one TLV splitter. Inlined into every caller: it is small, it runs for
/// every parameter, and its result (a `Tlv`, the rest and an `Error`) is
/// too big to pass through memory cheaply. Errors are built out of line.
///
/// `name_by_type`: name a known parameter type in errors (false for causes).
/// `validate`: check the padding bytes (false when re-reading a region that
/// was checked before); lengths are always checked, so slicing never panics.
#[inline(always)]
fn split<'a>(
    region: &'a [u8],
    field: &'static str,
    name_by_type: bool,
    validate: bool,
) -> Result<Option<(Tlv<'a>, &'a [u8])>, Error> {
    let Ok((hdr, _)) = TlvHeader::ref_from_prefix(region) else {
        // Fewer than 4 bytes left: only a final pad may remain.
        if validate && region.iter().any(|&b| b != 0) {
            return Err(bad_tail(region, field));
        }
        return Ok(None);
    };
    let len = usize::from(hdr.len.get());
    let ty = hdr.ty.get();
    let raw = match region.get(..len) {
        Some(raw) if len >= 4 => raw,
        _ => return Err(bad_length(region, ty, len, field, name_by_type)),
    };
    let padded = pad4(len).min(region.len());
    let (taken, rest) = region.split_at(padded);
    if validate && taken[len..].iter().any(|&b| b != 0) {
        return Err(bad_pad(taken, ty, field, name_by_type));
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

/// The name errors give a parameter of type `ty` found in `field`: the
/// parameter's own name if its type is known, else the container's. Only
/// errors need it, so it is worked out on their (cold) path.
fn error_name(ty: u16, field: &'static str, name_by_type: bool) -> &'static str {
    if name_by_type && param_type::is_known(ty) {
        param_type::name(ty)
    } else {
        field
    }
}

/// 1-3 bytes left at the end of a region that are not a zero pad.
#[cold]
#[inline(never)]
fn bad_tail(region: &[u8], field: &'static str) -> Error {
    Error::new(ErrorKind::BadPadding, field, region)
}

/// A parameter length below 4 or past the end of its region.
#[cold]
#[inline(never)]
fn bad_length(
    region: &[u8],
    ty: u16,
    len: usize,
    field: &'static str,
    name_by_type: bool,
) -> Error {
    let kind = if len < 4 {
        ErrorKind::BadLength
    } else {
        ErrorKind::Truncated
    };
    Error::new(kind, error_name(ty, field, name_by_type), region)
}

/// Non-zero bytes in a parameter's padding.
#[cold]
#[inline(never)]
fn bad_pad(taken: &[u8], ty: u16, field: &'static str, name_by_type: bool) -> Error {
    Error::new(
        ErrorKind::BadPadding,
        error_name(ty, field, name_by_type),
        taken,
    )
}

/// A known parameter where the reader expected another one or none. (Cold
/// helpers take the parameter's parts, not `&Tlv`: a reference would make
/// the caller keep the `Tlv` in memory on its hot path too.)
#[cold]
#[inline(never)]
fn misplaced(ty: u16, raw: &[u8]) -> Error {
    Error::new(ErrorKind::Misplaced, param_type::name(ty), raw)
}

/// A mandatory parameter that is absent; `rest` is what was left instead.
#[cold]
#[inline(never)]
fn missing(field: &'static str, rest: &[u8]) -> Error {
    Error::new(ErrorKind::Missing, field, rest)
}

/// An unknown parameter whose action bits say stop.
#[cold]
#[inline(never)]
fn unrecognized(action: UnrecognizedAction, raw: &[u8]) -> Error {
    Error::new(
        ErrorKind::UnrecognizedParameter(action),
        "unrecognized parameter",
        raw,
    )
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

/// How a [`Reader`] treats the bytes: the parsers are written once, generic
/// over the mode, and run either to validate received bytes or to re-read a
/// region they validated before (iterating a [`crate::Seq`]).
pub(crate) trait Mode<'a> {
    /// Whether to check everything. When false, the bytes were validated
    /// before: padding, the action bits of unknown parameters and trailing
    /// parameters are not looked at again (lengths still are: no slicing can
    /// panic, a re-read of bad bytes ends in an error instead).
    const VALIDATE: bool;

    /// Records an unknown parameter whose action bits say "skip and report".
    fn report(&mut self, raw: &'a [u8]);
}

/// Validating: reportable parameters are collected.
impl<'a> Mode<'a> for Reports<'a> {
    const VALIDATE: bool = true;

    #[inline(always)]
    fn report(&mut self, raw: &'a [u8]) {
        self.push(raw);
    }
}

/// Re-reading a region the message parser validated (see [`Mode`]).
#[derive(Debug)]
pub(crate) struct Revisit;

impl<'a> Mode<'a> for Revisit {
    const VALIDATE: bool = false;

    #[inline(always)]
    fn report(&mut self, _raw: &'a [u8]) {}
}

/// Reads the parameters of one region in order, applying the unknown-type
/// rules (RFC 5354 §3) so the parsers only ever see known types.
///
/// The only state is the unread part of the region. Looking at the next
/// known parameter consumes the unknown ones before it (they are reported
/// once), but not the parameter itself: when a parser does not take it, the
/// next look splits it again. That happens only where an optional parameter
/// is absent, mostly at the end of a region, and is cheaper than carrying a
/// look-ahead around.
///
/// Every method is `#[inline(always)]`: they are a few instructions each
/// around [`split`], and out of line they spent most of a decode moving
/// `Result<Option<Tlv>, Error>` values through memory.
pub(crate) struct Reader<'a, 'r, M = Reports<'a>> {
    rest: &'a [u8],
    mode: &'r mut M,
    field: &'static str,
}

impl<'a, 'r, M: Mode<'a>> Reader<'a, 'r, M> {
    #[inline(always)]
    pub(crate) fn new(region: &'a [u8], field: &'static str, mode: &'r mut M) -> Self {
        Self {
            rest: region,
            mode,
            field,
        }
    }

    /// The mode nested parsers read with (when validating: the report list
    /// they add to).
    #[inline(always)]
    pub(crate) fn mode(&mut self) -> &mut M {
        self.mode
    }

    /// The bytes not yet consumed: from the next known parameter on once
    /// the reader has looked at it, else from the end of the last one taken.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// The next parameter of a known type and the bytes after it, skipping
    /// (and recording) unknown ones whose action bits allow it.
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> Result<Option<(Tlv<'a>, &'a [u8])>, Error> {
        loop {
            let Some((tlv, after)) = split(self.rest, self.field, true, M::VALIDATE)? else {
                return Ok(None);
            };
            if param_type::is_known(tlv.ty) {
                return Ok(Some((tlv, after)));
            }
            self.rest = after;
            // A validated region holds only unknown parameters that may be
            // skipped (and were reported when it was validated).
            if M::VALIDATE {
                let action = tlv.action();
                if action.stops() {
                    return Err(unrecognized(action, tlv.raw));
                }
                if action.reports() {
                    self.mode.report(tlv.raw);
                }
            }
        }
    }

    /// The next known parameter, which must have type `ty`.
    #[inline(always)]
    pub(crate) fn expect(&mut self, ty: u16, field: &'static str) -> Result<Tlv<'a>, Error> {
        match self.peek()? {
            Some((tlv, after)) if tlv.ty == ty => {
                self.rest = after;
                Ok(tlv)
            }
            Some((tlv, _)) => Err(misplaced(tlv.ty, tlv.raw)),
            None => Err(missing(field, self.rest)),
        }
    }

    /// The next known parameter if it has type `ty`.
    #[inline(always)]
    pub(crate) fn optional(&mut self, ty: u16) -> Result<Option<Tlv<'a>>, Error> {
        self.optional_if(|t| t == ty)
    }

    /// The next known parameter if it has one of the types accepted by `f`.
    #[inline(always)]
    pub(crate) fn optional_if(
        &mut self,
        f: impl Fn(u16) -> bool,
    ) -> Result<Option<Tlv<'a>>, Error> {
        match self.peek()? {
            Some((tlv, after)) if f(tlv.ty) => {
                self.rest = after;
                Ok(Some(tlv))
            }
            _ => Ok(None),
        }
    }

    /// Fails if any known parameter is left. A validated region passed this
    /// check before, so a re-read skips it.
    #[inline(always)]
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if !M::VALIDATE {
            return Ok(());
        }
        match self.peek()? {
            None => Ok(()),
            Some((tlv, _)) => Err(misplaced(tlv.ty, tlv.raw)),
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
