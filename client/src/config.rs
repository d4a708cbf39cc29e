//! Settings of the cores. Defaults follow RSPLIB's client options (section 7
//! of docs/rsplib-behaviour.md) unless said otherwise.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use rserpool_wire::consts::{ASAP_PORT, RSPLIB_ASAP_ANNOUNCE_GROUP};
use rserpool_wire::{Policy, TransportUse};

use crate::types::{PeId, PoolHandleBuf, Proto, RegistrarAddr};

/// RSPLIB's default ASAP announce group, 239.0.0.50:3863.
pub const DEFAULT_ANNOUNCE_GROUP: SocketAddr = SocketAddr::V4(SocketAddrV4::new(
    std::net::Ipv4Addr::new(
        RSPLIB_ASAP_ANNOUNCE_GROUP[0],
        RSPLIB_ASAP_ANNOUNCE_GROUP[1],
        RSPLIB_ASAP_ANNOUNCE_GROUP[2],
        RSPLIB_ASAP_ANNOUNCE_GROUP[3],
    ),
    ASAP_PORT,
));

/// How a core finds its home registrar and talks to it.
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Configured registrars, tried in this order before any learnt from
    /// announces (RSPLIB `-registrar=`). Never expire.
    pub registrars: Vec<RegistrarAddr>,
    /// Multicast group to hear ASAP Server Announces on (RSPLIB
    /// `-asapannounce=`; default 239.0.0.50:3863, `None` = off). Only the
    /// runtime opens it; a core just takes what it is handed.
    pub announce_group: Option<SocketAddr>,
    /// Transport used for registrars learnt from announces.
    pub announce_proto: Proto,
    /// How long a registrar learnt from an announce stays a candidate
    /// without a new announce (RSPLIB `-registrarannouncetimeout=`, 5 s).
    pub announce_timeout: Duration,
    /// How long one block of parallel connection attempts may take before
    /// the next block is tried (RSPLIB `-registrarconnecttimeout=`, 7.5 s).
    pub connect_timeout: Duration,
    /// Rounds over the candidate list per server hunt before queued requests
    /// fail (RSPLIB `-registrarconnectmaxtrials=`, 1).
    pub connect_max_trials: u32,
    /// Connection attempts in parallel during a hunt (RFC 5352 section 3.6:
    /// at most 3).
    pub max_parallel_connects: usize,
    /// Send timeout of one request on the registrar connection (RSPLIB
    /// `-registrarrequesttimeout=`, 3 s; used by the runtime).
    pub request_timeout: Duration,
    /// How long to wait for a response (RSPLIB
    /// `-registrarresponsetimeout=`, 3 s). On expiry the connection is
    /// dropped and a new registrar hunted, as RSPLIB does.
    pub response_timeout: Duration,
    /// Transmissions of one request before it fails (RSPLIB
    /// `-registrarrequestmaxtrials=` defaults to 1; we default to 2, the
    /// RFC's MAX-REQUEST-RETRANSMIT, so that one registrar failure during a
    /// request does not reach the application).
    pub request_max_trials: u32,
    /// First pause after a hunt found no registrar while one is still
    /// needed; doubled after each failed hunt up to
    /// [`RegistrarConfig::hunt_retry_max`] (RFC T5 back-off).
    pub hunt_retry_delay: Duration,
    /// Cap of the hunt back-off (RFC RETRAN-MAX, 60 s).
    pub hunt_retry_max: Duration,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            registrars: Vec::new(),
            announce_group: Some(DEFAULT_ANNOUNCE_GROUP),
            announce_proto: Proto::Sctp,
            announce_timeout: Duration::from_millis(5000),
            connect_timeout: Duration::from_millis(7500),
            connect_max_trials: 1,
            max_parallel_connects: 3,
            request_timeout: Duration::from_millis(3000),
            response_timeout: Duration::from_millis(3000),
            request_max_trials: 2,
            hunt_retry_delay: Duration::from_millis(1000),
            hunt_retry_max: Duration::from_secs(60),
        }
    }
}

impl RegistrarConfig {
    /// Only the given registrars, no announces.
    pub fn with_registrars(registrars: Vec<RegistrarAddr>) -> Self {
        Self {
            registrars,
            announce_group: None,
            ..Self::default()
        }
    }
}

/// Pool-user settings.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// How long a handle resolution's answer is used before asking again
    /// (RFC 5352 section 3.3 `stale_cache_value`; default 1 s; zero = ask
    /// every time, as RSPLIB's tools do).
    pub cache_lifetime: Duration,
    /// PEs asked for with RSPLIB's Handle Resolution option 0x803F (default
    /// 3, the registrars' default; 0 = leave the option out).
    pub resolution_items: u32,
    /// Time allowed to establish a session connection to one PE (RSPLIB's
    /// session connect timeout, 5 s).
    pub pe_connect_timeout: Duration,
    /// Pause before resolving again when a pool is unknown or every PE
    /// failed (RSPLIB's HandleResolutionRetryDelay, 250 ms).
    pub resolution_retry_delay: Duration,
    /// How long a session may go without any PE before it fails (default
    /// 10 s).
    pub failover_timeout: Duration,
    /// Whether sessions act on Business Cards from PEs (failover order).
    pub use_business_cards: bool,
}

impl Default for UserConfig {
    fn default() -> Self {
        Self {
            cache_lifetime: Duration::from_millis(1000),
            resolution_items: 3,
            pe_connect_timeout: Duration::from_millis(5000),
            resolution_retry_delay: Duration::from_millis(250),
            failover_timeout: Duration::from_secs(10),
            use_business_cards: true,
        }
    }
}

/// Unit of the Registration Life field on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LifeUnit {
    /// Milliseconds: what RSPLIB sends and reads (our registrar's default).
    #[default]
    Millis,
    /// Seconds, as RFC 5354 says.
    Seconds,
}

/// What a pool element registers (the core's view; the runtime builds it
/// from the socket it listens on).
#[derive(Clone, Debug)]
pub struct PeSpec {
    /// The pool.
    pub pool: PoolHandleBuf,
    /// The PE identifier (random, non-zero).
    pub id: PeId,
    /// User transport protocol.
    pub proto: Proto,
    /// User transport port.
    pub port: u16,
    /// User transport addresses (TCP: the first only).
    pub addresses: Vec<IpAddr>,
    /// Transport Use (RSPLIB's enhanced-mode PEs always say
    /// data-plus-control).
    pub transport_use: TransportUse,
    /// Policy and its values.
    pub policy: Policy,
    /// Re-registration interval (RSPLIB `-rereginterval=`, 30 s).
    pub reregistration_interval: Duration,
    /// Registration life; `None` = 3 x the re-registration interval, as
    /// RSPLIB.
    pub registration_life: Option<Duration>,
    /// Unit of the registration life on the wire.
    pub life_unit: LifeUnit,
}

impl PeSpec {
    /// A spec with RSPLIB's defaults for everything but the essentials.
    pub fn new(
        pool: PoolHandleBuf,
        id: PeId,
        proto: Proto,
        port: u16,
        addresses: Vec<IpAddr>,
    ) -> Self {
        Self {
            pool,
            id,
            proto,
            port,
            addresses,
            transport_use: TransportUse::DATA_PLUS_CONTROL,
            policy: Policy::RoundRobin {},
            reregistration_interval: Duration::from_secs(30),
            registration_life: None,
            life_unit: LifeUnit::Millis,
        }
    }

    /// The Registration Life field as sent.
    pub fn registration_life_wire(&self) -> u32 {
        let life = self
            .registration_life
            .unwrap_or(self.reregistration_interval.saturating_mul(3));
        let v = match self.life_unit {
            LifeUnit::Millis => life.as_millis(),
            LifeUnit::Seconds => u128::from(life.as_secs().max(1)),
        };
        u32::try_from(v).unwrap_or(u32::MAX - 1)
    }
}
