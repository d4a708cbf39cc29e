//! Hex input as people paste it: `01 00 00 3c`, `01:00:00:3c`, `0x0100003c`.

use core::fmt;

/// Why a hex string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// No digits at all.
    Empty,
    /// A character that is not a hex digit, a separator or the `0x` prefix;
    /// `position` counts characters from the start of the input (0-based).
    InvalidDigit {
        /// The offending character.
        ch: char,
        /// Its position in the input.
        position: usize,
    },
    /// An odd number of digits (half a byte at the end).
    OddLength {
        /// How many digits there were.
        digits: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("bad hex: no hex digits"),
            Self::InvalidDigit { ch, position } => {
                write!(
                    f,
                    "bad hex: invalid character {ch:?} at position {position}"
                )
            }
            Self::OddLength { digits } => {
                write!(f, "bad hex: odd number of digits ({digits})")
            }
        }
    }
}

impl std::error::Error for HexError {}

/// Parses hex digits into bytes. Whitespace and colons anywhere are ignored,
/// and one leading `0x` / `0X` (after any leading whitespace) is allowed.
pub fn parse(s: &str) -> Result<Vec<u8>, HexError> {
    let trimmed = s.trim_start();
    let skipped = s.len() - trimmed.len();
    let (body, offset) = match trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
    {
        Some(rest) => (rest, skipped + 2),
        None => (trimmed, skipped),
    };
    let mut out = Vec::with_capacity(body.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0;
    let prefix_chars = s[..offset].chars().count();
    for (i, ch) in body.chars().enumerate() {
        if ch.is_whitespace() || ch == ':' {
            continue;
        }
        let Some(d) = ch.to_digit(16) else {
            return Err(HexError::InvalidDigit {
                ch,
                position: prefix_chars + i,
            });
        };
        // to_digit(16) is below 16, so it fits a u8.
        let d = d as u8;
        digits += 1;
        match high.take() {
            Some(h) => out.push(h << 4 | d),
            None => high = Some(d),
        }
    }
    if digits == 0 {
        return Err(HexError::Empty);
    }
    if high.is_some() {
        return Err(HexError::OddLength { digits });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_prefix() {
        assert_eq!(parse("01 00 00 3c").unwrap(), [1, 0, 0, 0x3c]);
        assert_eq!(parse("01:00:00:3C").unwrap(), [1, 0, 0, 0x3c]);
        assert_eq!(parse("  0x0100\n003c\t").unwrap(), [1, 0, 0, 0x3c]);
        assert_eq!(parse("0XaB").unwrap(), [0xab]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(HexError::Empty));
        assert_eq!(parse("0x"), Err(HexError::Empty));
        assert_eq!(parse(" : "), Err(HexError::Empty));
        assert_eq!(parse("abc"), Err(HexError::OddLength { digits: 3 }));
        assert_eq!(
            parse("0x01zz"),
            Err(HexError::InvalidDigit {
                ch: 'z',
                position: 4
            })
        );
        assert_eq!(
            parse("01 0x02"),
            Err(HexError::InvalidDigit {
                ch: 'x',
                position: 4
            })
        );
        assert!(parse("0g").unwrap_err().to_string().contains("'g'"));
    }
}
