//! A token bucket that may go into debt: the unit every quota is enforced with.
//!
//! A request is always charged in full (Kafka never rejects a request for its quota); when
//! that leaves the bucket below zero, the debt divided by the rate is how long the client
//! must wait before the bucket is even again: the throttle time of KIP-219. Over any window
//! of `W` seconds a client therefore gets at most `rate * W + burst` units through, whatever
//! the shape of its traffic.

use std::time::{Duration, Instant};

/// Longest throttle one request earns (Kafka caps it at its quota window too), so a single
/// huge request does not mute a connection for minutes.
pub const MAX_THROTTLE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units per second.
    rate: f64,
    /// Seconds of `rate` the bucket holds when full.
    burst_secs: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` units per second.
    pub fn new(rate: f64, burst_secs: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst_secs,
            tokens: rate * burst_secs,
            last: now,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Change the refill rate, keeping any debt (a lower share must not forgive it).
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(self.capacity());
    }

    fn capacity(&self) -> f64 {
        self.rate * self.burst_secs
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity());
        self.last = now;
    }

    /// Take `amount` units; returns how long the caller must now wait (zero when the bucket
    /// is not in debt).
    pub fn charge(&mut self, amount: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= amount;
        self.debt_time()
    }

    /// How long until the current debt is repaid, without charging anything.
    pub fn debt(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.debt_time()
    }

    fn debt_time(&self) -> Duration {
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.tokens / self.rate).min(MAX_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_burst_then_throttles_by_the_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 1.0, t0);
        assert_eq!(b.charge(1000.0, t0), Duration::ZERO);
        // 500 units of debt at 1000/s: half a second.
        assert_eq!(b.charge(500.0, t0), Duration::from_millis(500));
        assert_eq!(
            b.debt(t0 + Duration::from_millis(200)),
            Duration::from_millis(300)
        );
        assert_eq!(b.debt(t0 + Duration::from_millis(500)), Duration::ZERO);
    }

    #[test]
    fn long_run_admits_rate_times_window_plus_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 1.0, t0);
        // A client that waits out every throttle and sends 30 units each time.
        let (mut now, mut sent) = (t0, 0.0);
        let end = t0 + Duration::from_secs(30);
        while now < end {
            sent += 30.0;
            now += b.charge(30.0, now).max(Duration::from_millis(1));
        }
        assert!(sent <= 100.0 * 30.0 + 100.0 + 30.0, "{sent}");
        assert!(sent >= 100.0 * 30.0, "{sent}");
    }

    #[test]
    fn lowering_the_rate_keeps_the_debt_and_caps_the_tokens() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000.0, 1.0, t0);
        b.set_rate(100.0, t0);
        assert_eq!(b.charge(100.0, t0), Duration::ZERO);
        assert_eq!(b.charge(100.0, t0), Duration::from_secs(1));
        b.set_rate(50.0, t0);
        assert_eq!(b.debt(t0), Duration::from_secs(2));
    }

    #[test]
    fn a_huge_request_is_throttled_at_most_the_cap() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1.0, 1.0, t0);
        assert_eq!(b.charge(1e9, t0), MAX_THROTTLE);
    }
}
