//! Capacity planning: step the offered rate until a latency objective fails
//! and report the highest rate that met it.

use super::StepResult;
use super::stats::{Kind, fmt_ns};

/// One latency objective, e.g. `p99=1ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// As written (`p99`).
    pub label: String,
    /// The quantile (0.99).
    pub quantile: f64,
    /// The limit in nanoseconds.
    pub limit_ns: u64,
}

/// Parses `p99=1ms[,p50=200us,...]` (units ns, us, ms, s).
pub fn parse_objectives(s: &str) -> Result<Vec<Objective>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (label, limit) = part
            .split_once('=')
            .ok_or_else(|| format!("objective {part:?}: want pNN=LIMIT, e.g. p99=1ms"))?;
        let q: f64 = label
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .filter(|q: &f64| *q > 0.0 && *q < 100.0)
            .ok_or_else(|| format!("objective {part:?}: {label:?} is not a percentile like p99"))?;
        v.push(Objective {
            label: label.to_string(),
            quantile: q / 100.0,
            limit_ns: parse_duration_ns(limit).ok_or_else(|| {
                format!("objective {part:?}: bad limit {limit:?} (e.g. 1ms, 500us)")
            })?,
        });
    }
    if v.is_empty() {
        return Err("no latency objective given (e.g. --objective p99=1ms)".into());
    }
    Ok(v)
}

fn parse_duration_ns(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ns") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0 && v.is_finite()).then_some((v * mul) as u64)
}

/// Which request type a sweep steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepKind {
    /// Handle resolutions (`--rate`).
    Resolution,
    /// Re-registrations (`--reg-rate`).
    Registration,
}

impl SweepKind {
    /// The counted message type.
    pub fn kind(self) -> Kind {
        match self {
            Self::Resolution => Kind::HandleResolution,
            Self::Registration => Kind::Reregistration,
        }
    }
}

/// Whether a step met the objectives: every request answered correctly and
/// in time, at least 95 % of the offered rate answered, and each
/// percentile within its limit. `Err` says why not.
pub fn judge(step: &StepResult, kind: SweepKind, objectives: &[Objective]) -> Result<(), String> {
    let k = kind.kind();
    let st = step.stats.kind(k);
    if st.wrong > 0 || st.errors > 0 || st.timeouts > 0 {
        return Err(format!(
            "{} wrong, {} errors, {} timeouts",
            st.wrong, st.errors, st.timeouts
        ));
    }
    let offered = match kind {
        SweepKind::Resolution => step.offered_res,
        SweepKind::Registration => step.offered_reg,
    };
    let got = step.answered_rate(k);
    if got < 0.95 * offered {
        return Err(format!("answered {got:.0}/s of {offered:.0}/s offered"));
    }
    for o in objectives {
        let v = st.percentile_ns(o.quantile);
        if v > o.limit_ns {
            return Err(format!(
                "{} {} > {}",
                o.label,
                fmt_ns(v),
                fmt_ns(o.limit_ns)
            ));
        }
    }
    Ok(())
}

/// The steps of a sweep: `start`, then `+ step` (if given) or `* factor`,
/// while the previous step passed and the rate is at most `max`.
#[derive(Clone, Debug)]
pub struct Stepper {
    /// First rate.
    pub start: f64,
    /// Additive step.
    pub step: Option<f64>,
    /// Multiplicative step (used without `step`).
    pub factor: f64,
    /// Highest rate tried.
    pub max: f64,
}

impl Stepper {
    /// The rate after `prev`, or `None` past the maximum.
    pub fn next(&self, prev: Option<f64>) -> Option<f64> {
        let r = match prev {
            None => self.start,
            Some(p) => match self.step {
                Some(s) => p + s,
                None => p * self.factor,
            },
        };
        (r <= self.max * (1.0 + 1e-9)).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse() {
        let o = parse_objectives("p99=1ms, p50=200us,p99.9=2.5ms").unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].limit_ns, 1_000_000);
        assert_eq!(o[1].limit_ns, 200_000);
        assert!((o[2].quantile - 0.999).abs() < 1e-12);
        assert_eq!(o[2].limit_ns, 2_500_000);
        for bad in ["", "p99", "q99=1ms", "p99=1", "p100=1ms", "p99=-1ms"] {
            assert!(parse_objectives(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stepper_stops_at_max() {
        let s = Stepper {
            start: 100.0,
            step: Some(100.0),
            factor: 2.0,
            max: 300.0,
        };
        assert_eq!(s.next(None), Some(100.0));
        assert_eq!(s.next(Some(200.0)), Some(300.0));
        assert_eq!(s.next(Some(300.0)), None);
        let f = Stepper { step: None, ..s };
        assert_eq!(f.next(Some(100.0)), Some(200.0));
    }

    #[test]
    fn judging() {
        use super::super::stats::Stats;
        let mut stats = Stats::new();
        for _ in 0..1000 {
            stats.sent(Kind::HandleResolution);
            stats.ok(Kind::HandleResolution, 100_000);
        }
        let mut step = StepResult {
            step: 0,
            offered_res: 1000.0,
            offered_reg: 0.0,
            secs: 1.0,
            stats,
            registrar_cpu: None,
            loadgen_cpu: None,
        };
        let o = parse_objectives("p99=1ms").unwrap();
        assert!(judge(&step, SweepKind::Resolution, &o).is_ok());
        let tight = parse_objectives("p99=50us").unwrap();
        assert!(judge(&step, SweepKind::Resolution, &tight).is_err());
        step.offered_res = 2000.0;
        assert!(judge(&step, SweepKind::Resolution, &o).is_err());
        step.offered_res = 1000.0;
        step.stats.timeout(Kind::HandleResolution);
        assert!(judge(&step, SweepKind::Resolution, &o).is_err());
    }
}
