//! The messages that travel between cores, as owned values, so routing can
//! be built and tested without a runtime.
//!
//! A request is parsed on the core whose socket received it; if its pool
//! belongs to another core's shard, the message and what the shard needs to
//! know about its association travel there ([`Record::Request`]) and the
//! answer travels back ([`Record::Reply`]). Records are batched: during one
//! wake-up a core appends every record for core `d` to one [`Batch`] and
//! sends that buffer once, so nothing is allocated per message.
//!
//! Record layout (all integers big-endian):
//!
//! | tag | fields |
//! |---|---|
//! | 1 request | assoc u64, transport u8, port u16, n u8, n x (family u8, 16 bytes), len u32, message |
//! | 2 reply | assoc u64, len u32, message |
//! | 3 association lost | assoc u64 |
//! | 4 abort association | assoc u64 |
//! | 5 ENRP update | peer server id u32, len u32, message |
//!
//! A connection id (`assoc`) names its core in its top 8 bits
//! ([`core_of`]).

use std::net::{IpAddr, Ipv6Addr};

use rserpool_wire::TransportKind;

const REQUEST: u8 = 1;
const REPLY: u8 = 2;
const LOST: u8 = 3;
const ABORT: u8 = 4;
const ENRP: u8 = 5;

/// Most peer addresses carried with a request (RSPLIB also considers 64).
pub const MAX_ADDRS: usize = 64;

/// The core a connection id belongs to.
pub const fn core_of(assoc: u64) -> usize {
    (assoc >> 56) as usize
}

/// A connection id: core in the top 8 bits, then a generation, then a slot.
pub const fn make_assoc(core: usize, generation: u32, slot: u32) -> u64 {
    ((core as u64) << 56) | ((generation as u64 & 0x00ff_ffff) << 32) | slot as u64
}

/// The slot part of a connection id.
pub const fn slot_of(assoc: u64) -> usize {
    (assoc & 0xffff_ffff) as usize
}

/// One decoded record.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An ASAP message for a pool of the receiving core's shard.
    Request {
        /// Connection id.
        assoc: u64,
        /// SCTP or TCP.
        transport: TransportKind,
        /// Peer port.
        port: u16,
        /// Peer addresses (encoded; see [`addrs`]).
        addrs: &'a [u8],
        /// The message.
        msg: &'a [u8],
    },
    /// An ASAP message for a connection of the receiving core.
    Reply {
        /// Connection id.
        assoc: u64,
        /// The message.
        msg: &'a [u8],
    },
    /// A connection closed.
    Lost {
        /// Connection id.
        assoc: u64,
    },
    /// A connection must be aborted.
    Abort {
        /// Connection id.
        assoc: u64,
    },
    /// An ENRP Handle Update from a peer, for the receiving core's shard.
    Enrp {
        /// The peer's server id.
        peer: u32,
        /// The message.
        msg: &'a [u8],
    },
}

/// Decodes the addresses of a [`Record::Request`] into `out`.
pub fn addrs(encoded: &[u8], out: &mut Vec<IpAddr>) {
    out.clear();
    for chunk in encoded.chunks_exact(17) {
        let mut b = [0u8; 16];
        b.copy_from_slice(&chunk[1..]);
        let v6 = Ipv6Addr::from(b);
        out.push(if chunk[0] == 4 {
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        } else {
            IpAddr::V6(v6)
        });
    }
}

/// Appends records to a batch.
#[derive(Debug, Default)]
pub struct Batch {
    /// The encoded records.
    pub buf: Vec<u8>,
}

impl Batch {
    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn msg(&mut self, msg: &[u8]) {
        self.buf
            .extend_from_slice(&(msg.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(msg);
    }

    /// A request from connection `assoc`.
    pub fn request(
        &mut self,
        assoc: u64,
        transport: TransportKind,
        port: u16,
        peer: &[IpAddr],
        msg: &[u8],
    ) {
        self.buf.push(REQUEST);
        self.buf.extend_from_slice(&assoc.to_be_bytes());
        self.buf.push(u8::from(transport == TransportKind::Tcp));
        self.buf.extend_from_slice(&port.to_be_bytes());
        let peer = &peer[..peer.len().min(MAX_ADDRS)];
        self.buf.push(peer.len() as u8);
        for a in peer {
            match a {
                IpAddr::V4(v4) => {
                    self.buf.push(4);
                    self.buf.extend_from_slice(&v4.to_ipv6_mapped().octets());
                }
                IpAddr::V6(v6) => {
                    self.buf.push(6);
                    self.buf.extend_from_slice(&v6.octets());
                }
            }
        }
        self.msg(msg);
    }

    /// A reply for connection `assoc`.
    pub fn reply(&mut self, assoc: u64, msg: &[u8]) {
        self.buf.push(REPLY);
        self.buf.extend_from_slice(&assoc.to_be_bytes());
        self.msg(msg);
    }

    /// Connection `assoc` closed.
    pub fn lost(&mut self, assoc: u64) {
        self.buf.push(LOST);
        self.buf.extend_from_slice(&assoc.to_be_bytes());
    }

    /// Connection `assoc` must be aborted.
    pub fn abort(&mut self, assoc: u64) {
        self.buf.push(ABORT);
        self.buf.extend_from_slice(&assoc.to_be_bytes());
    }

    /// An ENRP update from `peer`.
    pub fn enrp(&mut self, peer: u32, msg: &[u8]) {
        self.buf.push(ENRP);
        self.buf.extend_from_slice(&peer.to_be_bytes());
        self.msg(msg);
    }
}

/// Iterates over the records of a batch (stops at the first malformed one,
/// which cannot happen: batches are only built by [`Batch`]).
#[derive(Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    /// Records of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.rest.split_at_checked(n)?;
        self.rest = b;
        Some(a)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn msg(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn record(&mut self) -> Option<Record<'a>> {
        let tag = *self.take(1)?.first()?;
        Some(match tag {
            REQUEST => {
                let assoc = self.u64()?;
                let transport = if self.take(1)?[0] == 1 {
                    TransportKind::Tcp
                } else {
                    TransportKind::Sctp
                };
                let port = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
                let n = usize::from(self.take(1)?[0]);
                let addrs = self.take(17 * n)?;
                Record::Request {
                    assoc,
                    transport,
                    port,
                    addrs,
                    msg: self.msg()?,
                }
            }
            REPLY => Record::Reply {
                assoc: self.u64()?,
                msg: self.msg()?,
            },
            LOST => Record::Lost { assoc: self.u64()? },
            ABORT => Record::Abort { assoc: self.u64()? },
            ENRP => Record::Enrp {
                peer: self.u32()?,
                msg: self.msg()?,
            },
            _ => return None,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let r = self.record();
        if r.is_none() {
            self.rest = &[];
        }
        r
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut b = Batch::default();
        let peer: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd77::1".parse().unwrap()];
        let id = make_assoc(3, 7, 42);
        b.request(id, TransportKind::Tcp, 4000, &peer, b"req");
        b.reply(id, b"rep");
        b.lost(id);
        b.abort(id);
        b.enrp(0x1122_3344, b"upd");
        let recs: Vec<Record<'_>> = Records::new(&b.buf).collect();
        assert_eq!(recs.len(), 5);
        let Record::Request {
            assoc,
            transport,
            port,
            addrs: a,
            msg,
        } = &recs[0]
        else {
            panic!()
        };
        assert_eq!(
            (*assoc, *transport, *port, *msg),
            (id, TransportKind::Tcp, 4000, &b"req"[..])
        );
        let mut decoded = Vec::new();
        addrs(a, &mut decoded);
        assert_eq!(decoded, peer);
        assert_eq!(
            recs[1],
            Record::Reply {
                assoc: id,
                msg: b"rep"
            }
        );
        assert_eq!(
            recs[4],
            Record::Enrp {
                peer: 0x1122_3344,
                msg: b"upd"
            }
        );
        assert_eq!((core_of(id), slot_of(id)), (3, 42));
        // A truncated batch ends the iteration instead of panicking.
        assert_eq!(Records::new(&b.buf[..b.buf.len() - 1]).count(), 4);
    }
}
