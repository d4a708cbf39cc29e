//! Numeric code points: message types, parameter types, error causes, flag bits.
//!
//! Unknown values never fail to convert: they become `Unknown(..)` / stay a raw
//! newtype, so that the caller can apply the RFC 5354 action bits itself.

use core::fmt;

macro_rules! message_types {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A type code this implementation does not know.
            Unknown(u8),
        }

        impl $name {
            /// Maps a wire code to a message type.
            pub const fn from_code(code: u8) -> Self {
                match code {
                    $($code => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }

            /// The wire code of this message type.
            pub const fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Unknown(c) => c,
                }
            }

            /// The RFC name of the message type, e.g. `ASAP_REGISTRATION`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(_) => "UNKNOWN",
                }
            }

            /// Every known message type, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Self::Unknown(c) => write!(f, "UNKNOWN(0x{c:02x})"),
                    other => f.write_str(other.name()),
                }
            }
        }
    };
}

message_types! {
    /// ASAP message types (RFC 5352 §2.2).
    AsapType {
        /// 0x01: PE registers with its home ENRP server.
        Registration = 0x01, "ASAP_REGISTRATION";
        /// 0x02: PE leaves its pool.
        Deregistration = 0x02, "ASAP_DEREGISTRATION";
        /// 0x03: answer to a registration (flag R = rejected).
        RegistrationResponse = 0x03, "ASAP_REGISTRATION_RESPONSE";
        /// 0x04: answer to a deregistration, or notice of lifetime expiry.
        DeregistrationResponse = 0x04, "ASAP_DEREGISTRATION_RESPONSE";
        /// 0x05: PU asks for the PEs of a pool (flag S = subscribe).
        HandleResolution = 0x05, "ASAP_HANDLE_RESOLUTION";
        /// 0x06: the PEs of a pool (flag A = subscription accepted).
        HandleResolutionResponse = 0x06, "ASAP_HANDLE_RESOLUTION_RESPONSE";
        /// 0x07: server probes a PE (flag H = become my home).
        EndpointKeepAlive = 0x07, "ASAP_ENDPOINT_KEEP_ALIVE";
        /// 0x08: PE answers a keep-alive.
        EndpointKeepAliveAck = 0x08, "ASAP_ENDPOINT_KEEP_ALIVE_ACK";
        /// 0x09: a PU or PE reports a PE it could not reach.
        EndpointUnreachable = 0x09, "ASAP_ENDPOINT_UNREACHABLE";
        /// 0x0A: server announces itself over multicast.
        ServerAnnounce = 0x0a, "ASAP_SERVER_ANNOUNCE";
        /// 0x0B: PE hands a cookie to its PU (control channel).
        Cookie = 0x0b, "ASAP_COOKIE";
        /// 0x0C: PU echoes the last cookie to a new PE after failover.
        CookieEcho = 0x0c, "ASAP_COOKIE_ECHO";
        /// 0x0D: preferred failover list.
        BusinessCard = 0x0d, "ASAP_BUSINESS_CARD";
        /// 0x0E: error report.
        Error = 0x0e, "ASAP_ERROR";
    }
}

message_types! {
    /// ENRP message types (RFC 5353 §2).
    EnrpType {
        /// 0x01: heartbeat and probe (flag R = reply required).
        Presence = 0x01, "ENRP_PRESENCE";
        /// 0x02: ask a peer for its handle table (flag W = own PEs only).
        HandleTableRequest = 0x02, "ENRP_HANDLE_TABLE_REQUEST";
        /// 0x03: (a chunk of) a handle table (flags R = reject, M = more).
        HandleTableResponse = 0x03, "ENRP_HANDLE_TABLE_RESPONSE";
        /// 0x04: one PE added or removed (flag T = takeover suggested, draft).
        HandleUpdate = 0x04, "ENRP_HANDLE_UPDATE";
        /// 0x05: ask a mentor for its peer list.
        ListRequest = 0x05, "ENRP_LIST_REQUEST";
        /// 0x06: the peer list (flag R = reject).
        ListResponse = 0x06, "ENRP_LIST_RESPONSE";
        /// 0x07: start of a takeover arbitration.
        InitTakeover = 0x07, "ENRP_INIT_TAKEOVER";
        /// 0x08: consent to a takeover.
        InitTakeoverAck = 0x08, "ENRP_INIT_TAKEOVER_ACK";
        /// 0x09: the takeover is done.
        TakeoverServer = 0x09, "ENRP_TAKEOVER_SERVER";
        /// 0x0A: error report.
        Error = 0x0a, "ENRP_ERROR";
    }
}

/// What a receiver does with a message or parameter type it does not know
/// (the two high-order bits of the type, RFC 5354 §2 and §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnrecognizedAction {
    /// `00`: stop processing, discard the message silently.
    Stop,
    /// `01`: stop, discard, and report an error cause.
    StopAndReport,
    /// `10`: skip this parameter and go on.
    Skip,
    /// `11`: skip this parameter, go on, and report it.
    SkipAndReport,
}

impl UnrecognizedAction {
    /// The action for an unknown 16-bit parameter type.
    pub const fn for_param(ty: u16) -> Self {
        match ty >> 14 {
            0 => Self::Stop,
            1 => Self::StopAndReport,
            2 => Self::Skip,
            _ => Self::SkipAndReport,
        }
    }

    /// Whether the sender must be told.
    pub const fn reports(self) -> bool {
        matches!(self, Self::StopAndReport | Self::SkipAndReport)
    }

    /// Whether processing of the message stops.
    pub const fn stops(self) -> bool {
        matches!(self, Self::Stop | Self::StopAndReport)
    }
}

/// Whether an unknown message type asks for a report (RFC 5354 §2.1: the two
/// high bits `01`). `00` means discard silently; `10` and `11` are reserved and
/// treated as silent discards.
pub const fn unknown_message_reports(code: u8) -> bool {
    code >> 6 == 1
}

/// Parameter type codes (RFC 5354 §3 and RSPLIB's Handle Resolution option).
pub mod param_type {
    /// IPv4 Address (8 bytes).
    pub const IPV4_ADDRESS: u16 = 0x0001;
    /// IPv6 Address (20 bytes).
    pub const IPV6_ADDRESS: u16 = 0x0002;
    /// DCCP Transport.
    pub const DCCP_TRANSPORT: u16 = 0x0003;
    /// SCTP Transport.
    pub const SCTP_TRANSPORT: u16 = 0x0004;
    /// TCP Transport.
    pub const TCP_TRANSPORT: u16 = 0x0005;
    /// UDP Transport.
    pub const UDP_TRANSPORT: u16 = 0x0006;
    /// UDP-Lite Transport.
    pub const UDP_LITE_TRANSPORT: u16 = 0x0007;
    /// Pool Member Selection Policy.
    pub const POLICY: u16 = 0x0008;
    /// Pool Handle.
    pub const POOL_HANDLE: u16 = 0x0009;
    /// Pool Element.
    pub const POOL_ELEMENT: u16 = 0x000a;
    /// Server Information.
    pub const SERVER_INFORMATION: u16 = 0x000b;
    /// Operation Error.
    pub const OPERATION_ERROR: u16 = 0x000c;
    /// Cookie.
    pub const COOKIE: u16 = 0x000d;
    /// PE Identifier.
    pub const PE_IDENTIFIER: u16 = 0x000e;
    /// PE Checksum.
    pub const PE_CHECKSUM: u16 = 0x000f;
    /// Opaque Transport.
    pub const OPAQUE_TRANSPORT: u16 = 0x0010;
    /// Handle Resolution option (draft-dreibholz-rserpool-asap-hropt, RSPLIB):
    /// action bits `10` (skip if unknown) on code 0x3f.
    pub const HANDLE_RESOLUTION_OPTION: u16 = 0x803f;

    /// Whether this implementation knows the parameter type.
    pub const fn is_known(ty: u16) -> bool {
        matches!(ty, 0x0001..=0x0010 | HANDLE_RESOLUTION_OPTION)
    }

    /// A human-readable name for a parameter type.
    pub const fn name(ty: u16) -> &'static str {
        match ty {
            IPV4_ADDRESS => "IPv4 Address",
            IPV6_ADDRESS => "IPv6 Address",
            DCCP_TRANSPORT => "DCCP Transport",
            SCTP_TRANSPORT => "SCTP Transport",
            TCP_TRANSPORT => "TCP Transport",
            UDP_TRANSPORT => "UDP Transport",
            UDP_LITE_TRANSPORT => "UDP-Lite Transport",
            POLICY => "Pool Member Selection Policy",
            POOL_HANDLE => "Pool Handle",
            POOL_ELEMENT => "Pool Element",
            SERVER_INFORMATION => "Server Information",
            OPERATION_ERROR => "Operation Error",
            COOKIE => "Cookie",
            PE_IDENTIFIER => "PE Identifier",
            PE_CHECKSUM => "PE Checksum",
            OPAQUE_TRANSPORT => "Opaque Transport",
            HANDLE_RESOLUTION_OPTION => "Handle Resolution Option",
            _ => "Unknown Parameter",
        }
    }
}

/// An Operation Error cause code (RFC 5354 §3.12, plus codes RSPLIB puts on
/// the wire). Any 16-bit value is representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CauseCode(pub u16);

impl CauseCode {
    /// 0x0000 Unspecified Error.
    pub const UNSPECIFIED: Self = Self(0x0000);
    /// 0x0001 Unrecognized Parameter (info: the whole parameter).
    pub const UNRECOGNIZED_PARAMETER: Self = Self(0x0001);
    /// 0x0002 Unrecognized Message (info: the whole message).
    pub const UNRECOGNIZED_MESSAGE: Self = Self(0x0002);
    /// 0x0003 Invalid Values (info: the offending parameter, may be empty).
    pub const INVALID_VALUES: Self = Self(0x0003);
    /// 0x0004 Non-Unique PE Identifier.
    pub const NON_UNIQUE_PE_IDENTIFIER: Self = Self(0x0004);
    /// 0x0005 Inconsistent Pooling Policy (info: the pool's policy parameter).
    pub const INCONSISTENT_POLICY: Self = Self(0x0005);
    /// 0x0006 Lack of Resources.
    pub const LACK_OF_RESOURCES: Self = Self(0x0006);
    /// 0x0007 Inconsistent Transport Type (info: a transport of the pool's type).
    pub const INCONSISTENT_TRANSPORT: Self = Self(0x0007);
    /// 0x0008 Inconsistent Data/Control Configuration.
    pub const INCONSISTENT_DATA_CONTROL: Self = Self(0x0008);
    /// 0x0009 Unknown Pool Handle.
    pub const UNKNOWN_POOL_HANDLE: Self = Self(0x0009);
    /// 0x000A Rejected Due to Security Considerations.
    pub const SECURITY: Self = Self(0x000a);
    /// RSPLIB 0x0010: invalid message.
    pub const RSPLIB_INVALID_MESSAGE: Self = Self(0x0010);
    /// RSPLIB 0x0011: invalid value.
    pub const RSPLIB_INVALID_VALUE: Self = Self(0x0011);
    /// RSPLIB 0x1009: unrecognized parameter (silent).
    pub const RSPLIB_UNRECOGNIZED_PARAMETER_SILENT: Self = Self(0x1009);
    /// RSPLIB 0x100A: wrong protocol.
    pub const RSPLIB_WRONG_PROTOCOL: Self = Self(0x100a);
    /// RSPLIB 0x100B: unsupported pool policy.
    pub const RSPLIB_UNSUPPORTED_POLICY: Self = Self(0x100b);
    /// RSPLIB 0xF000: invalid identifier.
    pub const RSPLIB_INVALID_ID: Self = Self(0xf000);
    /// RSPLIB 0xF001: the identifier is the receiver's own.
    pub const RSPLIB_OWN_ID: Self = Self(0xf001);
    /// RSPLIB 0xF002: duplicate identifier.
    pub const RSPLIB_DUPLICATE_ID: Self = Self(0xf002);
    /// RSPLIB 0xF003: invalid pool policy.
    pub const RSPLIB_INVALID_POLICY: Self = Self(0xf003);
    /// RSPLIB 0xF004: invalid pool handle.
    pub const RSPLIB_INVALID_POOL_HANDLE: Self = Self(0xf004);
    /// RSPLIB 0xF005: invalid addresses.
    pub const RSPLIB_INVALID_ADDRESSES: Self = Self(0xf005);
    /// RSPLIB 0xF006: invalid registrar.
    pub const RSPLIB_INVALID_REGISTRAR: Self = Self(0xf006);
    /// RSPLIB 0xF007: no usable ASAP addresses.
    pub const RSPLIB_NO_USABLE_ASAP_ADDRESSES: Self = Self(0xf007);
    /// RSPLIB 0xF008: no usable user addresses.
    pub const RSPLIB_NO_USABLE_USER_ADDRESSES: Self = Self(0xf008);

    /// A name for the cause; RSPLIB's private codes are marked as such.
    pub const fn name(self) -> &'static str {
        match self.0 {
            0x0000 => "Unspecified Error",
            0x0001 => "Unrecognized Parameter",
            0x0002 => "Unrecognized Message",
            0x0003 => "Invalid Values",
            0x0004 => "Non-Unique PE Identifier",
            0x0005 => "Inconsistent Pooling Policy",
            0x0006 => "Lack of Resources",
            0x0007 => "Inconsistent Transport Type",
            0x0008 => "Inconsistent Data/Control Configuration",
            0x0009 => "Unknown Pool Handle",
            0x000a => "Rejected Due to Security Considerations",
            0x0010 => "Invalid Message (RSPLIB)",
            0x0011 => "Invalid Value (RSPLIB)",
            0x1009 => "Unrecognized Parameter, silent (RSPLIB)",
            0x100a => "Wrong Protocol (RSPLIB)",
            0x100b => "Unsupported Pool Policy (RSPLIB)",
            0xf000 => "Invalid ID (RSPLIB)",
            0xf001 => "Own ID (RSPLIB)",
            0xf002 => "Duplicate ID (RSPLIB)",
            0xf003 => "Invalid Pool Policy (RSPLIB)",
            0xf004 => "Invalid Pool Handle (RSPLIB)",
            0xf005 => "Invalid Addresses (RSPLIB)",
            0xf006 => "Invalid Registrar (RSPLIB)",
            0xf007 => "No Usable ASAP Addresses (RSPLIB)",
            0xf008 => "No Usable User Addresses (RSPLIB)",
            _ => "Unknown Cause",
        }
    }

    /// Whether RFC 5354 defines this code.
    pub const fn is_rfc(self) -> bool {
        self.0 <= 0x000a
    }
}

impl fmt::Display for CauseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04x})", self.name(), self.0)
    }
}

/// Message flag bits, as masks on the flags byte.
pub mod flags {
    /// ASAP_REGISTRATION_RESPONSE: registration rejected.
    pub const REGISTRATION_REJECT: u8 = 0x01;
    /// ASAP_HANDLE_RESOLUTION: subscribe to pool changes.
    pub const HANDLE_RESOLUTION_SUBSCRIBE: u8 = 0x01;
    /// ASAP_HANDLE_RESOLUTION_RESPONSE: subscription accepted.
    pub const HANDLE_RESOLUTION_ACCEPT: u8 = 0x01;
    /// ASAP_ENDPOINT_KEEP_ALIVE: the sender wants to be the PE's home.
    pub const KEEP_ALIVE_HOME: u8 = 0x01;
    /// ENRP_PRESENCE: the receiver must reply with a presence.
    pub const PRESENCE_REPLY_REQUIRED: u8 = 0x01;
    /// ENRP_HANDLE_TABLE_REQUEST: only the receiver's own PEs.
    pub const HANDLE_TABLE_OWN_CHILDREN_ONLY: u8 = 0x01;
    /// ENRP_HANDLE_TABLE_RESPONSE: request rejected.
    pub const HANDLE_TABLE_REJECT: u8 = 0x01;
    /// ENRP_HANDLE_TABLE_RESPONSE: more chunks follow.
    pub const HANDLE_TABLE_MORE: u8 = 0x02;
    /// ENRP_HANDLE_UPDATE: takeover suggested (draft-dreibholz-rserpool-enrp-takeover).
    pub const HANDLE_UPDATE_TAKEOVER_SUGGESTED: u8 = 0x01;
    /// ENRP_LIST_RESPONSE: request rejected.
    pub const LIST_REJECT: u8 = 0x01;
}

/// Well-known ports, payload protocol identifiers and RSPLIB's multicast groups.
pub mod consts {
    /// ASAP port (SCTP, TCP, UDP announces).
    pub const ASAP_PORT: u16 = 3863;
    /// ENRP port (SCTP, UDP presences).
    pub const ENRP_PORT: u16 = 9901;
    /// SCTP payload protocol identifier of ASAP.
    pub const ASAP_PPID: u32 = 11;
    /// SCTP payload protocol identifier of ENRP.
    pub const ENRP_PPID: u32 = 12;
    /// RSPLIB's default ASAP announce group.
    pub const RSPLIB_ASAP_ANNOUNCE_GROUP: [u8; 4] = [239, 0, 0, 50];
    /// RSPLIB's default ENRP presence group.
    pub const RSPLIB_ENRP_ANNOUNCE_GROUP: [u8; 4] = [239, 0, 0, 51];
    /// Longest pool handle accepted or emitted (RSPLIB's limit; longer ones crash it).
    pub const MAX_POOL_HANDLE_LEN: usize = 32;
    /// Largest possible message (the 16-bit length field).
    pub const MAX_MESSAGE_LEN: usize = 65535;
}
