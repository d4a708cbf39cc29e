//! The owned values that travel between cores, so that routing can be built
//! and tested without a runtime. A request is parsed on the core whose socket
//! received it; if the pool belongs to another shard, the raw message and
//! what the shard needs to know about its association travel there, and the
//! answer travels back to the connection's core.

use std::net::IpAddr;

use rserpool_wire::TransportKind;

/// Where a request came from, owned (the borrowed form is
/// [`crate::Association`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Core that owns the connection.
    pub core: u16,
    /// The connection's id on that core (never 0).
    pub assoc: u64,
    /// SCTP or TCP.
    pub transport: TransportKind,
    /// The peer's addresses.
    pub addrs: Vec<IpAddr>,
    /// The peer's port.
    pub port: u16,
}

impl Origin {
    /// The borrowed view a [`crate::Shard`] takes.
    pub fn association(&self) -> crate::Association<'_> {
        crate::Association {
            id: self.assoc,
            transport: self.transport,
            addrs: &self.addrs,
            port: self.port,
        }
    }
}

/// A message for the shard that owns a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToShard {
    /// One ASAP message (already validated by the receiving core) for a pool
    /// of this shard.
    Asap {
        /// Where it came from.
        origin: Origin,
        /// The message bytes.
        bytes: Box<[u8]>,
    },
    /// A connection closed: remove its PEs.
    AssociationLost {
        /// The connection's id.
        assoc: u64,
    },
    /// One ENRP message from a peer that concerns this shard's pools.
    Enrp {
        /// The peer's server id.
        from: u32,
        /// The message bytes.
        bytes: Box<[u8]>,
    },
}

/// An answer travelling back to the core that owns a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToConnection {
    /// The connection's id on that core.
    pub assoc: u64,
    /// Encoded ASAP messages, back to back.
    pub bytes: Vec<u8>,
}

/// Which shard a message must go to: the owner of its pool, or every shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The shard owning the pool.
    Shard(usize),
    /// All shards (association loss, takeover).
    All,
}

/// Where an ASAP message for `pool_handle` goes among `shards` shards.
pub fn route_pool(pool_handle: &[u8], shards: usize) -> Route {
    Route::Shard(crate::shard_for(pool_handle, shards))
}
