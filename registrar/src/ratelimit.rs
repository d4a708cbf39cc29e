//! Per-association rate limits for Handle Resolution and Endpoint
//! Unreachable (RFC 5355 §2.7-2.8; RSPLIB's `-maxhrrate` / `-maxeurate`).
//!
//! Same model as RSPLIB, so limits configured for it mean the same here:
//! per association, 64 buckets chosen by a hash of the pool handle; each
//! bucket keeps the times of its last 16 events. The current event is recorded
//! first; the rate is (events kept) / (newest - oldest); an event is allowed
//! when that rate does not exceed the threshold. One event alone is rate 0.

const BUCKETS: usize = 64;
const DEPTH: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    times: [u64; DEPTH],
    head: u8,
    count: u8,
}

/// The limiter state of one association for one kind of event (allocated
/// only when a limit is configured and the association sends such events).
#[derive(Debug)]
pub struct Limiter {
    buckets: Box<[Bucket; BUCKETS]>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            buckets: Box::new([Bucket::default(); BUCKETS]),
        }
    }
}

fn bucket_of(handle: &[u8]) -> usize {
    let mut h: u32 = 0;
    for chunk in handle.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        h ^= u32::from_ne_bytes(w);
    }
    (h as usize) % BUCKETS
}

impl Limiter {
    /// Records an event for `handle` at `now_us` (microseconds) and says
    /// whether it is within `max_rate` events per second.
    pub fn allow(&mut self, handle: &[u8], now_us: u64, max_rate: f64) -> bool {
        let b = &mut self.buckets[bucket_of(handle)];
        b.times[usize::from(b.head)] = now_us;
        b.head = (b.head + 1) % DEPTH as u8;
        b.count = (b.count + 1).min(DEPTH as u8);
        if b.count < 2 {
            return true;
        }
        let newest = now_us;
        let oldest_idx = (usize::from(b.head) + DEPTH - usize::from(b.count)) % DEPTH;
        let span = newest.saturating_sub(b.times[oldest_idx]);
        if span == 0 {
            return false;
        }
        let rate = f64::from(b.count) / (span as f64 / 1e6);
        rate <= max_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_below_threshold_passes_bursts_fail() {
        let mut l = Limiter::default();
        // 5 per second: allowed under a limit of 10/s.
        for i in 0..40 {
            assert!(l.allow(b"pool", i * 200_000, 10.0), "event {i}");
        }
        // A burst of 40 events within 24 ms after a quiet minute: the window
        // counts events, not time, so the first ones are diluted by the old
        // slow events (as in RSPLIB); once the window holds only burst
        // events, everything is refused.
        let t = 100_000_000;
        let verdicts: Vec<bool> = (0..40)
            .map(|i| l.allow(b"pool", t + i * 600, 10.0))
            .collect();
        assert!(
            verdicts.iter().filter(|v| **v).count() <= 16,
            "{verdicts:?}"
        );
        assert!(verdicts[16..].iter().all(|v| !v), "{verdicts:?}");
        // Another pool (most likely another bucket) is unaffected.
        assert!(l.allow(b"other", t + 10_000, 10.0));
        // Identical timestamps are an infinite rate.
        let mut l = Limiter::default();
        assert!(l.allow(b"p", 5, 1000.0));
        assert!(!l.allow(b"p", 5, 1000.0));
    }
}
