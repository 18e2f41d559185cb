//! Tests for the broker's quota state: limits, shares and their expiry, throttling, the
//! period reports and broker-wide backpressure.

use super::*;

fn tenant(name: &str) -> TenantId {
    TenantId::from(name)
}

fn limits(ingress: f64, egress: f64, requests: f64) -> TenantLimits {
    TenantLimits {
        per_sec: [ingress, egress, requests, 0.0],
        ..TenantLimits::default()
    }
}

#[test]
fn an_unknown_tenant_is_unlimited_and_never_throttled() {
    let q = Quotas::new(QuotaConfig::default());
    let t = q.tenant(&tenant("lkc-a"));
    for _ in 0..1000 {
        assert_eq!(t.charge(QuotaKind::Ingress, 1e9), Duration::ZERO);
    }
    assert_eq!(t.rate(QuotaKind::Ingress), 0.0);
}

#[test]
fn limits_split_evenly_over_active_brokers_until_the_coordinator_speaks() {
    let q = Quotas::new(QuotaConfig::default());
    let a = tenant("lkc-a");
    q.set_limits(&HashMap::from([(a.clone(), limits(3000.0, 0.0, 30.0))]), 3);
    let t = q.tenant(&a);
    assert_eq!(t.rate(QuotaKind::Ingress), 1000.0);
    assert_eq!(t.rate(QuotaKind::Egress), 0.0);
    assert_eq!(t.rate(QuotaKind::Requests), 10.0);
    q.set_shares(&[Share {
        tenant: a.clone(),
        rates: [2500.0, 0.0, 0.0, 0.0],
    }]);
    assert_eq!(t.rate(QuotaKind::Ingress), 2500.0);
    // A share of 0 means the coordinator has none for that kind: the even split stays.
    assert_eq!(t.rate(QuotaKind::Requests), 10.0);
    // An expired share no longer counts.
    t.update(|s| {
        let (rates, _) = s.share.unwrap();
        s.share = Some((rates, Instant::now() - SHARE_TTL - Duration::from_secs(1)));
        s.apply(3, 1.0, Instant::now());
    });
    assert_eq!(t.rate(QuotaKind::Ingress), 1000.0);
    // A share above the cell-wide limit is capped by it.
    q.set_shares(&[Share {
        tenant: a.clone(),
        rates: [9000.0, 0.0, 0.0, 0.0],
    }]);
    assert_eq!(t.rate(QuotaKind::Ingress), 3000.0);
}

#[test]
fn throttles_past_the_burst_and_reports_usage_and_throttling() {
    let q = Quotas::new(QuotaConfig::default());
    let a = tenant("lkc-a");
    q.set_limits(
        &HashMap::from([(a.clone(), limits(1000.0, 1000.0, 0.0))]),
        1,
    );
    let t = q.tenant(&a);
    // The burst is one second of the rate.
    assert_eq!(t.charge(QuotaKind::Ingress, 1000.0), Duration::ZERO);
    let throttle = t.charge(QuotaKind::Ingress, 500.0);
    assert!(throttle > Duration::from_millis(400) && throttle <= Duration::from_millis(500));
    // Egress is separate, and checked before charging.
    assert_eq!(t.debt(QuotaKind::Egress), Duration::ZERO);
    let reports = q.end_period();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].tenant, a);
    assert_eq!(reports[0].throttled, [true, false, false, false]);
    assert!(reports[0].rates[0] > 0.0 && reports[0].rates[1] == 0.0);
    assert!(t.update(|s| s.throttled_since[0].is_some()));
    // A quiet period drops the tenant out of the reports; a run of them ends the
    // throttled state (so the INFO lines do not flap at the quota's edge).
    let reports = q.end_period();
    assert!(reports.is_empty(), "{reports:?}");
    assert!(t.update(|s| s.throttled_since[0].is_some()));
    for _ in 1..QUIET_PERIODS_TO_CLEAR {
        q.end_period();
    }
    assert!(t.update(|s| s.throttled_since[0].is_none()));
}

#[test]
fn tenants_no_longer_in_the_cell_are_forgotten() {
    let q = Quotas::new(QuotaConfig::default());
    let (a, b) = (tenant("lkc-a"), tenant("lkc-b"));
    q.set_limits(
        &HashMap::from([
            (a.clone(), limits(1.0, 1.0, 1.0)),
            (b.clone(), limits(1.0, 1.0, 1.0)),
        ]),
        1,
    );
    q.set_limits(&HashMap::from([(a.clone(), limits(1.0, 1.0, 1.0))]), 1);
    let map = q.tenants.read().unwrap();
    assert!(map.contains_key(&a) && !map.contains_key(&b));
}

#[test]
fn backpressure_scales_active_tenants_in_proportion_to_their_allocation() {
    let q = Quotas::new(QuotaConfig {
        broker_ingress_bytes_per_sec: 1000,
        ..QuotaConfig::default()
    });
    let (a, b, idle) = (tenant("lkc-a"), tenant("lkc-b"), tenant("lkc-idle"));
    q.set_limits(
        &HashMap::from([
            (a.clone(), limits(1200.0, 0.0, 0.0)),
            (b.clone(), limits(0.0, 0.0, 0.0)),
            (idle.clone(), limits(5000.0, 0.0, 0.0)),
        ]),
        1,
    );
    let (ta, tb) = (q.tenant(&a), q.tenant(&b));
    // Over one period: a uses 1200/s of its 1200 allocation, b (unlimited) 600/s.
    for t in [&ta, &tb] {
        t.update(|s| s.period_start = Instant::now() - Duration::from_secs(1));
    }
    ta.charge(QuotaKind::Ingress, 1200.0);
    tb.charge(QuotaKind::Ingress, 600.0);
    q.end_period();
    // Allocations 1200 (a's share) + ~600 (b's use) against a limit of 1000: both scaled
    // by the same factor; the idle tenant keeps its share.
    let (ra, rb) = (ta.rate(QuotaKind::Ingress), tb.rate(QuotaKind::Ingress));
    let f = ra / 1200.0;
    assert!(f < 0.6 && f > 0.5, "a at {ra}");
    assert!((rb / f - 600.0).abs() < 60.0, "b at {rb}, factor {f}");
    assert!(ra + rb <= 1000.0 + 1e-6, "{ra} + {rb}");
    assert_eq!(q.tenant(&idle).rate(QuotaKind::Ingress), 5000.0);
    // Below the limit again: the scaling is lifted (b unlimited again).
    q.end_period();
    assert_eq!(ta.rate(QuotaKind::Ingress), 1200.0);
    assert_eq!(tb.rate(QuotaKind::Ingress), 0.0);
}

#[test]
fn connections_are_limited_to_the_brokers_share_and_released_on_drop() {
    let q = Quotas::new(QuotaConfig::default());
    let a = tenant("lkc-a");
    let l = TenantLimits {
        max_connections: 5,
        ..TenantLimits::default()
    };
    // 5 across 2 brokers: 3 here.
    q.set_limits(&HashMap::from([(a.clone(), l)]), 2);
    let t = q.tenant(&a);
    let slots: Vec<_> = (0..3).map(|_| t.open_connection().unwrap()).collect();
    let err = t.open_connection().unwrap_err();
    assert!(err.contains("limit of 3 open connections"), "{err}");
    drop(slots);
    assert_eq!(t.connections.load(Ordering::Acquire), 0);
    assert!(t.open_connection().is_ok());
}

#[test]
fn connection_attempts_are_limited_per_second() {
    let q = Quotas::new(QuotaConfig::default());
    let a = tenant("lkc-a");
    let l = TenantLimits {
        connection_attempts_per_sec: 4,
        ..TenantLimits::default()
    };
    q.set_limits(&HashMap::from([(a.clone(), l)]), 1);
    let t = q.tenant(&a);
    let started = Instant::now();
    let mut admitted = 0;
    let mut refused = Vec::new();
    for _ in 0..40 {
        match t.open_connection() {
            Ok(_) => admitted += 1,
            Err(e) => refused.push(e),
        }
    }
    // At most the burst (one second's worth) plus what refilled while the loop ran.
    let bound = 4.0 + 4.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(f64::from(admitted) <= bound, "{admitted} admitted");
    assert!(admitted >= 4);
    assert!(
        refused[0].contains("limit of 4 new connections per second"),
        "{}",
        refused[0]
    );
}
