//! `poolctl decode`: hex in, one JSON object per message out.
//!
//! Each HEX argument is one message; with none, standard input is read, one
//! message per line (empty lines and `#` comments skipped). A message that
//! does not decode is reported on standard error, naming the input, the
//! field that failed and the Operation Error cause a server would send back;
//! the remaining inputs are still decoded, and the command then fails.

use std::io::{self, BufRead, Write};

use clap::{Args, ValueEnum};
use rserpool_wire::Protocol;

use crate::{hex, json};

/// The protocol named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// ASAP (RFC 5352).
    Asap,
    /// ENRP (RFC 5353).
    Enrp,
}

/// Arguments of `poolctl decode`.
#[derive(Clone, Debug, Args)]
pub struct DecodeArgs {
    /// Decode ENRP messages (same as `--protocol enrp`).
    #[arg(long, conflicts_with = "protocol")]
    pub enrp: bool,
    /// The protocol of the messages.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Asap)]
    pub protocol: ProtocolArg,
    /// Indent the JSON (one object still follows the other).
    #[arg(long)]
    pub pretty: bool,
    /// Messages in hex, one per argument; whitespace and colons inside are
    /// ignored, a leading `0x` is allowed. Without any, standard input is
    /// read, one message per line.
    #[arg(value_name = "HEX")]
    pub hex: Vec<String>,
}

impl DecodeArgs {
    /// The protocol the flags select.
    pub const fn protocol(&self) -> Protocol {
        match (self.enrp, self.protocol) {
            (true, _) | (false, ProtocolArg::Enrp) => Protocol::Enrp,
            (false, ProtocolArg::Asap) => Protocol::Asap,
        }
    }
}

/// Runs `poolctl decode` on the arguments, or on `stdin` when there are
/// none. Returns whether every message decoded.
pub fn run(
    args: &DecodeArgs,
    stdin: impl BufRead,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<bool> {
    let mut d = Decoder {
        protocol: args.protocol(),
        pretty: args.pretty,
        out,
        err,
        ok: true,
    };
    if args.hex.is_empty() {
        d.lines(stdin)?;
    } else {
        for (i, h) in args.hex.iter().enumerate() {
            d.one(&format!("argument {}", i + 1), h)?;
        }
    }
    Ok(d.ok)
}

struct Decoder<'o, O, E> {
    protocol: Protocol,
    pretty: bool,
    out: &'o mut O,
    err: &'o mut E,
    ok: bool,
}

/// How many offending bytes an error line shows at most.
const OFFENDING_SHOWN: usize = 32;

impl<O: Write, E: Write> Decoder<'_, O, E> {
    fn lines(&mut self, mut input: impl BufRead) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            n += 1;
            // Invalid UTF-8 becomes U+FFFD, which the hex parser reports.
            let line = String::from_utf8_lossy(&buf);
            let text = line.split('#').next().unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            self.one(&format!("line {n}"), text)?;
        }
    }

    fn one(&mut self, label: &str, text: &str) -> io::Result<()> {
        let bytes = match hex::parse(text) {
            Ok(b) => b,
            Err(e) => {
                self.ok = false;
                return writeln!(
                    self.err,
                    "poolctl decode: {label}: {e} (cause: none, not hex)"
                );
            }
        };
        match json::decode(self.protocol, &bytes) {
            Ok(v) => {
                let s = if self.pretty {
                    serde_json::to_string_pretty(&v)
                } else {
                    serde_json::to_string(&v)
                };
                writeln!(self.out, "{}", s.map_err(io::Error::other)?)
            }
            Err(e) => {
                self.ok = false;
                let cause = match e.cause() {
                    Some(c) => format!("cause: {c}"),
                    None => "cause: none, a server discards it silently".to_owned(),
                };
                let offending = match e.offending(&bytes) {
                    Some(b) if b.len() > OFFENDING_SHOWN => {
                        format!("; offending bytes: {}...", json::hex(&b[..OFFENDING_SHOWN]))
                    }
                    Some(b) if !b.is_empty() => format!("; offending bytes: {}", json::hex(b)),
                    _ => String::new(),
                };
                let proto = match self.protocol {
                    Protocol::Asap => "ASAP",
                    Protocol::Enrp => "ENRP",
                };
                writeln!(
                    self.err,
                    "poolctl decode: {label}: not a valid {proto} message: {e} ({cause}{offending})"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(hex: &[&str], stdin: &str, enrp: bool) -> (bool, String, String) {
        let args = DecodeArgs {
            enrp,
            protocol: ProtocolArg::Asap,
            pretty: false,
            hex: hex.iter().map(|s| (*s).to_owned()).collect(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ok = run(&args, stdin.as_bytes(), &mut out, &mut err).unwrap();
        (
            ok,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    const HR: &str = "05 00 00 13 00 09 00 0f 45 63 68 6f 53 65 72 76 69 63 65 00";

    #[test]
    fn arguments_and_errors() {
        let (ok, out, err) = decode(&[HR, "zz", "05000004"], "", false);
        assert!(!ok);
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains("\"ASAP_HANDLE_RESOLUTION\""));
        let errs: Vec<_> = err.lines().collect();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("poolctl decode: argument 2: bad hex"));
        assert!(errs[1].starts_with("poolctl decode: argument 3: not a valid ASAP message"));
        assert!(errs[1].contains("Pool Handle: missing mandatory parameter"));
        assert!(errs[1].contains("Invalid Values (0x0003)"));
    }

    #[test]
    fn stdin_lines_skip_blanks_and_comments() {
        let input =
            format!("\n# a comment\n{HR}   # trailing comment\r\n\n0x0200000c 11223344 00000000\n");
        let (ok, out, err) = decode(&[], &input, true);
        // Read as ENRP, the first is a List Request (0x05) with bytes left
        // after the server ids; the second is a Handle Table Request.
        assert!(!ok);
        assert!(err.starts_with("poolctl decode: line 3: not a valid ENRP message"));
        assert_eq!(out.lines().count(), 1);
        assert!(out.contains("ENRP_HANDLE_TABLE_REQUEST"));
    }

    #[test]
    fn protocol_flag() {
        let a = DecodeArgs {
            enrp: false,
            protocol: ProtocolArg::Enrp,
            pretty: true,
            hex: vec![],
        };
        assert_eq!(a.protocol(), Protocol::Enrp);
        let (ok, out, err) = decode(&[HR], "", false);
        assert!(ok, "{err}");
        assert_eq!(out.lines().count(), 1);
    }
}
