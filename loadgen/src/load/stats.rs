//! Counters and latency histograms per message type, merged across worker
//! threads, and their renderings: the end-of-run table, the progress line
//! and the JSON summary.

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The message types (request kinds) the load generator counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// First registration of a PE (at set-up, or a churn join).
    Registration,
    /// A re-registration the load generator asked for (`--reg-rate`,
    /// `--reg-in-flight`, load changes) or that the PE made on its interval.
    Reregistration,
    /// Deregistration (at the end, or a churn leave).
    Deregistration,
    /// Handle resolution by a PU.
    HandleResolution,
    /// Endpoint Unreachable report (no answer expected: only sent).
    EndpointUnreachable,
    /// Keep-alives received from the registrar and answered.
    KeepAlive,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Self; 6] = [
        Self::Registration,
        Self::Reregistration,
        Self::Deregistration,
        Self::HandleResolution,
        Self::EndpointUnreachable,
        Self::KeepAlive,
    ];

    /// Snake-case name (JSON keys, interval-log tags).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Reregistration => "reregistration",
            Self::Deregistration => "deregistration",
            Self::HandleResolution => "handle_resolution",
            Self::EndpointUnreachable => "endpoint_unreachable",
            Self::KeepAlive => "keep_alive",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// Whether requests of this kind expect an answer (and so have a
    /// latency).
    pub const fn answered(self) -> bool {
        !matches!(self, Self::EndpointUnreachable | Self::KeepAlive)
    }
}

/// Highest latency a histogram records (60 s, in nanoseconds); larger values
/// are clamped to it.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are valid")
}

/// Counters and latencies of one kind.
#[derive(Clone, Debug)]
pub struct KindStats {
    /// Requests sent (or, for keep-alives, received and answered).
    pub sent: u64,
    /// Answered correctly (grants, resolutions naming only the asked pool's
    /// PEs, confirmed deregistrations).
    pub ok: u64,
    /// Answered, but the answer was wrong (a PE not registered in the asked
    /// pool, a duplicate, a wrong port, an answer nobody asked for, a
    /// refusal without a cause, an echo that differs from what was sent).
    pub wrong: u64,
    /// Answered with an error or a refusal (cause given), or failed for lack
    /// of a registrar.
    pub errors: u64,
    /// No answer in time (response timeout, or still unanswered when the run
    /// ended).
    pub timeouts: u64,
    /// Latency of answered requests (ok, wrong and error answers), in
    /// nanoseconds from the intended send time.
    pub latency: Histogram<u64>,
}

impl Default for KindStats {
    fn default() -> Self {
        Self {
            sent: 0,
            ok: 0,
            wrong: 0,
            errors: 0,
            timeouts: 0,
            latency: histogram(),
        }
    }
}

impl KindStats {
    /// Requests with an outcome: ok + wrong + errors + timeouts.
    pub fn finished(&self) -> u64 {
        self.ok + self.wrong + self.errors + self.timeouts
    }

    fn merge(&mut self, o: &Self) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.wrong += o.wrong;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.latency
            .add(&o.latency)
            .expect("histograms with the same bounds merge");
    }

    /// A latency percentile in nanoseconds (0 when nothing was recorded).
    pub fn percentile_ns(&self, q: f64) -> u64 {
        if self.latency.is_empty() {
            0
        } else {
            self.latency.value_at_quantile(q)
        }
    }
}

/// Stats of every kind, plus wrong-answer reasons and error causes.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    kinds: [KindStats; 6],
    /// Wrong answers by reason.
    pub wrong_reasons: std::collections::BTreeMap<String, u64>,
    /// Errors by reason (cause names).
    pub error_reasons: std::collections::BTreeMap<String, u64>,
    /// Other events worth knowing (registrar connections lost, ...).
    pub notes: std::collections::BTreeMap<String, u64>,
}

impl Stats {
    /// Empty stats.
    pub fn new() -> Self {
        Self::default()
    }

    /// One kind's stats.
    pub fn kind(&self, k: Kind) -> &KindStats {
        &self.kinds[k.index()]
    }

    /// One kind's stats, mutable.
    pub fn kind_mut(&mut self, k: Kind) -> &mut KindStats {
        &mut self.kinds[k.index()]
    }

    /// Counts a request sent.
    pub fn sent(&mut self, k: Kind) {
        self.kinds[k.index()].sent += 1;
    }

    fn record(&mut self, k: Kind, latency_ns: u64) {
        let v = latency_ns.clamp(1, MAX_LATENCY_NS);
        self.kinds[k.index()]
            .latency
            .record(v)
            .expect("value clamped into the histogram's range");
    }

    /// A correct answer after `latency_ns`.
    pub fn ok(&mut self, k: Kind, latency_ns: u64) {
        self.kinds[k.index()].ok += 1;
        self.record(k, latency_ns);
    }

    /// A wrong answer after `latency_ns` (or none: an unsolicited one).
    pub fn wrong(&mut self, k: Kind, latency_ns: Option<u64>, reason: &str) {
        self.kinds[k.index()].wrong += 1;
        if let Some(l) = latency_ns {
            self.record(k, l);
        }
        *self
            .wrong_reasons
            .entry(format!("{}: {reason}", k.name()))
            .or_default() += 1;
    }

    /// An error answer after `latency_ns` (none: failed without an answer).
    pub fn error(&mut self, k: Kind, latency_ns: Option<u64>, reason: &str) {
        self.kinds[k.index()].errors += 1;
        if let Some(l) = latency_ns {
            self.record(k, l);
        }
        *self
            .error_reasons
            .entry(format!("{}: {reason}", k.name()))
            .or_default() += 1;
    }

    /// A timeout.
    pub fn timeout(&mut self, k: Kind) {
        self.kinds[k.index()].timeouts += 1;
    }

    /// Adds `o` into `self`.
    pub fn merge(&mut self, o: &Self) {
        for (a, b) in self.kinds.iter_mut().zip(&o.kinds) {
            a.merge(b);
        }
        for (r, n) in &o.wrong_reasons {
            *self.wrong_reasons.entry(r.clone()).or_default() += n;
        }
        for (r, n) in &o.error_reasons {
            *self.error_reasons.entry(r.clone()).or_default() += n;
        }
        for (r, n) in &o.notes {
            *self.notes.entry(r.clone()).or_default() += n;
        }
    }

    /// Counts an event that is neither a request nor an answer.
    pub fn note(&mut self, what: &str) {
        *self.notes.entry(what.to_string()).or_default() += 1;
    }

    /// Whether nothing at all was counted.
    pub fn is_empty(&self) -> bool {
        self.kinds.iter().all(|k| k.sent == 0 && k.finished() == 0)
    }

    /// The table printed at the end: one row per kind that saw traffic.
    /// `secs` is the window the rates are computed over.
    pub fn table(&self, title: &str, secs: f64) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{title} ({secs:.2} s)");
        let _ = writeln!(
            s,
            "{:<21} {:>9} {:>10} {:>9} {:>7} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "type",
            "sent",
            "rate/s",
            "ok",
            "wrong",
            "errors",
            "timeouts",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max"
        );
        for k in Kind::ALL {
            let st = self.kind(k);
            if st.sent == 0 && st.finished() == 0 {
                continue;
            }
            let rate = if secs > 0.0 {
                st.sent as f64 / secs
            } else {
                0.0
            };
            let lat = |q: f64| {
                if k.answered() && !st.latency.is_empty() {
                    fmt_ns(st.percentile_ns(q))
                } else {
                    "-".to_string()
                }
            };
            let max = if k.answered() && !st.latency.is_empty() {
                fmt_ns(st.latency.max())
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                s,
                "{:<21} {:>9} {:>10.0} {:>9} {:>7} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                k.name(),
                st.sent,
                rate,
                st.ok,
                st.wrong,
                st.errors,
                st.timeouts,
                lat(0.5),
                lat(0.9),
                lat(0.99),
                lat(0.999),
                max
            );
        }
        for (r, n) in &self.wrong_reasons {
            let _ = writeln!(s, "  wrong: {r}: {n}");
        }
        for (r, n) in &self.error_reasons {
            let _ = writeln!(s, "  error: {r}: {n}");
        }
        for (r, n) in &self.notes {
            let _ = writeln!(s, "  note: {r}: {n}");
        }
        s
    }

    /// JSON object: per kind counts, rate over `secs` and latency
    /// percentiles in microseconds.
    pub fn to_json(&self, secs: f64) -> Value {
        let mut m = serde_json::Map::new();
        for k in Kind::ALL {
            let st = self.kind(k);
            let us = |v: u64| v as f64 / 1000.0;
            let lat = if st.latency.is_empty() {
                Value::Null
            } else {
                json!({
                    "count": st.latency.len(),
                    "p50_us": us(st.percentile_ns(0.5)),
                    "p90_us": us(st.percentile_ns(0.9)),
                    "p99_us": us(st.percentile_ns(0.99)),
                    "p99_9_us": us(st.percentile_ns(0.999)),
                    "max_us": us(st.latency.max()),
                    "mean_us": st.latency.mean() / 1000.0,
                })
            };
            m.insert(
                k.name().to_string(),
                json!({
                    "sent": st.sent,
                    "ok": st.ok,
                    "wrong": st.wrong,
                    "errors": st.errors,
                    "timeouts": st.timeouts,
                    "rate_per_s": if secs > 0.0 { st.sent as f64 / secs } else { 0.0 },
                    "latency": lat,
                }),
            );
        }
        json!({
            "window_s": secs,
            "kinds": Value::Object(m),
            "wrong_reasons": self.wrong_reasons,
            "error_reasons": self.error_reasons,
            "notes": self.notes,
        })
    }
}

/// A latency in nanoseconds as a short human string (us below 10 ms).
pub fn fmt_ns(ns: u64) -> String {
    if ns < 10_000_000 {
        format!("{:.1}us", ns as f64 / 1000.0)
    } else {
        format!("{:.1}ms", ns as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_latencies() {
        let mut a = Stats::new();
        a.sent(Kind::HandleResolution);
        a.ok(Kind::HandleResolution, 1_000);
        let mut b = Stats::new();
        b.sent(Kind::HandleResolution);
        b.wrong(Kind::HandleResolution, Some(3_000), "bad pe");
        b.sent(Kind::HandleResolution);
        b.timeout(Kind::HandleResolution);
        a.merge(&b);
        let k = a.kind(Kind::HandleResolution);
        assert_eq!((k.sent, k.ok, k.wrong, k.timeouts), (3, 1, 1, 1));
        assert_eq!(k.latency.len(), 2);
        assert_eq!(k.finished(), 3);
        assert_eq!(a.wrong_reasons["handle_resolution: bad pe"], 1);
        let t = a.table("run", 1.0);
        assert!(t.contains("handle_resolution"), "{t}");
        assert!(!t.contains("deregistration"), "{t}");
    }

    #[test]
    fn out_of_range_latencies_are_clamped() {
        let mut a = Stats::new();
        a.ok(Kind::Registration, 0);
        a.ok(Kind::Registration, u64::MAX);
        let k = a.kind(Kind::Registration);
        assert_eq!(k.latency.len(), 2);
        assert!(k.latency.max() >= MAX_LATENCY_NS);
    }
}
