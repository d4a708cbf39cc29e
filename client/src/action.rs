//! What the sans-IO cores ask their runtime to do.

use crate::types::{ConnId, PeInfo, Proto, RegistrarAddr, SessionId};

/// SCTP payload protocol identifier of ASAP (RFC 5352 section 8.3).
pub const ASAP_PPID: u32 = rserpool_wire::consts::ASAP_PPID;

/// One thing for the runtime to do, taken with a core's `poll_action`.
///
/// Connections are named by [`ConnId`]s the core chooses. The runtime
/// reports on them with the core's `handle_connected`,
/// `handle_connect_failed`, `handle_message` and `handle_closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a connection to a registrar (try its addresses in order; give up
    /// after the core's connect timeout, which the core also enforces).
    ConnectRegistrar {
        /// The new connection.
        conn: ConnId,
        /// Where.
        to: RegistrarAddr,
    },
    /// Open a session connection to a pool element (pool users only).
    ConnectPe {
        /// The new connection.
        conn: ConnId,
        /// The session it is for.
        session: SessionId,
        /// SCTP or TCP.
        proto: Proto,
        /// The PE (its user transport addresses and port).
        pe: PeInfo,
    },
    /// Send one message on an open connection. On a registrar connection it
    /// is always an ASAP message (PPID 11 over SCTP; raw on TCP). On a
    /// session connection, PPID 11 is an ASAP control message (Cookie,
    /// Cookie Echo, Business Card) and anything else user data with that
    /// PPID (on TCP: framed, see [`crate::framing`]).
    Send {
        /// The connection.
        conn: ConnId,
        /// Payload protocol identifier.
        ppid: u32,
        /// The message.
        data: Vec<u8>,
    },
    /// Close (abort) a connection. Nothing more is reported for it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}
