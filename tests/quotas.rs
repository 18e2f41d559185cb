//! Plan limits and quotas on a real cell (a controller and three broker processes), through
//! the Kafka protocol over SASL/PLAIN: KIP-219 throttling of produce bytes, fetch bytes and
//! requests (throttle time in the response, then the connection muted; a fetch in debt gets
//! no data), KIP-599 partition mutation limits, the plan's message size cap, and the
//! connection count and connection rate limits under a client that connects in a loop.
//!
//! Quota *rates* over time are measured by `loadtest/quota.sh` (BENCHMARKS.md), not here;
//! these tests check behaviour that holds whatever the machine's speed.

mod common;

use std::time::{Duration, Instant};

use common::cell::Cell;
use common::wire::{record_batch, WireClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, FetchRequest, MetadataRequest, ProduceRequest,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use proto::cell::v1::ClusterLimits;

const TOPIC: &str = "metered";

fn sv(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn key(cluster: &str) -> (String, String) {
    (format!("key-{cluster}"), format!("secret-{cluster}"))
}

async fn quota_cell() -> Cell {
    let cell = Cell::start_sasl(1, 3, &[], &[]);
    cell.wait_active(3).await;
    cell
}

/// Create `cluster` with `limits` and a full-access key for it.
async fn tenant(cell: &Cell, cluster: &str, limits: ClusterLimits) {
    cell.create_tenant_with_limits(cluster, Some(limits)).await;
    let (k, s) = key(cluster);
    cell.put_key(cluster, &k, &s, "User:u-owner").await;
}

/// Authenticate to `addr` as `cluster`'s key, waiting (bounded) for the key to reach that
/// broker's metadata: a new key propagates asynchronously.
async fn connect(addr: &str, cluster: &str) -> WireClient {
    let (k, s) = key(cluster);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match WireClient::sasl_plain(addr, &k, &s).await {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline && e.1.contains("invalid API key") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("authenticate to {cluster}: {e:?}"),
        }
    }
}

fn first_sasl(cell: &Cell) -> String {
    cell.brokers[0].sasl_addr.clone().expect("sasl listener")
}

/// Create the tenant's one-partition topic and return its leader's SASL address.
async fn topic_leader(cell: &Cell, cluster: &str) -> String {
    let mut c = connect(&first_sasl(cell), cluster).await;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(sv(TOPIC)))
            .with_num_partitions(1)
            .with_replication_factor(3)])
        .with_timeout_ms(20_000);
    let Ok(ResponseKind::CreateTopics(r)) = c.call(ApiKey::CreateTopics, 7, create.into()).await
    else {
        panic!("CreateTopics answer")
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = MetadataRequest::default().with_topics(None);
        if let Ok(ResponseKind::Metadata(m)) = c.call(ApiKey::Metadata, 9, req.into()).await {
            let leader = m
                .topics
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == TOPIC))
                .and_then(|t| t.partitions.first())
                .map(|p| p.leader_id);
            if let Some(b) = leader.and_then(|l| m.brokers.iter().find(|b| b.node_id == l)) {
                return format!("{}:{}", b.host.as_str(), b.port);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader for {TOPIC} in {cluster}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` records of `size` bytes each (one batch per record: see `record_batch`).
fn produce(n: usize, size: usize) -> RequestKind {
    let values: Vec<String> = (0..n).map(|i| format!("{i:0>size$}")).collect();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sv(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(record_batch(&values)))])])
        .into()
}

/// Send `n` records of 1000 bytes and return (partition error code, throttle_time_ms).
async fn call_produce(c: &mut WireClient, n: usize) -> (i16, i32) {
    call_produce_sized(c, n, 1000).await
}

async fn call_produce_sized(c: &mut WireClient, n: usize, size: usize) -> (i16, i32) {
    match c.call(ApiKey::Produce, 9, produce(n, size)).await {
        Ok(ResponseKind::Produce(r)) => (
            r.responses[0].partition_responses[0].error_code,
            r.throttle_time_ms,
        ),
        other => panic!("produce answer {other:?}"),
    }
}

fn fetch() -> RequestKind {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(10)
        .with_max_bytes(4 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(sv(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(4 << 20)])])
        .into()
}

/// Send a fetch from offset 0 and return (record bytes, throttle_time_ms).
async fn call_fetch(c: &mut WireClient) -> (usize, i32) {
    match c.call(ApiKey::Fetch, 12, fetch()).await {
        Ok(ResponseKind::Fetch(r)) => {
            let bytes = r
                .responses
                .iter()
                .flat_map(|t| &t.partitions)
                .filter_map(|p| p.records.as_ref())
                .map(|b| b.len())
                .sum();
            (bytes, r.throttle_time_ms)
        }
        other => panic!("fetch answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_throttle_as_kip_219_and_599_say_and_the_plan_caps_message_and_request_size() {
    let cell = quota_cell().await;

    // Ingress: 300 kB/s across the cell, so at most that on the leader. A produce past the
    // share is still appended, answered with a throttle time, and the connection reads
    // nothing more until the throttle has passed.
    let ingress = ClusterLimits {
        ingress_bytes_per_sec: 300_000,
        ..Default::default()
    };
    tenant(&cell, "lkc-in", ingress).await;
    let leader = topic_leader(&cell, "lkc-in").await;
    let mut c = connect(&leader, "lkc-in").await;
    let mut throttled = None;
    for _ in 0..4 {
        let sent = Instant::now();
        let (code, throttle) = call_produce(&mut c, 250).await;
        assert_eq!(code, 0, "a throttled produce is still appended");
        if throttle > 0 {
            throttled = Some((throttle, sent));
            break;
        }
    }
    let (throttle, sent) = throttled.expect("1 MB at 300 kB/s: some produce must be throttled");
    let (code, _) = call_produce(&mut c, 1).await;
    assert_eq!(code, 0);
    assert!(
        sent.elapsed() >= Duration::from_millis(throttle as u64),
        "the next request was served {:?} after the throttled one, throttle {throttle} ms",
        sent.elapsed()
    );

    // Egress: 100 kB/s. The first fetch gets its data and a throttle; while the tenant is in
    // debt, a fetch on another connection gets no data, only the throttle.
    let egress = ClusterLimits {
        egress_bytes_per_sec: 100_000,
        ..Default::default()
    };
    tenant(&cell, "lkc-out", egress).await;
    let leader = topic_leader(&cell, "lkc-out").await;
    let mut c = connect(&leader, "lkc-out").await;
    for _ in 0..2 {
        assert_eq!(call_produce(&mut c, 250).await.0, 0);
    }
    let (bytes, throttle) = call_fetch(&mut c).await;
    assert!(
        bytes >= 500_000,
        "the first fetch is served in full: {bytes}"
    );
    assert!(throttle > 0, "500 kB at 100 kB/s must be throttled");
    let mut other = connect(&leader, "lkc-out").await;
    let (bytes, throttle) = call_fetch(&mut other).await;
    assert_eq!(bytes, 0, "a fetch while in debt returns no data");
    assert!(throttle > 0);

    // Requests: 30/s across the cell.
    let requests = ClusterLimits {
        requests_per_sec: 30,
        ..Default::default()
    };
    tenant(&cell, "lkc-req", requests).await;
    let mut c = connect(&first_sasl(&cell), "lkc-req").await;
    let mut throttles = Vec::new();
    for _ in 0..100 {
        let req = MetadataRequest::default().with_topics(Some(vec![]));
        match c.call(ApiKey::Metadata, 9, req.into()).await {
            Ok(ResponseKind::Metadata(m)) => throttles.push(m.throttle_time_ms),
            other => panic!("metadata answer {other:?}"),
        }
        if throttles.last() > Some(&0) {
            break;
        }
    }
    assert!(
        throttles.last() > Some(&0),
        "{} requests at 30/s without a throttle",
        throttles.len()
    );

    // Request time: 1% of a second per second across the cell (10 ms/s, a third of it per
    // broker). Producing 250 kB a request keeps the leader busy well past that: a later
    // response carries a throttle, though every request is served.
    let time = ClusterLimits {
        request_time_percent: 1,
        ..Default::default()
    };
    tenant(&cell, "lkc-time", time).await;
    let leader = topic_leader(&cell, "lkc-time").await;
    let mut c = connect(&leader, "lkc-time").await;
    let mut throttles = Vec::new();
    for _ in 0..300 {
        let (code, throttle) = call_produce(&mut c, 250).await;
        assert_eq!(code, 0, "a request over its time quota is still served");
        throttles.push(throttle);
        if throttle > 0 {
            break;
        }
    }
    assert!(
        throttles.last() > Some(&0),
        "{} produce requests of 250 kB within 10 ms/s of request time, never throttled",
        throttles.len()
    );

    // The plan's largest request: a frame over it closes the connection (as Kafka's
    // socket.request.max.bytes does) before it is read; one under it is served.
    let small_requests = ClusterLimits {
        max_request_bytes: 50_000,
        ..Default::default()
    };
    tenant(&cell, "lkc-req-size", small_requests).await;
    let leader = topic_leader(&cell, "lkc-req-size").await;
    let mut c = connect(&leader, "lkc-req-size").await;
    assert_eq!(call_produce_sized(&mut c, 1, 20_000).await.0, 0);
    let refused = c.call(ApiKey::Produce, 9, produce(1, 60_000)).await;
    assert!(
        refused.is_err(),
        "a 60 kB request past a 50 kB plan limit must close the connection: {refused:?}"
    );
    let mut again = connect(&leader, "lkc-req-size").await;
    assert_eq!(
        call_produce_sized(&mut again, 1, 20_000).await.0,
        0,
        "only that connection is closed"
    );

    // The plan's largest message caps every topic's max.message.bytes.
    let small = ClusterLimits {
        max_message_bytes: 10_000,
        ..Default::default()
    };
    tenant(&cell, "lkc-msg", small).await;
    let leader = topic_leader(&cell, "lkc-msg").await;
    let mut c = connect(&leader, "lkc-msg").await;
    let (code, _) = call_produce_sized(&mut c, 1, 20_000).await;
    assert_eq!(code, 10, "MESSAGE_TOO_LARGE");
    assert_eq!(call_produce_sized(&mut c, 1, 5_000).await.0, 0);

    // KIP-599: 4 partition mutations per 5 minutes. The request that empties the bucket
    // passes; the next is refused with THROTTLING_QUOTA_EXCEEDED and a throttle time.
    let mutations = ClusterLimits {
        partition_mutations_per_5min: 4,
        ..Default::default()
    };
    tenant(&cell, "lkc-mut", mutations).await;
    let mut c = connect(&first_sasl(&cell), "lkc-mut").await;
    let mut outcomes = Vec::new();
    for name in ["m1", "m2", "m3"] {
        let create = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(sv(name)))
                .with_num_partitions(3)
                .with_replication_factor(1)])
            .with_timeout_ms(20_000);
        match c.call(ApiKey::CreateTopics, 7, create.into()).await {
            Ok(ResponseKind::CreateTopics(r)) => {
                outcomes.push((r.topics[0].error_code, r.throttle_time_ms))
            }
            other => panic!("CreateTopics answer {other:?}"),
        }
    }
    assert_eq!(outcomes[0], (0, 0));
    assert_eq!(
        outcomes[1],
        (0, 0),
        "the bucket had 1 left: this one passes"
    );
    assert_eq!(outcomes[2].0, 89, "THROTTLING_QUOTA_EXCEEDED");
    assert!(outcomes[2].1 > 0, "with a throttle time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_hold_under_a_connect_loop() {
    let cell = quota_cell().await;
    let addr = first_sasl(&cell);

    // 6 connections across 3 brokers: 2 on each.
    let count = ClusterLimits {
        max_connections: 6,
        ..Default::default()
    };
    tenant(&cell, "lkc-conn", count).await;
    let first = connect(&addr, "lkc-conn").await;
    let _second = connect(&addr, "lkc-conn").await;
    let (k, s) = key("lkc-conn");
    let (code, message) = WireClient::sasl_plain(&addr, &k, &s)
        .await
        .err()
        .expect("a third connection to one broker is refused");
    assert_eq!(code, 58, "SASL_AUTHENTICATION_FAILED: {message}");
    assert!(message.contains("limit of 2 open connections"), "{message}");
    // Closing one frees its place (the broker notices the close asynchronously).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while WireClient::sasl_plain(&addr, &k, &s).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "a closed connection never freed its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 9 new connections a second across the cell: 3 a second here, after a burst of 3.
    let rate = ClusterLimits {
        connection_attempts_per_sec: 9,
        ..Default::default()
    };
    tenant(&cell, "lkc-rate", rate).await;
    let (k, s) = key("lkc-rate");
    let started = Instant::now();
    let (mut admitted, mut refused) = (0u32, Vec::new());
    for _ in 0..200 {
        match WireClient::sasl_plain(&addr, &k, &s).await {
            Ok(c) => {
                admitted += 1;
                drop(c);
            }
            Err((_, message)) => refused.push(message),
        }
        if refused.len() >= 5 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "connect loop: {} attempts in {elapsed:.2} s, {admitted} admitted, {} refused",
        admitted as usize + refused.len(),
        refused.len()
    );
    assert!(!refused.is_empty(), "200 attempts at 3/s were all admitted");
    assert!(
        refused[0].contains("limit of 9 new connections per second"),
        "{}",
        refused[0]
    );
    let bound = 3.0 + 3.0 * elapsed + 1.0;
    assert!(
        f64::from(admitted) <= bound,
        "{admitted} admitted in {elapsed:.2} s (at most {bound:.1})"
    );
}
