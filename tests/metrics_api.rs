//! The Metrics API (`POST /v2/metrics/cloud/query`) end to end, on SQLite and on
//! PostgreSQL: a real cell (a `tributary controller` and a `tributary broker` with a SASL
//! listener) and a real `tributary control-plane` collecting usage every second. A tenant
//! produces to two topics and consumes them with librdkafka; the API then shows, by topic,
//! at least the bytes produced, bytes sent, the partitions created, and (while the consumer
//! is connected) an open connection. Another tenant's token sees the first tenant's cluster
//! exactly as a cluster that does not exist, alone or mixed with its own in an OR filter.
//! Bad queries answer 400 with a detail saying what to fix.

mod common;

use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::sasl_config;
use common::control_plane::{ControlPlane, Db};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::Method;
use serde_json::{json, Value};

const QUERY: &str = "/v2/metrics/cloud/query";
/// Records per topic, and bytes per record value.
const RECORDS: usize = 50;
const VALUE_BYTES: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_on_sqlite() {
    metrics_api(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_on_postgres() {
    metrics_api(Db::postgres()).await
}

/// An interval from ten minutes ago to five minutes ahead, as ISO-8601 `start/duration`.
fn recent_interval() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - 10 * 60_000;
    format!(
        "{}/PT15M",
        control_plane::usage::time::format_instant(start - start.rem_euclid(60_000))
    )
}

fn cluster_filter(cluster: &str) -> Value {
    json!({"field": "resource.kafka.id", "op": "EQ", "value": cluster})
}

fn query(metric: &str, filter: Value, group_by: &[&str]) -> Value {
    json!({
        "aggregations": [{"metric": format!("io.confluent.kafka.server/{metric}")}],
        "filter": filter,
        "granularity": "ALL",
        "intervals": [recent_interval()],
        "group_by": group_by,
    })
}

/// The value per topic of an answer grouped by `metric.topic`.
fn by_topic(answer: &Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data[] in {answer}"))
        .iter()
        .map(|p| {
            (
                p["metric.topic"].as_str().unwrap_or_default().to_string(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The single value of an ungrouped ALL answer (0 when it has no point).
fn total(answer: &Value) -> f64 {
    answer["data"][0]["value"].as_f64().unwrap_or(0.0)
}

/// Polls (90 s) `body` with `token` until `done` accepts the answer; fails with the last
/// answer and `what`.
async fn until(
    cp: &ControlPlane,
    token: &str,
    body: Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, answer) = cp
            .call(Method::POST, QUERY, Some(token), Some(body.clone()))
            .await;
        assert_eq!(status, 200, "{body} -> {answer}");
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "the Metrics API never showed {what}; last answer to {body}: {answer}\n{}",
            cp.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn produce(bootstrap: &str, key: &str, secret: &str, topic: &str) {
    let producer: FutureProducer = sasl_config(bootstrap, key, secret)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let value = vec![b'x'; VALUE_BYTES];
    // A new key reaches the brokers within about a second: retry the first record.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..RECORDS {
        loop {
            let sent = producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition((i % 2) as i32)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await;
            match sent {
                Ok(_) => break,
                Err((e, _)) if i == 0 && Instant::now() < deadline => {
                    eprintln!("first produce to {topic} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err((e, _)) => panic!("produce to {topic}: {e}"),
            }
        }
    }
}

/// A consumer of both topics' partitions 0 and 1 from the start, polled until it has read
/// every record; kept open by the caller (an open connection).
fn consume_all(bootstrap: &str, key: &str, secret: &str) -> BaseConsumer {
    let consumer: BaseConsumer = sasl_config(bootstrap, key, secret)
        .set("group.id", "unused-manual-assignment")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for topic in ["clicks", "orders"] {
        for p in 0..2 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < 2 * RECORDS {
        assert!(Instant::now() < deadline, "consumed only {read} records");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => read += 1,
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    consumer
}

async fn metrics_api(db: Db) {
    let cell = Cell::start_sasl(
        1,
        1,
        &["--default-replication-factor", "1"],
        // Retained bytes are recounted at each retention tick (30 s by default).
        &["--min-insync-replicas", "1", "--retention-check-ms", "1000"],
    );
    cell.wait_active(1).await;
    let cp = ControlPlane::start_with_args(
        &db,
        &[format!("cell-test={}", cell.controllers)],
        &["--usage-collect-interval-secs", "1"],
    )
    .await;
    let bootstrap = cell.sasl_bootstrap();
    let (a_token, a_user) = cp.account("metrics-a@example.com").await;
    let a_cluster = cp.provisioned_cluster(&a_token).await;
    let (key, secret) = cp.cluster_key(&a_token, &a_user, &a_cluster).await;
    let (b_token, _) = cp.account("metrics-b@example.com").await;
    let b_cluster = cp.provisioned_cluster(&b_token).await;

    // What the API serves.
    let (status, list) = cp
        .call(
            Method::GET,
            "/v2/metrics/cloud/descriptors/metrics",
            Some(&a_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    for m in [
        "received_bytes",
        "sent_bytes",
        "retained_bytes",
        "request_count",
        "active_connection_count",
        "partition_count",
    ] {
        assert!(
            names.contains(&format!("io.confluent.kafka.server/{m}").as_str()),
            "{m} in {list}"
        );
    }

    // Tenant A: "orders" (3 partitions) and "clicks" (2), 50 records of 1,000 bytes each.
    for (topic, partitions) in [("orders", 3), ("clicks", 2)] {
        let (status, t) = cp
            .basic(
                Method::POST,
                &format!("/kafka/v3/clusters/{a_cluster}/topics"),
                &key,
                &secret,
                Some(json!({"topic_name": topic, "partitions_count": partitions, "replication_factor": 1})),
            )
            .await;
        assert_eq!(status, 201, "{t}");
    }
    produce(&bootstrap, &key, &secret, "orders").await;
    produce(&bootstrap, &key, &secret, "clicks").await;
    let consumer = consume_all(&bootstrap, &key, &secret);
    let produced = (RECORDS * VALUE_BYTES) as f64;
    let a = cluster_filter(&a_cluster);

    until(
        &cp,
        &a_token,
        query("received_bytes", a.clone(), &["metric.topic"]),
        "the produced bytes by topic",
        |ans| {
            let got = by_topic(ans);
            got.len() == 2 && got.iter().all(|(_, v)| *v >= produced)
        },
    )
    .await;
    let sent = until(
        &cp,
        &a_token,
        query("sent_bytes", a.clone(), &["metric.topic"]),
        "the consumed bytes by topic",
        |ans| {
            let got = by_topic(ans);
            got.len() == 2 && got.iter().all(|(_, v)| *v >= produced)
        },
    )
    .await;
    assert_eq!(
        by_topic(&sent)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>(),
        vec!["clicks", "orders"]
    );
    let partitions = until(
        &cp,
        &a_token,
        query("partition_count", a.clone(), &["metric.topic"]),
        "the partitions",
        |ans| by_topic(ans).len() == 2,
    )
    .await;
    assert_eq!(
        by_topic(&partitions),
        vec![("clicks".to_string(), 2.0), ("orders".to_string(), 3.0)]
    );
    let all = until(
        &cp,
        &a_token,
        query("partition_count", a.clone(), &[]),
        "the cluster's partitions",
        |ans| total(ans) == 5.0,
    )
    .await;
    assert!(all["data"][0].get("metric.topic").is_none(), "{all}");
    until(
        &cp,
        &a_token,
        query("retained_bytes", a.clone(), &["metric.topic"]),
        "the retained bytes",
        |ans| {
            let got = by_topic(ans);
            got.len() == 2 && got.iter().all(|(_, v)| *v >= produced)
        },
    )
    .await;
    until(
        &cp,
        &a_token,
        query("request_count", a.clone(), &[]),
        "the requests",
        |ans| total(ans) > 0.0,
    )
    .await;
    until(
        &cp,
        &a_token,
        query("active_connection_count", a.clone(), &["resource.kafka.id"]),
        "an open connection",
        |ans| ans["data"][0]["resource.kafka.id"] == a_cluster.as_str() && total(ans) > 0.0,
    )
    .await;
    // By topic, with the topic in the filter too, at one-minute granularity.
    let mut one = query(
        "received_bytes",
        json!({"op": "AND", "filters": [a.clone(), {"field": "metric.topic", "op": "EQ", "value": "orders"}]}),
        &["metric.topic"],
    );
    one["granularity"] = json!("PT1M");
    let (status, minutes) = cp
        .call(Method::POST, QUERY, Some(&a_token), Some(one))
        .await;
    assert_eq!(status, 200, "{minutes}");
    let points = minutes["data"].as_array().unwrap();
    assert!(
        points.iter().all(|p| p["metric.topic"] == "orders"),
        "{minutes}"
    );
    let sum: f64 = points.iter().map(|p| p["value"].as_f64().unwrap()).sum();
    assert!(sum >= produced, "{minutes}");
    assert!(
        points
            .iter()
            .all(|p| p["timestamp"].as_str().unwrap().ends_with(":00Z")),
        "{minutes}"
    );
    drop(consumer);

    isolation(&cp, &a_cluster, &b_token, &b_cluster).await;
    bad_queries(&cp, &a_token, &a_cluster).await;
}

/// Tenant B sees A's cluster as one that does not exist, alone or in an OR with its own,
/// and its own cluster's answer holds nothing of A's.
async fn isolation(cp: &ControlPlane, a_cluster: &str, b_token: &str, b_cluster: &str) {
    let missing = "lkc-zz9999";
    let not_found = |cluster: &str, answer: &Value| {
        // The detail names the cluster asked about; with that masked, both must be equal.
        answer.to_string().replace(cluster, "ID")
    };
    let (status, none) = cp
        .call(
            Method::POST,
            QUERY,
            Some(b_token),
            Some(query("received_bytes", cluster_filter(missing), &[])),
        )
        .await;
    assert_eq!(status, 404, "{none}");
    assert_eq!(none["errors"][0]["code"], "not_found");
    let (status, foreign) = cp
        .call(
            Method::POST,
            QUERY,
            Some(b_token),
            Some(query("received_bytes", cluster_filter(a_cluster), &[])),
        )
        .await;
    assert_eq!(status, 404, "{foreign}");
    assert_eq!(not_found(a_cluster, &foreign), not_found(missing, &none));
    let mixed =
        json!({"op": "OR", "filters": [cluster_filter(b_cluster), cluster_filter(a_cluster)]});
    let (status, answer) = cp
        .call(
            Method::POST,
            QUERY,
            Some(b_token),
            Some(query("received_bytes", mixed, &["metric.topic"])),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(not_found(a_cluster, &answer), not_found(missing, &none));
    let anded = json!({"op": "AND", "filters": [cluster_filter(a_cluster), {"field": "metric.topic", "op": "EQ", "value": "orders"}]});
    let (status, answer) = cp
        .call(
            Method::POST,
            QUERY,
            Some(b_token),
            Some(query("received_bytes", anded, &[])),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    // Its own cluster: nothing of A's topics.
    for metric in ["received_bytes", "partition_count", "retained_bytes"] {
        let (status, own) = cp
            .call(
                Method::POST,
                QUERY,
                Some(b_token),
                Some(query(metric, cluster_filter(b_cluster), &["metric.topic"])),
            )
            .await;
        assert_eq!(status, 200, "{own}");
        assert!(by_topic(&own).is_empty(), "B sees topics: {own}");
    }
    // No credentials at all.
    let (status, _) = cp
        .call(
            Method::POST,
            QUERY,
            None,
            Some(query("received_bytes", cluster_filter(b_cluster), &[])),
        )
        .await;
    assert_eq!(status, 401);
}

/// Bad queries: 400 with the error envelope and a detail saying what to fix.
async fn bad_queries(cp: &ControlPlane, token: &str, cluster: &str) {
    let good = query("received_bytes", cluster_filter(cluster), &[]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown metric",
            {
                let mut q = good.clone();
                q["aggregations"] = json!([{"metric": "io.confluent.kafka.server/nope"}]);
                q
            },
            "descriptors",
        ),
        (
            "bad interval",
            {
                let mut q = good.clone();
                q["intervals"] = json!(["last tuesday"]);
                q
            },
            "ISO-8601",
        ),
        (
            "interval too long",
            {
                let mut q = good.clone();
                q["granularity"] = json!("PT1M");
                q["intervals"] = json!(["2026-11-20T00:00:00Z/P1D"]);
                q
            },
            "coarser granularity",
        ),
        (
            "bad granularity",
            {
                let mut q = good.clone();
                q["granularity"] = json!("PT2M");
                q
            },
            "PT1M, PT5M",
        ),
        (
            "missing filter",
            {
                let mut q = good.clone();
                q.as_object_mut().unwrap().remove("filter");
                q
            },
            "filter",
        ),
        (
            "group by a per-cluster metric's topic",
            query("request_count", cluster_filter(cluster), &["metric.topic"]),
            "per cluster",
        ),
        (
            "unknown field",
            {
                let mut q = good.clone();
                q["nope"] = json!(1);
                q
            },
            "unknown field",
        ),
        (
            "body too large",
            {
                let mut q = good.clone();
                q["intervals"] = json!(["x".repeat(70_000)]);
                q
            },
            "body",
        ),
    ];
    for (what, body, hint) in cases {
        let (status, answer) = cp.call(Method::POST, QUERY, Some(token), Some(body)).await;
        assert!(status == 400 || status == 413, "{what}: {status} {answer}");
        assert_eq!(
            answer["errors"][0]["status"],
            status.to_string(),
            "{what}: {answer}"
        );
        let detail = answer["errors"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(hint),
            "{what}: {detail:?} should mention {hint:?}"
        );
    }
}
