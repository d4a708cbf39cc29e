//! Time as the sans-IO cores see it: a number the caller passes in. The cores
//! never read a clock, so tests step them through scripted time. The type
//! itself lives in the codec crate, shared with the registrar's shards.

pub use rserpool_wire::Time;

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Time>, b: Option<Time>) -> Option<Time> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
