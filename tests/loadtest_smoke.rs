//! The load generator against a real standalone broker: a 5-second fixed-rate scenario with
//! acks=all must produce a complete, non-zero result that survives a JSON round trip.

mod common;

use common::BrokerProcess;
use loadtest::result::RunResult;
use loadtest::workload::Workload;

#[test]
fn five_second_scenario_against_a_standalone_broker() {
    let broker = BrokerProcess::start(&[]);
    let workload = Workload::from_yaml(&format!(
        "name: ci-smoke
bootstrap_servers: \"{}\"
topic_prefix: smoke
topics: 1
partitions_per_topic: 4
producers: 1
consumers: 1
record_size: 512
rate: 2000
acks: -1
compression: lz4
duration_s: 5
warmup_s: 1
drain_s: 5
",
        broker.addr
    ))
    .expect("workload");
    let result = loadtest::run::run(workload, false).expect("run");
    let t = &result.total;
    assert!(t.counters.acked > 5_000, "acked {}", t.counters.acked);
    assert_eq!(t.counters.errors, 0);
    assert!(
        t.publish_msgs_s > 1_500.0 && t.publish_mb_s > 0.7,
        "{} msgs/s",
        t.publish_msgs_s
    );
    assert!(
        t.consume_msgs_s > 1_500.0,
        "{} msgs/s consumed",
        t.consume_msgs_s
    );
    assert_eq!(t.backlog_after_drain, 0, "everything produced was consumed");
    for (name, p) in [("publish", &t.publish_latency), ("e2e", &t.e2e_latency)] {
        assert!(
            p.count > 0 && p.p50_ms > 0.0 && p.p99_ms >= p.p50_ms && p.max_ms >= p.p99_ms,
            "{name}: {p:?}"
        );
    }
    assert!(result.total.series.len() >= 4, "per-second series");
    assert!(!t.publish_cdf.is_empty() && !t.e2e_cdf.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    result.write(&path).unwrap();
    let back = RunResult::read(&path).unwrap();
    assert_eq!(back.total.counters.acked, t.counters.acked);
    assert!(back.summary().contains("messages produced"));
}
