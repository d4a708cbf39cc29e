//! RSPLIB's `rspregistrar` option spellings, rewritten into our long options
//! so that existing deployment scripts work unchanged.
//!
//! RSPLIB options are one dash and `name=value` (`-asap=0.0.0.0:3863`);
//! ours are two dashes. Each RSPLIB option maps to one of ours, or is
//! accepted with a warning when it has no meaning here (statistics, colour,
//! failure-test modes). One deliberate difference: RSPLIB picks a random
//! port for `-asap=auto` or an address without port; we use the well-known
//! ports 3863 and 9901 (a random ASAP port is only reachable through the
//! announce's source-port trick, and surprises operators).

use std::ffi::OsString;

/// How an RSPLIB option is handled.
enum Map {
    /// Same value, our option name.
    To(&'static str),
    /// A comma-separated address list: one of our options per address, with
    /// a default port.
    Addrs(&'static str, u16),
    /// A flag without value.
    Flag(&'static str),
    /// RSPLIB's numeric log level.
    LogLevel,
    /// Accepted, no effect here (warn).
    Ignored,
}

/// RSPLIB's option names (5.1 of docs/rsplib-behaviour.md) and ours.
fn lookup(name: &str) -> Option<Map> {
    use Map::*;
    Some(match name {
        "asap" => Addrs("--asap", 3863),
        "enrp" => Addrs("--enrp", 9901),
        "peer" => Addrs("--peer", 9901),
        "asapannounce" => To("--announce"),
        "enrpannounce" | "enrpmulticast" => To("--enrp-announce"),
        "identifier" => To("--id"),
        "minaddressscope" => To("--min-address-scope"),
        "maxbadpereports" => To("--max-bad-pe-reports"),
        "endpointkeepalivetransmissioninterval" => To("--keep-alive-interval"),
        "endpointkeepalivetimeoutinterval" => To("--keep-alive-timeout"),
        "serverannouncecycle" => To("--announce-interval"),
        "announcettl" => To("--announce-ttl"),
        "autoclosetimeout" => To("--autoclose"),
        "maxhresitems" => To("--max-items-default"),
        "maxincrement" => To("--max-increment"),
        "maxhrrate" => To("--max-hr-rate"),
        "maxeurate" => To("--max-eu-rate"),
        "maxelementsperhtrequest" => To("--max-elements-per-ht-request"),
        "peerheartbeatcycle" => To("--peer-heartbeat-cycle"),
        "peermaxtimelastheard" => To("--peer-max-time-last-heard"),
        "peermaxtimenoresponse" => To("--peer-max-time-no-response"),
        "mentordiscoverytimeout" | "mentorhuntinterval" => To("--mentor-discovery-timeout"),
        "takeoverexpiryinterval" => To("--takeover-expiry-interval"),
        "supporttakeoversuggestion" => Flag("--support-takeover-suggestion"),
        "disable-ipv6" => Flag("--disable-ipv6"),
        "logfile" | "logappend" => To("--log-file"),
        "daemonpidfile" => To("--pid-file"),
        "loglevel" => LogLevel,
        "logquiet" | "logcolor" | "quiet" | "distancestep" | "cspserver" | "cspinterval"
        | "actionlogfile" | "statsfile" | "statsinterval" | "scalar" | "object" | "uptime"
        | "downtime" => Ignored,
        _ => return None,
    })
}

/// Rewrites RSPLIB-style arguments; our own arguments pass through.
/// Returns the new argument list and warnings for accepted-but-ignored
/// options; an unknown single-dash option is an error.
pub fn translate(
    args: impl IntoIterator<Item = OsString>,
) -> Result<(Vec<OsString>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let Some(s) = arg
            .to_str()
            .filter(|s| i > 0 && s.starts_with('-') && !s.starts_with("--") && s.len() > 2)
        else {
            out.push(arg);
            continue;
        };
        let body = &s[1..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(map) = lookup(name) else {
            return Err(format!(
                "unknown option '{s}' (neither ours nor an rspregistrar option; see --help)"
            ));
        };
        let need = |v: Option<&str>| {
            v.map(str::to_owned)
                .ok_or_else(|| format!("'{s}': expected -{name}=VALUE"))
        };
        match map {
            Map::To(ours) => {
                let v = need(value)?;
                out.push(ours.into());
                out.push(v.into());
            }
            Map::Addrs(ours, port) => {
                let v = need(value)?;
                if v != "auto" {
                    for a in v.split(',') {
                        out.push(ours.into());
                        out.push(with_port(a, port).into());
                    }
                }
            }
            Map::Flag(ours) => out.push(ours.into()),
            Map::LogLevel => {
                let level = match need(value)?.parse::<u32>() {
                    Ok(0) => "off",
                    Ok(1) => "error",
                    Ok(2) => "warn",
                    Ok(3) => "info",
                    Ok(4 | 5) => "debug",
                    Ok(_) => "trace",
                    Err(_) => return Err(format!("'{s}': expected a log level 0..9")),
                };
                out.push("--log-level".into());
                out.push(level.into());
            }
            Map::Ignored => warnings.push(format!(
                "rspregistrar option '{s}' accepted but has no effect here"
            )),
        }
    }
    Ok((out, warnings))
}

/// `addr`, `addr:port`, `[v6]:port` or a bare IPv6 address, with `port` added
/// when missing or 0.
fn with_port(a: &str, port: u16) -> String {
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        return if sa.port() == 0 {
            std::net::SocketAddr::new(sa.ip(), port).to_string()
        } else {
            sa.to_string()
        };
    }
    match a.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => a.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(args: &[&str]) -> Result<Vec<String>, String> {
        let (v, _) = translate(
            std::iter::once("registrar")
                .chain(args.iter().copied())
                .map(Into::into),
        )?;
        Ok(v.into_iter()
            .skip(1)
            .map(|s| s.into_string().unwrap())
            .collect())
    }

    #[test]
    fn rewrites_addresses_with_default_ports() {
        assert_eq!(
            tr(&["-asap=10.0.0.1,10.0.1.1:3864"]).unwrap(),
            ["--asap", "10.0.0.1:3863", "--asap", "10.0.1.1:3864"]
        );
        assert_eq!(
            tr(&["-peer=[fd77::2]:0"]).unwrap(),
            ["--peer", "[fd77::2]:9901"]
        );
        assert!(tr(&["-asap=auto"]).unwrap().is_empty());
        assert_eq!(
            tr(&["-loglevel=9", "--shards", "2"]).unwrap(),
            ["--log-level", "trace", "--shards", "2"]
        );
    }

    #[test]
    fn unknown_single_dash_options_are_errors_and_ignored_ones_warn() {
        assert!(tr(&["-bogus=1"]).unwrap_err().contains("-bogus"));
        let (_, w) =
            translate(["registrar", "-logcolor=off", "-statsfile=x"].map(Into::into)).unwrap();
        assert_eq!(w.len(), 2);
        assert!(tr(&["-asap"]).unwrap_err().contains("expected -asap=VALUE"));
    }
}
