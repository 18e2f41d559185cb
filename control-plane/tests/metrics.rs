//! The Metrics API over stored usage points, on SQLite and PostgreSQL: bucketing (counters
//! summed, gauges the last sample, summed over topics), grouping and paging, the
//! descriptors, and isolation (another organisation's cluster answers exactly what a missing
//! one answers, alone or in an OR). The points are written through the store as the
//! collector writes them; `tests/metrics_api.rs` covers the collector against a real cell.

mod common;

use common::{assert_error, start, Db};
use control_plane::store::UsagePoint;
use control_plane::usage::time::format_instant;
use control_plane::Store;
use serde_json::{json, Value};

on_every_backend!(
    query_buckets_groups_and_pages,
    isolation_and_auth,
    descriptors
);

const QUERY: &str = "/v2/metrics/cloud/query";

fn point(cluster: &str, metric: &'static str, topic: &str, value: i64) -> UsagePoint {
    UsagePoint {
        cluster_id: cluster.into(),
        metric,
        topic: topic.into(),
        value,
    }
}

/// The start of the minute half an hour ago.
fn t0() -> i64 {
    let now = control_plane_now();
    now - now.rem_euclid(60_000) - 30 * 60_000
}

fn control_plane_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn query(metric: &str, filter: Value, granularity: &str, group_by: &[&str]) -> Value {
    json!({
        "aggregations": [{"metric": format!("io.confluent.kafka.server/{metric}")}],
        "filter": filter,
        "granularity": granularity,
        "intervals": [format!("{}/PT1H", format_instant(t0()))],
        "group_by": group_by,
    })
}

fn eq(cluster: &str) -> Value {
    json!({"field": "resource.kafka.id", "op": "EQ", "value": cluster})
}

async fn post(s: &common::Server, token: &str, body: &Value) -> (u16, Value) {
    let res = s.post(QUERY, token, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn values(answer: &Value) -> Vec<(String, String, f64)> {
    answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data in {answer}"))
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap().to_string(),
                p["metric.topic"].as_str().unwrap_or("").to_string(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// A cluster of a new account; returns (token, cluster id).
async fn cluster_of(s: &common::Server, email: &str) -> (String, String, String) {
    let a = s.account(email).await;
    let env = s.create_env(&a.token, "prod").await;
    let c = s
        .create_cluster(&a.token, env["id"].as_str().unwrap(), "Basic")
        .await;
    (a.token, a.user, c["id"].as_str().unwrap().to_string())
}

async fn query_buckets_groups_and_pages(db: Db) {
    let s = start(&db).await;
    let (token, _, lkc) = cluster_of(&s, "metrics@example.com").await;
    let store = Store::connect(&s.db_url).await.unwrap();
    let t = t0();
    store
        .write_usage(
            t,
            &[
                point(&lkc, "received_bytes", "orders", 100),
                point(&lkc, "received_bytes", "clicks", 50),
            ],
            &[point(&lkc, "retained_bytes", "orders", 1000)],
        )
        .await
        .unwrap();
    // Counters add up within a minute; gauges are replaced.
    store
        .write_usage(
            t + 60_000,
            &[point(&lkc, "received_bytes", "orders", 4)],
            &[
                point(&lkc, "retained_bytes", "orders", 1500),
                point(&lkc, "retained_bytes", "clicks", 500),
            ],
        )
        .await
        .unwrap();
    store
        .write_usage(
            t + 60_000,
            &[point(&lkc, "received_bytes", "orders", 6)],
            &[point(&lkc, "retained_bytes", "orders", 2000)],
        )
        .await
        .unwrap();
    let first = format_instant(t - t.rem_euclid(5 * 60_000));

    let (status, by_topic) = post(
        &s,
        &token,
        &query("received_bytes", eq(&lkc), "PT1M", &["metric.topic"]),
    )
    .await;
    assert_eq!(status, 200, "{by_topic}");
    assert_eq!(
        values(&by_topic),
        vec![
            (format_instant(t), "clicks".into(), 50.0),
            (format_instant(t), "orders".into(), 100.0),
            (format_instant(t + 60_000), "orders".into(), 10.0),
        ]
    );
    assert_eq!(by_topic["meta"]["pagination"]["total_size"], 2);
    let (_, all) = post(&s, &token, &query("received_bytes", eq(&lkc), "ALL", &[])).await;
    assert_eq!(
        values(&all),
        vec![(format_instant(t), String::new(), 160.0)]
    );
    assert!(all["data"][0].get("resource.kafka.id").is_none(), "{all}");
    // A gauge per bucket: the last minute's sample, summed over topics (1500 was replaced).
    let (_, retained) = post(
        &s,
        &token,
        &query("retained_bytes", eq(&lkc), "ALL", &["resource.kafka.id"]),
    )
    .await;
    assert_eq!(values(&retained)[0].2, 2500.0, "{retained}");
    assert_eq!(retained["data"][0]["resource.kafka.id"], lkc.as_str());
    let (_, five) = post(
        &s,
        &token,
        &query("retained_bytes", eq(&lkc), "PT5M", &["metric.topic"]),
    )
    .await;
    let second = format_instant((t + 60_000) - (t + 60_000).rem_euclid(5 * 60_000));
    let expected: Vec<(String, String, f64)> = if first == second {
        vec![
            (first.clone(), "clicks".into(), 500.0),
            (first.clone(), "orders".into(), 2000.0),
        ]
    } else {
        vec![
            (second.clone(), "clicks".into(), 500.0),
            (first.clone(), "orders".into(), 1000.0),
            (second.clone(), "orders".into(), 2000.0),
        ]
    };
    assert_eq!(values(&five), expected);
    // A topic filter.
    let topic_filter = json!({"op": "AND", "filters": [eq(&lkc), {"field": "metric.topic", "op": "EQ", "value": "clicks"}]});
    let (_, clicks) = post(
        &s,
        &token,
        &query("received_bytes", topic_filter, "ALL", &["metric.topic"]),
    )
    .await;
    assert_eq!(
        values(&clicks),
        vec![(format_instant(t), "clicks".into(), 50.0)]
    );
    // Pages of groups.
    let mut paged = query("received_bytes", eq(&lkc), "ALL", &["metric.topic"]);
    paged["limit"] = json!(1);
    let (_, page1) = post(&s, &token, &paged).await;
    assert_eq!(
        values(&page1),
        vec![(format_instant(t), "clicks".into(), 50.0)]
    );
    let next = page1["meta"]["pagination"]["next_page_token"]
        .as_str()
        .unwrap()
        .to_string();
    paged["page_token"] = json!(next);
    let (_, page2) = post(&s, &token, &paged).await;
    assert_eq!(
        values(&page2),
        vec![(format_instant(t), "orders".into(), 110.0)]
    );
    assert!(
        page2["meta"]["pagination"].get("next_page_token").is_none(),
        "{page2}"
    );
    // Nothing stored for request_count: no points.
    let (status, none) = post(&s, &token, &query("request_count", eq(&lkc), "PT1H", &[])).await;
    assert_eq!(status, 200);
    assert_eq!(none["data"], json!([]));
    // Retention: pruning old points.
    assert_eq!(store.prune_usage(t + 1).await.unwrap(), 3);
}

async fn isolation_and_auth(db: Db) {
    let s = start(&db).await;
    let (a_token, _, a_lkc) = cluster_of(&s, "a@example.com").await;
    let (b_token, b_user, b_lkc) = cluster_of(&s, "b@example.com").await;
    let store = Store::connect(&s.db_url).await.unwrap();
    store
        .write_usage(t0(), &[point(&a_lkc, "received_bytes", "orders", 100)], &[])
        .await
        .unwrap();
    let missing = "lkc-zz9999";
    let masked = |answer: &Value, id: &str| answer.to_string().replace(id, "ID");
    let (status, none) = post(
        &s,
        &b_token,
        &query("received_bytes", eq(missing), "ALL", &[]),
    )
    .await;
    assert_eq!(status, 404, "{none}");
    assert_eq!(none["errors"][0]["code"], "not_found");
    let (status, foreign) = post(
        &s,
        &b_token,
        &query("received_bytes", eq(&a_lkc), "ALL", &[]),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(masked(&foreign, &a_lkc), masked(&none, missing));
    let mixed = json!({"op": "OR", "filters": [eq(&b_lkc), eq(&a_lkc)]});
    let (status, answer) = post(
        &s,
        &b_token,
        &query("received_bytes", mixed, "ALL", &["resource.kafka.id"]),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(masked(&answer, &a_lkc), masked(&none, missing));
    // B's own cluster holds nothing of A's; A sees its own.
    let (status, own) = post(
        &s,
        &b_token,
        &query("received_bytes", eq(&b_lkc), "ALL", &["metric.topic"]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(own["data"], json!([]));
    let (_, a_own) = post(
        &s,
        &a_token,
        &query("received_bytes", eq(&a_lkc), "ALL", &[]),
    )
    .await;
    assert_eq!(values(&a_own)[0].2, 100.0);
    // A Cloud API key of B works for B's cluster and not for A's; no credentials: 401.
    let key = s.create_key(&b_token, &b_user, None).await;
    let (id, secret) = (
        key["id"].as_str().unwrap(),
        key["spec"]["secret"].as_str().unwrap(),
    );
    for (cluster, want) in [(&b_lkc, 200), (&a_lkc, 404)] {
        let res = s
            .http
            .post(s.url(QUERY))
            .basic_auth(id, Some(secret))
            .json(&query("received_bytes", eq(cluster), "ALL", &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), want, "{cluster}");
    }
    let res = s
        .http
        .post(s.url(QUERY))
        .json(&query("received_bytes", eq(&b_lkc), "ALL", &[]))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    // Bad input is a 400 saying what to fix.
    let mut bad = query("received_bytes", eq(&b_lkc), "PT1M", &[]);
    bad["intervals"] = json!(["2026-11-20T00:00:00Z/P2D"]);
    let res = s.post(QUERY, &b_token, &bad).await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("coarser granularity"), "{detail}");
}

async fn descriptors(db: Db) {
    let s = start(&db).await;
    let a = s.account("d@example.com").await;
    let all = s
        .get_json(&s.url("/v2/metrics/cloud/descriptors/metrics"), &a.token)
        .await;
    let names: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{all}");
    assert!(names.contains(&"io.confluent.kafka.server/partition_count"));
    let first = &all["data"][0];
    assert_eq!(first["type"], "COUNTER_INT64");
    assert_eq!(first["labels"][0]["key"], "topic");
    let page = s
        .get_json(
            &s.url("/v2/metrics/cloud/descriptors/metrics?page_size=4"),
            &a.token,
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    let next = page["meta"]["pagination"]["next_page_token"]
        .as_str()
        .unwrap();
    let rest = s
        .get_json(
            &s.url(&format!(
                "/v2/metrics/cloud/descriptors/metrics?page_size=4&page_token={next}"
            )),
            &a.token,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
}
