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

/// `--verify` and `--exec-at` end to end: every record numbered, acknowledged ones all read back,
/// the command run once during the measured phase with its output kept, and an ack timeline.
#[test]
fn verify_and_exec_at_against_mock_cluster() {
    let mut w = Workload {
        name: "mock-verify".into(),
        topic_prefix: "mockv".into(),
        partitions_per_topic: 3,
        producers: 2,
        record_size: 64,
        rate: 500,
        acks: -1,
        duration_s: 2,
        warmup_s: 1,
        drain_s: 5,
        linger_ms: 1,
        ..Workload::default()
    };
    w.tenants = vec![parse_tenant_flag("gamma").unwrap()];
    let _mock = loadtest::mock::start(&mut w).expect("mock cluster");
    let opts = loadtest::run::RunOptions {
        progress: false,
        exec_at: vec![loadtest::run::parse_exec_at("1:echo marked; exit 3").unwrap()],
        verify: true,
    };
    let r = loadtest::run::run_with(w, &opts).expect("run");
    eprint!("{}", r.summary());

    let t = &r.tenants[0];
    let v = t.verify.as_ref().expect("verification");
    assert!(v.acked > 0);
    assert!(v.complete, "{v:?}");
    assert_eq!(v.missing, 0, "{v:?}");
    assert!(v.read_back >= v.acked, "{v:?}");
    assert_eq!(r.total.verify.as_ref().unwrap().missing, 0);

    assert_eq!(r.events.len(), 1);
    let e = &r.events[0];
    assert_eq!(e.exit_code, Some(3));
    assert_eq!(e.output.trim(), "marked");
    assert!(e.at_s >= 1.0, "{}", e.at_s);
    assert!(e.at_unix_ms > 0);

    // Every acknowledged record is in the timeline, warm-up included.
    let in_timeline: u64 = t.acks.acked.iter().map(|&n| u64::from(n)).sum();
    assert_eq!(in_timeline, v.acked);
    assert_eq!(t.acks.bucket_ms, 100);
    assert!(t.acks.start_s < 0.0, "the load starts in warm-up");
    assert!(t.acks.longest_gap_ms > 0.0);
    // No interval without any ack is longer than the longest of one partition.
    assert!(t.acks.longest_partition_gap_ms >= t.acks.longest_gap_ms);
    assert!(t
        .acks
        .longest_partition_gap_at
        .starts_with("mockv-gamma-0/"));
    assert_eq!(r.total.acks, t.acks);
    assert!(loadtest::run::parse_exec_at("soon:kill").is_err());
    assert!(loadtest::run::parse_exec_at("5:").is_err());
}
