//! [`Seq`]: a list inside a message that is either a validated region of the
//! received bytes (decoding, no allocation) or a slice of values (encoding).

use core::fmt;

/// An item that can be read back from a region its parser already validated.
pub trait WireItem<'a>: Sized {
    /// Takes the next item off the front of `region`. Returns `None` at the
    /// end. The region was validated when the message was parsed, so this
    /// cannot fail; if it ever met bad bytes it would end the sequence rather
    /// than panic.
    fn next_from(region: &mut &'a [u8]) -> Option<Self>;
}

/// A list of `T`: borrowed from a decoded message, or from the caller.
pub struct Seq<'a, T> {
    repr: Repr<'a, T>,
}

enum Repr<'a, T> {
    Wire { region: &'a [u8], count: usize },
    Items(&'a [T]),
}

impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Repr<'_, T> {}
impl<T> Clone for Seq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Seq<'_, T> {}

impl<'a, T> Seq<'a, T> {
    /// A list of caller-supplied values (for encoding).
    pub const fn from_items(items: &'a [T]) -> Self {
        Self {
            repr: Repr::Items(items),
        }
    }

    /// An empty list.
    pub const fn empty() -> Self {
        Self {
            repr: Repr::Items(&[]),
        }
    }

    pub(crate) const fn from_wire(region: &'a [u8], count: usize) -> Self {
        Self {
            repr: Repr::Wire { region, count },
        }
    }

    /// Number of items.
    pub const fn len(&self) -> usize {
        match self.repr {
            Repr::Wire { count, .. } => count,
            Repr::Items(items) => items.len(),
        }
    }

    /// Whether the list is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The received bytes the items were decoded from, if they were decoded.
    pub const fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            Repr::Wire { region, .. } => Some(region),
            Repr::Items(_) => None,
        }
    }
}

impl<'a, T: WireItem<'a> + Clone> Seq<'a, T> {
    /// Iterates over the items.
    pub fn iter(&self) -> SeqIter<'a, T> {
        SeqIter { repr: self.repr }
    }
}

/// Iterator over a [`Seq`].
pub struct SeqIter<'a, T> {
    repr: Repr<'a, T>,
}

impl<T> fmt::Debug for SeqIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeqIter")
    }
}

impl<'a, T: WireItem<'a> + Clone> Iterator for SeqIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            Repr::Wire { region, count } => {
                if *count == 0 {
                    return None;
                }
                *count -= 1;
                T::next_from(region)
            }
            Repr::Items(items) => {
                let (first, rest) = items.split_first()?;
                *items = rest;
                Some(first.clone())
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self.repr {
            Repr::Wire { count, .. } => count,
            Repr::Items(items) => items.len(),
        };
        (0, Some(n))
    }
}

impl<'a, T: WireItem<'a> + Clone> IntoIterator for &Seq<'a, T> {
    type Item = T;
    type IntoIter = SeqIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: WireItem<'a> + Clone + PartialEq> PartialEq for Seq<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: WireItem<'a> + Clone + fmt::Debug> fmt::Debug for Seq<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
