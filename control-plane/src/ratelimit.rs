//! A per-client-IP token bucket with a bounded table, for sign-up and login.
//!
//! Each client IP gets `burst` tokens, refilled at `per_second`; a request takes one or
//! is refused with 429. The table holds at most `max_clients` buckets: when it is full,
//! buckets that have refilled completely are dropped first (they are indistinguishable
//! from a new client), then the least recently used one. Evicting a drained bucket gives
//! that client a fresh burst: that is the price of bounded memory.
//!
//! The client IP is the TCP peer address. `X-Forwarded-For` is not trusted: a proxy in
//! front must be configured explicitly when one exists.

use crate::error::Error;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct RateLimitConfig {
    /// Requests a client may make at once.
    pub burst: u32,
    /// Tokens added back per second.
    pub per_second: f64,
    /// Most client IPs tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            burst: 10,
            per_second: 0.5,
            max_clients: 10_000,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    config: RateLimitConfig,
    // A std Mutex: held only for a few arithmetic operations, never across an await.
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.config.per_second).min(f64::from(self.config.burst));
        bucket.last = now;
    }

    /// Takes a token for `ip`; `false` when the client must wait.
    pub fn check(&self, ip: IpAddr) -> bool {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&ip) && buckets.len() >= self.config.max_clients.max(1) {
            let burst = f64::from(self.config.burst);
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + elapsed * self.config.per_second < burst
            });
            if buckets.len() >= self.config.max_clients.max(1) {
                if let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k) {
                    buckets.remove(&oldest);
                }
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: f64::from(self.config.burst),
            last: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn tracked_clients(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The error for a client whose bucket is empty (429, gRPC RESOURCE_EXHAUSTED).
pub(crate) fn refused(ip: IpAddr) -> Error {
    Error::RateLimited(format!(
        "too many sign-up or login attempts from {ip}; wait a few seconds and retry"
    ))
}

/// Axum middleware: refuses with 429 and the error envelope when the peer's bucket is empty.
pub async fn limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !limiter.check(ip) {
        return refused(ip).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refuses_after_burst_and_refills() {
        let limiter = RateLimiter::new(RateLimitConfig {
            burst: 2,
            per_second: 1.0,
            max_clients: 10,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(limiter.check_at(ip, t0));
        assert!(limiter.check_at(ip, t0));
        assert!(!limiter.check_at(ip, t0));
        assert!(limiter.check_at(ip, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn table_is_bounded() {
        let limiter = RateLimiter::new(RateLimitConfig {
            burst: 1,
            per_second: 0.001,
            max_clients: 3,
        });
        let t0 = Instant::now();
        for i in 0..100u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            assert!(limiter.check_at(ip, t0 + Duration::from_millis(u64::from(i))));
            assert!(limiter.tracked_clients() <= 3);
        }
    }
}
