//! Per-tenant quotas on this broker: ingress bytes/s, egress bytes/s, requests/s and
//! request time (seconds of handling per second, Kafka's request percentage).
//!
//! A tenant's limits are cell-wide (its plan, from the cell metadata). This broker enforces
//! its *share* of each: what the cell controller's quota coordinator last assigned it
//! (`cells/src/quota.rs`, from the usage every broker reports with its heartbeat), or, when
//! the coordinator has not spoken for [`SHARE_TTL`], an equal split over the cell's active
//! brokers. Shares are token buckets ([`bucket::TokenBucket`]); the connection turns a
//! bucket's debt into KIP-219 throttling (`throttle_time_ms`, then muting the connection).
//!
//! Broker-wide safe limits (`QuotaConfig::broker_*`): when this broker's total ingress or
//! egress nears its limit, every active tenant's rate here is scaled back by the same factor,
//! in proportion to its allocation (Kora's backpressure), whatever its own quota.
//!
//! Owns only in-memory soft state; must never depend on the connection or handlers.

pub mod bucket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tracing::info;

use crate::namespace::TenantId;
use bucket::TokenBucket;

/// How long a share from the coordinator is trusted without a newer one.
pub const SHARE_TTL: Duration = Duration::from_secs(5);

/// How often usage is measured, reported and backpressure recomputed.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Quiet periods in a row after which a throttled tenant is logged as no longer throttled.
const QUIET_PERIODS_TO_CLEAR: u32 = 3;

/// Broker-wide backpressure starts when total usage passes this fraction of the limit.
const BACKPRESSURE_AT: f64 = 0.9;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Produce request bytes.
    Ingress = 0,
    /// Fetch response bytes.
    Egress = 1,
    /// Requests of any kind.
    Requests = 2,
    /// Seconds spent handling requests (decoding, the handler's work, encoding; not time
    /// spent waiting on a long poll, fsync or replication).
    RequestTime = 3,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 4] = [
        QuotaKind::Ingress,
        QuotaKind::Egress,
        QuotaKind::Requests,
        QuotaKind::RequestTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::Ingress => "ingress",
            QuotaKind::Egress => "egress",
            QuotaKind::Requests => "requests",
            QuotaKind::RequestTime => "request_time",
        }
    }
}

/// Per-kind values, indexed by [`QuotaKind`].
pub type PerKind<T> = [T; 4];

/// Broker-level quota settings (one typed config per process: part of `BrokerConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    /// Seconds of its rate a tenant may send at once before it is throttled.
    pub burst_secs: f64,
    /// This broker's safe total ingress, bytes/s (0: none).
    pub broker_ingress_bytes_per_sec: u64,
    /// This broker's safe total egress, bytes/s (0: none).
    pub broker_egress_bytes_per_sec: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            burst_secs: 1.0,
            broker_ingress_bytes_per_sec: 0,
            broker_egress_bytes_per_sec: 0,
        }
    }
}

/// A tenant's cell-wide limits from its plan (0: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TenantLimits {
    /// Rates per second, by [`QuotaKind`].
    pub per_sec: PerKind<f64>,
    /// Open connections across the cell; each broker allows an even share.
    pub max_connections: u32,
    /// New connections per second across the cell, split evenly.
    pub connection_attempts_per_sec: u32,
    /// The largest request frame after authentication (0: only the broker's own bound).
    pub max_request_bytes: u32,
}

/// What this broker saw of one tenant since the previous report (for the coordinator).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    pub tenant: TenantId,
    /// Units per second over the period.
    pub rates: PerKind<f64>,
    /// Whether the tenant was throttled here during the period (its demand may be higher).
    pub throttled: PerKind<bool>,
}

/// The share of one tenant's limits the coordinator assigned this broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub tenant: TenantId,
    pub rates: PerKind<f64>,
}

pub struct Quotas {
    config: QuotaConfig,
    tenants: RwLock<HashMap<TenantId, Arc<TenantQuota>>>,
    /// Active brokers in the cell (the fallback split), at least 1.
    active_brokers: Mutex<usize>,
    /// The last period's reports, for the next heartbeat.
    last_reports: Mutex<Vec<UsageReport>>,
}

/// One tenant's quota state on this broker; connections hold it for their lifetime.
pub struct TenantQuota {
    tenant: TenantId,
    state: Mutex<TenantState>,
    /// Authenticated connections open on this broker.
    connections: AtomicUsize,
}

/// One open connection counted against its tenant's limit; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<TenantQuota>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

struct TenantState {
    limits: TenantLimits,
    /// The coordinator's share and when it came.
    share: Option<(PerKind<f64>, Instant)>,
    /// Broker-wide backpressure factor per kind (1: none).
    scale: PerKind<f64>,
    buckets: PerKind<Option<TokenBucket>>,
    /// Usage since `period_start`.
    used: PerKind<f64>,
    /// Units per second over the previous period.
    last_rates: PerKind<f64>,
    throttled_in_period: PerKind<bool>,
    /// Since when the tenant has been throttled, per kind (for the INFO lines).
    throttled_since: PerKind<Option<Instant>>,
    /// Periods in a row without throttling, per kind.
    quiet_periods: PerKind<u32>,
    period_start: Instant,
    /// Active brokers the limits are split over.
    brokers: usize,
    /// New connections per second on this broker (`None`: unlimited).
    attempts: Option<TokenBucket>,
}

impl Quotas {
    pub fn new(config: QuotaConfig) -> Quotas {
        Quotas {
            config,
            tenants: RwLock::new(HashMap::new()),
            active_brokers: Mutex::new(1),
            last_reports: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// The tenant's quota state (unlimited until [`Quotas::set_limits`] says otherwise).
    pub fn tenant(&self, tenant: &TenantId) -> Arc<TenantQuota> {
        if let Some(q) = self.tenants.read().expect("quota lock").get(tenant) {
            return q.clone();
        }
        let mut map = self.tenants.write().expect("quota lock");
        map.entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(TenantQuota {
                    tenant: tenant.clone(),
                    state: Mutex::new(TenantState::new(Instant::now())),
                    connections: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Apply the cell's view: every tenant's limits and how many brokers are active.
    /// Tenants no longer listed are forgotten (their connections are closed elsewhere).
    pub fn set_limits(&self, limits: &HashMap<TenantId, TenantLimits>, active_brokers: usize) {
        let brokers = active_brokers.max(1);
        *self.active_brokers.lock().expect("quota lock") = brokers;
        let now = Instant::now();
        for (tenant, l) in limits {
            self.tenant(tenant).update(|s| {
                s.limits = *l;
                s.apply(brokers, self.config.burst_secs, now);
            });
        }
        self.tenants
            .write()
            .expect("quota lock")
            .retain(|t, _| limits.contains_key(t));
    }

    /// Apply the coordinator's shares for this broker.
    pub fn set_shares(&self, shares: &[Share]) {
        let brokers = *self.active_brokers.lock().expect("quota lock");
        let now = Instant::now();
        for share in shares {
            self.tenant(&share.tenant).update(|s| {
                s.share = Some((share.rates, now));
                s.apply(brokers, self.config.burst_secs, now);
            });
        }
    }

    /// End the period (see [`Quotas::end_period`]) and keep its reports for
    /// [`Quotas::latest_reports`]. The broker calls this every [`PERIOD`].
    pub fn tick(&self) {
        let reports = self.end_period();
        *self.last_reports.lock().expect("quota lock") = reports;
    }

    /// What the last period's reports said (sent with the cell heartbeat).
    pub fn latest_reports(&self) -> Vec<UsageReport> {
        self.last_reports.lock().expect("quota lock").clone()
    }

    /// Close the current period: what every tenant used (for the coordinator), INFO lines
    /// for tenants no longer throttled, share metrics, and broker-wide backpressure for the
    /// next period. Call about once a second.
    pub fn end_period(&self) -> Vec<UsageReport> {
        let now = Instant::now();
        let brokers = *self.active_brokers.lock().expect("quota lock");
        let tenants: Vec<Arc<TenantQuota>> = self
            .tenants
            .read()
            .expect("quota lock")
            .values()
            .cloned()
            .collect();
        let mut reports = Vec::with_capacity(tenants.len());
        for q in &tenants {
            reports.push(q.update(|s| s.end_period(&q.tenant, now)));
        }
        let limits = [
            self.config.broker_ingress_bytes_per_sec as f64,
            self.config.broker_egress_bytes_per_sec as f64,
            0.0,
            0.0,
        ];
        for kind in QuotaKind::ALL {
            let k = kind as usize;
            let scale = backpressure(limits[k], &reports, &tenants, kind, brokers);
            for (q, r) in tenants.iter().zip(&reports) {
                let active = r.rates[k] > 0.0;
                q.update(|s| {
                    s.scale[k] = match scale {
                        Some(f) if active => f,
                        _ => 1.0,
                    };
                    s.apply(brokers, self.config.burst_secs, now);
                    let rate = s.rate(k);
                    if rate > 0.0 {
                        crate::metrics::quota_rate(&q.tenant, kind, rate);
                    }
                });
            }
        }
        reports.retain(|r| r.rates.iter().any(|&x| x > 0.0) || r.throttled.contains(&true));
        reports
    }
}

/// The factor every active tenant's rate of `kind` is scaled by when this broker's total
/// usage nears `limit`; `None` when it does not (or there is no limit).
fn backpressure(
    limit: f64,
    reports: &[UsageReport],
    tenants: &[Arc<TenantQuota>],
    kind: QuotaKind,
    brokers: usize,
) -> Option<f64> {
    let k = kind as usize;
    if limit <= 0.0 {
        return None;
    }
    let total: f64 = reports.iter().map(|r| r.rates[k]).sum();
    if total < limit * BACKPRESSURE_AT {
        return None;
    }
    // Allocations of the active tenants: their share here, or their usage when unlimited.
    let allocated: f64 = tenants
        .iter()
        .zip(reports)
        .filter(|(_, r)| r.rates[k] > 0.0)
        .map(|(q, r)| {
            let a = q.update(|s| s.unscaled(kind, brokers));
            if a > 0.0 {
                a
            } else {
                r.rates[k]
            }
        })
        .sum();
    (allocated > 0.0).then(|| (limit / allocated).min(1.0))
}

impl std::fmt::Debug for TenantQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantQuota")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl TenantQuota {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn update<R>(&self, f: impl FnOnce(&mut TenantState) -> R) -> R {
        f(&mut self.state.lock().expect("quota lock"))
    }

    /// Charge `amount` of `kind` (always: the request is served) and return how long the
    /// client must now be throttled.
    pub fn charge(&self, kind: QuotaKind, amount: f64) -> Duration {
        let now = Instant::now();
        let throttle = self.update(|s| {
            s.used[kind as usize] += amount;
            let t = match &mut s.buckets[kind as usize] {
                Some(b) => b.charge(amount, now),
                None => Duration::ZERO,
            };
            s.note_throttle(&self.tenant, kind, t, now);
            t
        });
        if !throttle.is_zero() {
            crate::metrics::throttled(&self.tenant, kind, throttle);
        }
        throttle
    }

    /// The throttle a request of `kind` would get before charging anything (a fetch
    /// checks this first: a throttled fetch returns no data).
    pub fn debt(&self, kind: QuotaKind) -> Duration {
        let now = Instant::now();
        let throttle = self.update(|s| {
            let t = match &mut s.buckets[kind as usize] {
                Some(b) => b.debt(now),
                None => Duration::ZERO,
            };
            s.note_throttle(&self.tenant, kind, t, now);
            t
        });
        if !throttle.is_zero() {
            crate::metrics::throttled(&self.tenant, kind, throttle);
        }
        throttle
    }

    /// Admit a new authenticated connection: within the tenant's connection attempts per
    /// second and open connections on this broker (its even share of the cell-wide limits),
    /// or an error saying which limit was hit.
    pub fn open_connection(self: &Arc<Self>) -> Result<ConnectionSlot, String> {
        let now = Instant::now();
        let (max_here, attempt_throttle, attempts_limit) = self.update(|s| {
            let brokers = s.brokers.max(1) as u32;
            let max_here = match s.limits.max_connections {
                0 => usize::MAX,
                n => n.div_ceil(brokers) as usize,
            };
            let throttle = match &mut s.attempts {
                Some(b) => b.charge(1.0, now),
                None => Duration::ZERO,
            };
            (max_here, throttle, s.limits.connection_attempts_per_sec)
        });
        if !attempt_throttle.is_zero() {
            return Err(format!(
                "cluster {} is over its limit of {attempts_limit} new connections per second; \
                 retry in {} ms",
                self.tenant,
                attempt_throttle.as_millis().max(1)
            ));
        }
        let open = self.connections.fetch_add(1, Ordering::AcqRel);
        let slot = ConnectionSlot(self.clone());
        if open >= max_here {
            return Err(format!(
                "cluster {} has reached its limit of {max_here} open connections on this broker; \
                 close idle connections or raise the plan's limit",
                self.tenant
            ));
        }
        Ok(slot)
    }

    /// The rate currently enforced for `kind` (0: unlimited).
    pub fn rate(&self, kind: QuotaKind) -> f64 {
        self.update(|s| s.rate(kind as usize))
    }

    /// The largest request frame the plan allows (0: no plan bound).
    pub fn max_request_bytes(&self) -> usize {
        self.update(|s| s.limits.max_request_bytes as usize)
    }
}

impl TenantState {
    fn new(now: Instant) -> TenantState {
        TenantState {
            limits: TenantLimits::default(),
            share: None,
            scale: [1.0; 4],
            buckets: [None, None, None, None],
            used: [0.0; 4],
            last_rates: [0.0; 4],
            throttled_in_period: [false; 4],
            throttled_since: [None; 4],
            quiet_periods: [0; 4],
            period_start: now,
            brokers: 1,
            attempts: None,
        }
    }

    /// The rate enforced for kind `k` now: its bucket's (0: unlimited, no bucket).
    fn rate(&self, k: usize) -> f64 {
        self.buckets[k].as_ref().map_or(0.0, TokenBucket::rate)
    }

    /// This broker's share of `kind` before backpressure (0: unlimited).
    fn unscaled(&self, kind: QuotaKind, brokers: usize) -> f64 {
        let k = kind as usize;
        let limit = self.limits.per_sec[k];
        if limit <= 0.0 {
            return 0.0;
        }
        match self.share {
            Some((rates, at)) if at.elapsed() < SHARE_TTL && rates[k] > 0.0 => rates[k].min(limit),
            _ => limit / brokers as f64,
        }
    }

    /// The rate to enforce for `kind` (0: unlimited): the share, scaled back under
    /// broker-wide backpressure; an unlimited tenant is limited only then, to what it used.
    fn allowed(&self, kind: QuotaKind, brokers: usize) -> f64 {
        let k = kind as usize;
        let base = self.unscaled(kind, brokers);
        if self.scale[k] >= 1.0 {
            return base;
        }
        let alloc = if base > 0.0 { base } else { self.last_rates[k] };
        (alloc * self.scale[k]).max(1.0)
    }

    /// Bring the buckets in line with the current limits, share and scale.
    fn apply(&mut self, brokers: usize, burst_secs: f64, now: Instant) {
        self.brokers = brokers;
        let attempts = match self.limits.connection_attempts_per_sec {
            0 => 0.0,
            n => f64::from(n) / brokers as f64,
        };
        self.attempts = match (attempts > 0.0, self.attempts.take()) {
            (false, _) => None,
            (true, Some(mut b)) => {
                b.set_rate(attempts, now);
                Some(b)
            }
            (true, None) => Some(TokenBucket::new(attempts, 1.0, now)),
        };
        for kind in QuotaKind::ALL {
            let k = kind as usize;
            let rate = self.allowed(kind, brokers);
            if rate == self.rate(k) {
                continue;
            }
            self.buckets[k] = match (rate > 0.0, self.buckets[k].take()) {
                (false, _) => None,
                (true, Some(mut b)) => {
                    b.set_rate(rate, now);
                    Some(b)
                }
                (true, None) => Some(TokenBucket::new(rate, burst_secs, now)),
            };
        }
    }

    fn note_throttle(&mut self, tenant: &TenantId, kind: QuotaKind, t: Duration, now: Instant) {
        let k = kind as usize;
        if t.is_zero() {
            return;
        }
        self.throttled_in_period[k] = true;
        if self.throttled_since[k].is_none() {
            self.throttled_since[k] = Some(now);
            info!(
                tenant = %tenant,
                quota = kind.name(),
                rate = self.rate(k) as u64,
                "tenant is being throttled"
            );
        }
    }

    fn end_period(&mut self, tenant: &TenantId, now: Instant) -> UsageReport {
        let secs = now
            .saturating_duration_since(self.period_start)
            .as_secs_f64()
            .max(0.001);
        let report = UsageReport {
            tenant: tenant.clone(),
            rates: self.used.map(|u| u / secs),
            throttled: self.throttled_in_period,
        };
        for kind in QuotaKind::ALL {
            let k = kind as usize;
            self.quiet_periods[k] = if self.throttled_in_period[k] {
                0
            } else {
                self.quiet_periods[k].saturating_add(1)
            };
            // A tenant held right at its quota is throttled in most periods, not all: only
            // a run of quiet periods ends the throttled state, so the log does not flap.
            if let (true, Some(since)) = (
                self.quiet_periods[k] >= QUIET_PERIODS_TO_CLEAR,
                self.throttled_since[k],
            ) {
                info!(
                    tenant = %tenant,
                    quota = kind.name(),
                    throttled_ms = now.saturating_duration_since(since).as_millis() as u64,
                    "tenant is no longer throttled"
                );
                self.throttled_since[k] = None;
            }
        }
        self.last_rates = report.rates;
        self.used = [0.0; 4];
        self.throttled_in_period = [false; 4];
        self.period_start = now;
        report
    }
}

#[cfg(test)]
mod tests;
