//! Time as the shard sees it: a number the caller passes in. The shard never
//! reads a clock, so whole clusters can be stepped through virtual time.
//! The type itself lives in the codec crate, shared with the client cores.

pub use rserpool_wire::Time;
