//! The session control channel (RFC 5352 sections 3.8-3.9): ASAP Cookie,
//! Cookie Echo and Business Card messages exchanged between a pool user and
//! a pool element on their data connection (PPID 11 on SCTP; framed with
//! PPID 11 on TCP, see [`crate::framing`]).

use rserpool_wire::asap::{self, AsapMessage};
use rserpool_wire::{AsapType, Encode, Policy, PolicyParam, PoolElement, Transport, TransportKind};

use crate::element::encode;
use crate::types::{PeInfo, PoolHandleBuf};

/// A control message, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlMessage {
    /// ASAP_COOKIE (PE -> PU): state the PU keeps and echoes after failover.
    Cookie(Vec<u8>),
    /// ASAP_COOKIE_ECHO (PU -> new PE): the last cookie, first message after
    /// a failover.
    CookieEcho(Vec<u8>),
    /// ASAP_BUSINESS_CARD: the sender's pool and preferred failover PEs.
    BusinessCard {
        /// The sender's pool.
        pool: PoolHandleBuf,
        /// Failover candidates, most preferred first.
        elements: Vec<PeInfo>,
    },
    /// Any other ASAP message (not expected on a session; ignored).
    Other(AsapType),
}

impl ControlMessage {
    /// Decodes one ASAP message received on a session.
    pub fn parse(bytes: &[u8]) -> Result<Self, rserpool_wire::Error> {
        Ok(match AsapMessage::parse(bytes)? {
            AsapMessage::Cookie(c) => Self::Cookie(c.cookie.to_vec()),
            AsapMessage::CookieEcho(c) => Self::CookieEcho(c.cookie.to_vec()),
            AsapMessage::BusinessCard(b) => Self::BusinessCard {
                pool: b.pool_handle.into(),
                elements: b.elements.iter().map(|e| PeInfo::from_wire(&e)).collect(),
            },
            m => Self::Other(m.message_type()),
        })
    }

    /// Encodes it (an empty business card cannot be encoded and gives an
    /// empty vector; `Other` too).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Cookie(c) => encode(&AsapMessage::Cookie(asap::Cookie { cookie: c })),
            Self::CookieEcho(c) => encode(&AsapMessage::CookieEcho(asap::CookieEcho { cookie: c })),
            Self::BusinessCard { pool, elements } => business_card(pool, elements),
            Self::Other(_) => Vec::new(),
        }
    }
}

fn business_card(pool: &PoolHandleBuf, elements: &[PeInfo]) -> Vec<u8> {
    let usable: Vec<&PeInfo> = elements
        .iter()
        .filter(|p| {
            matches!(p.transport, TransportKind::Sctp | TransportKind::Tcp)
                && !p.addresses.is_empty()
        })
        .collect();
    if usable.is_empty() {
        return Vec::new();
    }
    let wire: Vec<PoolElement<'_>> = usable
        .iter()
        .map(|p| {
            let addrs = match p.transport {
                TransportKind::Sctp => &p.addresses[..],
                _ => &p.addresses[..1],
            };
            PoolElement {
                id: p.id,
                home_server: p.home_server,
                registration_life: p.registration_life,
                user_transport: match p.transport {
                    TransportKind::Sctp => Transport::sctp(p.port, p.transport_use, addrs),
                    _ => Transport::tcp(p.port, p.transport_use, addrs),
                },
                policy: p
                    .policy
                    .map(PolicyParam::Known)
                    .unwrap_or(PolicyParam::Known(Policy::RoundRobin {})),
                asap_transport: None,
            }
        })
        .collect();
    let card = AsapMessage::BusinessCard(asap::BusinessCard {
        pool_handle: pool.as_wire(),
        policy: None,
        elements: rserpool_wire::Seq::from_items(&wire),
    });
    card.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rserpool_wire::{PeId, ServerId, TransportUse};

    #[test]
    fn control_messages_round_trip() {
        for m in [
            ControlMessage::Cookie(b"state-1".to_vec()),
            ControlMessage::CookieEcho(vec![0, 1, 2, 3, 4]),
            ControlMessage::BusinessCard {
                pool: PoolHandleBuf::new("EchoPool").unwrap(),
                elements: vec![PeInfo {
                    id: PeId(7),
                    home_server: ServerId(0),
                    registration_life: 9000,
                    transport: TransportKind::Sctp,
                    transport_use: TransportUse::DATA_PLUS_CONTROL,
                    port: 7001,
                    addresses: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
                    policy_type: rserpool_wire::PolicyType::ROUND_ROBIN,
                    policy: Some(Policy::RoundRobin {}),
                }],
            },
        ] {
            assert_eq!(ControlMessage::parse(&m.encode()).unwrap(), m);
        }
    }
}
