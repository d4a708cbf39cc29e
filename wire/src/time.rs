//! Time as the sans-IO parts see it (the shard, the client cores): a number
//! the caller passes in. Nothing here reads a clock, so whole clusters and
//! client cores can be stepped through virtual or scripted time.

use core::fmt;
use core::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: microseconds since an epoch the caller chose (a runtime
/// uses its start-up instant; tests use 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// The epoch.
    pub const ZERO: Self = Self(0);
    /// Never: later than any real time.
    pub const NEVER: Self = Self(u64::MAX);

    /// A time `secs` seconds after the epoch (saturating at [`Self::NEVER`]).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// A time `ms` milliseconds after the epoch (saturating at [`Self::NEVER`]).
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The duration from `earlier` to `self` (zero if `earlier` is later).
    pub const fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Time {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(micros(d)))
    }
}

impl Sub<Duration> for Time {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(micros(d)))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_saturation() {
        assert_eq!(Time::from_secs(2), Time(2_000_000));
        assert_eq!(Time::from_millis(3), Time(3_000));
        assert_eq!(Time::from_secs(u64::MAX), Time::NEVER);
        assert_eq!(Time::from_millis(u64::MAX), Time::NEVER);
        assert_eq!(Time(5).as_micros(), 5);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Time::from_millis(10);
        assert_eq!(t + Duration::from_millis(5), Time::from_millis(15));
        assert_eq!(t - Duration::from_millis(20), Time::ZERO);
        assert_eq!(Time::NEVER + Duration::from_secs(1), Time::NEVER);
        assert_eq!(Time::ZERO + Duration::MAX, Time::NEVER);
        assert_eq!(
            t.saturating_since(Time::from_millis(4)),
            Duration::from_millis(6)
        );
        assert_eq!(Time::ZERO.saturating_since(t), Duration::ZERO);
    }

    #[test]
    fn display_is_seconds_with_micros() {
        assert_eq!(Time(1_234_567).to_string(), "1.234567s");
        assert_eq!(Time::ZERO.to_string(), "0.000000s");
    }
}
