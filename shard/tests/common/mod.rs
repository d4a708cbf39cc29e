//! Builders shared by the shard's scenario tests.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use rserpool_shard::{Association, Config, Event, RegistrationOutcome, Shard, Time};
use rserpool_wire::asap::*;
use rserpool_wire::*;

pub const ME: ServerId = ServerId(0x1111_1111);
pub const PEER: ServerId = ServerId(0x2222_2222);

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A shard for tests: loopback allowed, no jitter, replication on.
pub fn shard(cfg: impl FnOnce(&mut Config)) -> Shard {
    let mut c = Config {
        server_id: ME,
        min_address_scope: rserpool_shard::addr::Scope::Loopback,
        keep_alive_jitter: std::time::Duration::ZERO,
        replicate: true,
        ..Config::default()
    };
    cfg(&mut c);
    Shard::new(c)
}

/// The association of PE number `n`: 10.0.0.n, port 40000 + n, id n.
pub fn assoc_addrs(n: u32) -> Vec<IpAddr> {
    vec![IpAddr::from([10, 0, (n >> 8) as u8, n as u8])]
}

pub fn assoc(n: u32, addrs: &[IpAddr]) -> Association<'_> {
    Association {
        id: u64::from(n),
        transport: TransportKind::Sctp,
        addrs,
        port: 40000 + (n % 20000) as u16,
    }
}

/// Registers PE `id` (association `id`) into `pool` with `policy`.
pub fn register(
    s: &mut Shard,
    now: Time,
    pool: &str,
    id: u32,
    policy: Policy,
) -> (RegistrationOutcome, Vec<u8>) {
    register_with(
        s,
        now,
        pool,
        id,
        id,
        policy,
        TransportKind::Sctp,
        TransportUse::DATA_PLUS_CONTROL,
        60_000,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn register_with(
    s: &mut Shard,
    now: Time,
    pool: &str,
    id: u32,
    assoc_n: u32,
    policy: Policy,
    kind: TransportKind,
    tuse: TransportUse,
    life: u32,
) -> (RegistrationOutcome, Vec<u8>) {
    let addrs = assoc_addrs(assoc_n);
    let user = Transport {
        kind,
        transport_use: tuse,
        ..Transport::sctp(7000, tuse, &addrs)
    };
    let reg = Registration {
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        element: PoolElement {
            id: PeId(id),
            home_server: ServerId(0),
            registration_life: life,
            user_transport: user,
            policy: policy.into(),
            asap_transport: None,
        },
    };
    let mut out = Vec::new();
    let o = s.handle_registration(now, &assoc(assoc_n, &addrs), &reg, &mut out);
    (o, out)
}

/// Resolves `pool` asking for `items` PEs; returns the PE ids answered.
pub fn resolve(s: &mut Shard, pool: &str, items: u32) -> Vec<u32> {
    let out = resolve_raw(s, pool, items);
    let AsapMessage::HandleResolutionResponse(r) =
        AsapMessage::parse(&out).expect("valid response")
    else {
        panic!("not a response")
    };
    r.elements.iter().map(|e| e.id.0).collect()
}

pub fn resolve_raw(s: &mut Shard, pool: &str, items: u32) -> Vec<u8> {
    let hr = HandleResolution {
        subscribe: false,
        pool_handle: PoolHandle::new(pool.as_bytes()).unwrap(),
        option: Some(HandleResolutionOption { items }),
    };
    let mut out = Vec::new();
    s.handle_resolution(Time::ZERO, &hr, &mut out);
    out
}

/// The cause of a rejected registration response.
pub fn reg_cause(bytes: &[u8]) -> Option<(CauseCode, Vec<u8>)> {
    let AsapMessage::RegistrationResponse(r) = AsapMessage::parse(bytes).unwrap() else {
        panic!()
    };
    let e = r.error?;
    assert!(r.reject);
    let c = e.causes.iter().next().unwrap();
    let info = match c.info {
        CauseInfo::Bytes(b) => b.to_vec(),
        CauseInfo::Policy(p) => p.to_vec().unwrap(),
        CauseInfo::Transport(t) => t.to_vec().unwrap(),
    };
    Some((c.code, info))
}

/// Drains transmits as (association, decoded message type, bytes).
pub fn transmits(s: &mut Shard) -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(t) = s.poll_transmit() {
        v.push((t.to, t.bytes.to_vec()));
    }
    v
}

pub fn events(s: &mut Shard) -> Vec<Event> {
    let mut v = Vec::new();
    while let Some(e) = s.poll_event() {
        v.push(e);
    }
    v
}

/// Runs timers up to `now`.
pub fn run_until(s: &mut Shard, now: Time) {
    while s.handle_timeout(now) {}
}
