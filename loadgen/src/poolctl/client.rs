//! What `poolctl resolve` and `poolctl register` share: the registrar
//! options, the transport, the error type, and how PEs and policies are
//! shown. The ASAP work itself is `rserpool-client`'s.

use std::fmt;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rserpool_client::{PeInfo, Proto, RegistrarAddr, RegistrarConfig};
use rserpool_wire::{Policy, PolicyParam, TransportKind};
use serde_json::{Value, json};

use crate::json;

/// The transport named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// SCTP (RFC 5352's mapping; what RSPLIB speaks).
    Sctp,
    /// TCP (our extension; our registrar's TCP port).
    Tcp,
}

impl From<TransportArg> for Proto {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Sctp => Self::Sctp,
            TransportArg::Tcp => Self::Tcp,
        }
    }
}

/// How to reach the registrar (shared by `resolve` and `register`).
#[derive(Clone, Debug, Args)]
pub struct RegistrarArgs {
    /// A registrar to use, `ADDR:PORT` (IPv6 as `[ADDR]:PORT`), optionally
    /// prefixed `sctp:` or `tcp:`; may be repeated (tried in order, the
    /// first to answer wins).
    #[arg(long = "registrar", value_name = "ADDR", required = true)]
    pub registrars: Vec<String>,
    /// Transport to the registrar for addresses without a prefix (and, for
    /// `register`, the PE's own transport).
    #[arg(long, value_enum, default_value_t = TransportArg::Sctp)]
    pub transport: TransportArg,
    /// Seconds allowed to connect to a registrar and for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    pub timeout: f64,
    /// Print JSON (one object per line) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RegistrarArgs {
    /// The registrar list, each with its transport.
    pub fn addrs(&self) -> Result<Vec<RegistrarAddr>, CmdError> {
        self.registrars
            .iter()
            .map(|s| {
                let prefixed = ["sctp:", "tcp:"]
                    .iter()
                    .any(|p| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)));
                let mut r: RegistrarAddr = s.parse().map_err(CmdError::Usage)?;
                if !prefixed {
                    r.proto = self.transport.into();
                }
                Ok(r)
            })
            .collect()
    }

    /// The timeout as a duration (a bad value is a usage error).
    pub fn timeout(&self) -> Result<Duration, CmdError> {
        Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| CmdError::Usage(format!("bad --timeout {}", self.timeout)))
    }

    /// The client library's registrar settings: these registrars only, no
    /// announces, the timeout for connecting and for answers.
    pub fn config(&self) -> Result<RegistrarConfig, CmdError> {
        let t = self.timeout()?;
        Ok(RegistrarConfig {
            connect_timeout: t,
            request_timeout: t,
            response_timeout: t,
            ..RegistrarConfig::with_registrars(self.addrs()?)
        })
    }

    /// The registrars as the user wrote them, for messages.
    pub fn describe(&self) -> String {
        self.addrs().map_or_else(
            |_| self.registrars.join(", "),
            |v| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    }
}

/// Why a `resolve` or `register` failed: printed as one line by the binary,
/// which exits with 2 for [`CmdError::Usage`] and 1 otherwise.
#[derive(Debug)]
pub enum CmdError {
    /// A bad argument.
    Usage(String),
    /// The operation failed (unknown pool, no registrar, refusal, ...).
    Failed(String),
    /// Writing the output failed.
    Io(std::io::Error),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(s) | Self::Failed(s) => f.write_str(s),
            Self::Io(e) => write!(f, "output: {e}"),
        }
    }
}

impl std::error::Error for CmdError {}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A policy for people: its name and values, e.g. `WeightedRandom weight=3`.
pub fn policy_text(p: &Policy) -> String {
    let names = Policy::field_names(p.policy_type()).unwrap_or(&[]);
    let mut s = p.name().to_string();
    for (n, v) in names.iter().zip(p.values().as_slice()) {
        s.push_str(&format!(" {n}={v}"));
    }
    s
}

/// A PE's policy for people (unknown policies by type number).
pub fn pe_policy_text(pe: &PeInfo) -> String {
    match &pe.policy {
        Some(p) => policy_text(p),
        None => format!("unknown 0x{:08x}", pe.policy_type.0),
    }
}

/// A policy as JSON (the same shape `poolctl decode` uses).
pub fn policy_json(p: &Policy) -> Value {
    json::policy(&PolicyParam::Known(*p))
}

fn kind_name(k: TransportKind) -> &'static str {
    k.name()
}

/// One PE as JSON: `pe_id`, `home_server_id`, `registration_life` (raw, as
/// on the wire), `transport`, `port`, `addresses`, `transport_use`,
/// `policy` (name, type and values; `null` values for unknown policies).
pub fn pe_json(pe: &PeInfo) -> Value {
    json!({
        "pe_id": json::pe_id(pe.id),
        "home_server_id": json::server_id(pe.home_server),
        "registration_life": pe.registration_life,
        "transport": kind_name(pe.transport),
        "port": pe.port,
        "addresses": pe.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "transport_use": if pe.transport_use.0 == 1 { "data_plus_control" } else if pe.transport_use.0 == 0 { "data_only" } else { "unknown" },
        "policy": match &pe.policy {
            Some(p) => policy_json(p),
            None => json!({ "name": "unknown", "type": format!("0x{:08x}", pe.policy_type.0) }),
        },
    })
}

/// Lays out rows under a header with columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(regs: &[&str], transport: TransportArg) -> RegistrarArgs {
        RegistrarArgs {
            registrars: regs.iter().map(|s| (*s).to_string()).collect(),
            transport,
            timeout: 1.5,
            json: false,
        }
    }

    #[test]
    fn unprefixed_registrars_take_the_transport_option() {
        let a = args(
            &["127.0.0.1:3863", "sctp:10.0.0.1:3863", "TCP:[::1]:4000"],
            TransportArg::Tcp,
        );
        let v = a.addrs().unwrap();
        assert_eq!(
            v.iter().map(|r| r.proto).collect::<Vec<_>>(),
            vec![Proto::Tcp, Proto::Sctp, Proto::Tcp]
        );
        assert_eq!(v[2].addrs[0], "[::1]:4000".parse().unwrap());
        let c = a.config().unwrap();
        assert_eq!(c.announce_group, None);
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert!(matches!(
            args(&["nonsense"], TransportArg::Sctp).addrs(),
            Err(CmdError::Usage(_))
        ));
        let mut bad = args(&["127.0.0.1:1"], TransportArg::Sctp);
        bad.timeout = -1.0;
        assert!(matches!(bad.config(), Err(CmdError::Usage(_))));
    }

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "2".into(), "3".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\n1    2   3\n");
    }

    #[test]
    fn policies_read_as_name_and_values() {
        assert_eq!(
            policy_text(&Policy::WeightedRandom { weight: 3 }),
            format!("{} weight=3", Policy::WeightedRandom { weight: 3 }.name())
        );
        assert_eq!(
            policy_json(&Policy::RoundRobin {})["name"],
            Policy::RoundRobin {}.name()
        );
    }
}
