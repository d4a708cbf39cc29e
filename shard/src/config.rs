//! Shard configuration. Every default is RSPLIB 3.4.4's unless stated.

use std::time::Duration;

use rserpool_wire::ServerId;

use crate::addr::Scope;
use crate::policy::Compat;

/// Unit of the Registration Life field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifeUnit {
    /// RSPLIB (and Wireshark): milliseconds. The default, for interop.
    Millis,
    /// RFC 5354 §3.10: seconds.
    Seconds,
}

/// Everything a shard can be told.
#[derive(Clone, Debug)]
pub struct Config {
    /// This registrar's id: the home of PEs that register here.
    pub server_id: ServerId,
    /// PEs per Handle Resolution Response when the PU does not say (3).
    pub default_items: u32,
    /// Most PEs per response, whatever the PU asks (128).
    pub max_items: u32,
    /// How many selected PEs advance their policy state per request;
    /// 0 = the policy's default (RSPLIB `-maxincrement`).
    pub max_increment: usize,
    /// Keep-alive period for owned PEs (5 s).
    pub keep_alive_interval: Duration,
    /// Each period is drawn uniformly from `interval ± jitter` (RFC 5352 §3.4
    /// asks to spread keep-alives; default ±10 %).
    pub keep_alive_jitter: Duration,
    /// Time to wait for a keep-alive ack before removing the PE (5 s).
    pub keep_alive_timeout: Duration,
    /// Endpoint Unreachable reports that remove a PE (3).
    pub max_bad_pe_reports: u8,
    /// Unit of Registration Life on the wire.
    pub life_unit: LifeUnit,
    /// Remove owned PEs whose registration life ran out and tell them with
    /// an unsolicited Deregistration Response (RFC 5352 §3.2). Off by
    /// default: RSPLIB ignores the life of PEs it owns (keep-alives decide)
    /// and its PEs abort their association on an unsolicited response.
    pub expire_owned: bool,
    /// Narrowest scope a registered user address may have.
    pub min_address_scope: Scope,
    /// Require registered user addresses to be addresses of the association.
    pub require_address_subset: bool,
    /// Most pools in this shard.
    pub max_pools: usize,
    /// Most PEs in this shard (at most 2^24 - 1, the layout's limit).
    pub max_pes: usize,
    /// Most PEs in one pool.
    pub max_pes_per_pool: usize,
    /// Emit replication events (off when the registrar has no peers).
    pub replicate: bool,
    /// Selection semantics where RFC 5356 and RSPLIB differ.
    pub selection: Compat,
    /// Seed of the shard's random generator (policies, jitter).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_id: ServerId(1),
            default_items: 3,
            max_items: 128,
            max_increment: 0,
            keep_alive_interval: Duration::from_secs(5),
            keep_alive_jitter: Duration::from_millis(500),
            keep_alive_timeout: Duration::from_secs(5),
            max_bad_pe_reports: 3,
            life_unit: LifeUnit::Millis,
            expire_owned: false,
            min_address_scope: Scope::SiteLocal,
            require_address_subset: true,
            max_pools: 1 << 24,
            max_pes: 1 << 24,
            max_pes_per_pool: 1 << 20,
            replicate: false,
            selection: Compat::Rfc,
            seed: 0x5eed,
        }
    }
}
