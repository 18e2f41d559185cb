//! Send pacing without drift.
//!
//! Owns: [`Pacer`], which releases the n-th send at `start + n / rate` (an absolute schedule, so sleep
//! overshoot never accumulates: a late sleep is followed by sends that do not wait). If the sender falls
//! behind by more than a bounded burst, the schedule is moved forward instead of bursting without limit;
//! the skipped slots are counted so a result can say the target rate was not met.

use std::time::{Duration, Instant};

/// How far behind schedule a sender may be before missed slots are dropped rather than caught up.
pub const MAX_CATCH_UP: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Pacer {
    /// Seconds between sends; `None` = unlimited.
    period: Option<f64>,
    start: Instant,
    /// Index of the next send slot.
    next: u64,
    /// Slots given up because the sender was more than [`MAX_CATCH_UP`] behind.
    pub skipped: u64,
}

impl Pacer {
    /// `rate` in events/s; 0 or less means unlimited.
    pub fn new(rate: f64, start: Instant) -> Pacer {
        let period = if rate > 0.0 { Some(1.0 / rate) } else { None };
        Pacer {
            period,
            start,
            next: 0,
            skipped: 0,
        }
    }

    /// When the next slot is due, or `None` when unlimited. Advances the schedule.
    pub fn next_due(&mut self, now: Instant) -> Option<Instant> {
        let period = self.period?;
        let mut due = self.start + Duration::from_secs_f64(self.next as f64 * period);
        if now > due + MAX_CATCH_UP {
            // Re-anchor: drop slots older than the catch-up window.
            let behind = now.duration_since(due) - MAX_CATCH_UP;
            let drop = (behind.as_secs_f64() / period) as u64;
            self.skipped += drop;
            self.next += drop;
            due = self.start + Duration::from_secs_f64(self.next as f64 * period);
        }
        self.next += 1;
        Some(due)
    }

    /// Blocks until the next slot, but never past `deadline`. Returns false when the deadline came first.
    pub fn wait(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        match self.next_due(now) {
            None => now < deadline,
            Some(due) if due >= deadline => {
                if deadline > now {
                    std::thread::sleep(deadline - now);
                }
                false
            }
            Some(due) => {
                if due > now {
                    std::thread::sleep(due - now);
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_absolute() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000.0, t0);
        // Asking late (but within the catch-up window) does not shift later slots.
        let d0 = p.next_due(t0 + Duration::from_millis(100)).unwrap();
        let d1 = p.next_due(t0 + Duration::from_millis(100)).unwrap();
        assert_eq!(d0, t0);
        assert_eq!(d1, t0 + Duration::from_millis(1));
        assert_eq!(p.skipped, 0);
    }

    #[test]
    fn bounded_catch_up() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000.0, t0);
        let due = p.next_due(t0 + Duration::from_secs(2)).unwrap();
        // 2 s behind, allowed 0.5 s: about 1500 slots skipped.
        assert!((1499..=1501).contains(&p.skipped), "{}", p.skipped);
        assert!(due >= t0 + Duration::from_millis(1499));
    }

    #[test]
    fn unlimited_and_real_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0.0, t0);
        assert!(p.next_due(t0).is_none());

        let start = Instant::now();
        let deadline = start + Duration::from_millis(200);
        let mut p = Pacer::new(2000.0, start);
        let mut n = 0u64;
        while p.wait(deadline) {
            n += 1;
        }
        // 2000/s for 0.2 s = 400 sends; allow scheduling slack on a busy machine.
        assert!((360..=401).contains(&n), "sent {n}");
    }
}
