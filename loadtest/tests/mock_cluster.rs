//! End-to-end run against librdkafka's in-process mock cluster: real producers, a real consumer group,
//! the pacer, warm-up exclusion, drain and result assembly, with no broker needed. The mock has no
//! CreateTopics, so `mock::start` makes the topics on the mock and tells the run not to create them.

use loadtest::workload::{parse_tenant_flag, Workload};

#[test]
fn two_tenants_against_mock_cluster() {
    let mut w = Workload {
        name: "mock".into(),
        topic_prefix: "mock".into(),
        partitions_per_topic: 2,
        record_size: 256,
        rate: 400,
        acks: 1,
        compression: "lz4".into(),
        duration_s: 3,
        warmup_s: 1,
        drain_s: 5,
        linger_ms: 1,
        ..Workload::default()
    };
    w.tenants = vec![
        parse_tenant_flag("alpha").unwrap(),
        // Credentials are dropped for the mock (it has no SASL).
        parse_tenant_flag("beta:user:pass:1000").unwrap(),
    ];
    let _mock = loadtest::mock::start(&mut w).expect("mock cluster");
    assert!(!w.create_topics);

    let r = loadtest::run::run(w, false).expect("run");
    eprint!("{}", r.summary());

    assert_eq!(r.tenants.len(), 2);
    // Windows are measured, not assumed: three ticks of about a second each.
    assert!((r.measured_s - 3.0).abs() < 0.2, "{}", r.measured_s);
    for (t, rate) in r.tenants.iter().zip([400.0, 1000.0]) {
        let c = &t.counters;
        assert_eq!(c.errors, 0, "{}: {c:?}", t.name);
        // The pacer holds the target within a few percent once warm-up is excluded.
        assert!(
            (t.publish_msgs_s - rate).abs() / rate < 0.1,
            "{}: published {} msgs/s, target {rate}",
            t.name,
            t.publish_msgs_s
        );
        assert_eq!(c.acked_bytes, c.acked * 256);
        assert!(c.consumed > 0, "{}: nothing consumed", t.name);
        assert_eq!(t.backlog_after_drain, 0, "{}: backlog left", t.name);
        assert!(t.publish_latency.count > 0 && t.e2e_latency.count > 0);
        assert!(t.publish_latency.p99_ms >= t.publish_latency.p50_ms);
        assert!(t.e2e_latency.max_ms < 5_000.0, "{:?}", t.e2e_latency);
        assert!(t.series.len() >= 3, "{}", t.series.len());
        assert_eq!(t.rate_slots_skipped, 0);
    }
    let sum: u64 = r.tenants.iter().map(|t| t.counters.acked).sum();
    assert_eq!(r.total.counters.acked, sum);
    assert_eq!(r.total.target_rate, 1400);
    assert!(r.summary().contains("messages produced"));
}
