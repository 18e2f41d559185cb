//! Kafka REST v3 (`/kafka/v3/clusters/{id}/topics...`) end to end: a real cell (one
//! `tributary controller`, one `tributary broker`) and a real `tributary control-plane`
//! that provisions two tenants' clusters into it, on SQLite and on PostgreSQL. Topics are
//! created, listed, described and deleted with each cluster's API key through the
//! controller, and one tenant's key can neither see nor touch the other's topics.

mod common;

use common::cell::Cell;
use common::control_plane::{ControlPlane, Db};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_on_sqlite() {
    topics(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_on_postgres() {
    topics(Db::postgres()).await
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .expect("data[]")
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap().to_string())
        .collect()
}

async fn topics(db: Db) {
    let cell = Cell::start_sasl(1, 1, &["--default-replication-factor", "1"], &[]);
    cell.wait_active(1).await;
    let cp = ControlPlane::start(&db, &[format!("cell-test={}", cell.controllers)]).await;

    let (a_token, a_user) = cp.account("a@example.com").await;
    let a_cluster = cp.provisioned_cluster(&a_token).await;
    let (a_key, a_secret) = cp.cluster_key(&a_token, &a_user, &a_cluster).await;
    let (b_token, b_user) = cp.account("b@example.com").await;
    let b_cluster = cp.provisioned_cluster(&b_token).await;
    let (b_key, b_secret) = cp.cluster_key(&b_token, &b_user, &b_cluster).await;

    let a_topics = format!("/kafka/v3/clusters/{a_cluster}/topics");
    let b_topics = format!("/kafka/v3/clusters/{b_cluster}/topics");
    let a = |m: Method, p: String, b: Option<Value>| {
        let (cp, k, s) = (&cp, a_key.clone(), a_secret.clone());
        async move { cp.basic(m, &p, &k, &s, b).await }
    };
    let b = |m: Method, p: String, body: Option<Value>| {
        let (cp, k, s) = (&cp, b_key.clone(), b_secret.clone());
        async move { cp.basic(m, &p, &k, &s, body).await }
    };

    // A new cluster has no topics.
    let (status, list) = a(Method::GET, a_topics.clone(), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "KafkaTopicList");
    assert_eq!(list["metadata"]["self"], format!("{}{a_topics}", cp.url));
    assert!(names(&list).is_empty(), "{list}");

    // Create, with configs.
    let (status, topic) = a(
        Method::POST,
        a_topics.clone(),
        Some(json!({
            "topic_name": "orders",
            "partitions_count": 3,
            "replication_factor": 1,
            "configs": [{"name": "retention.ms", "value": "86400000"},
                        {"name": "cleanup.policy", "value": "delete"}],
        })),
    )
    .await;
    assert_eq!(status, 201, "{topic}");
    assert_eq!(topic["kind"], "KafkaTopic");
    assert_eq!(topic["cluster_id"], a_cluster);
    assert_eq!(topic["topic_name"], "orders");
    assert_eq!(topic["partitions_count"], 3);
    assert_eq!(topic["replication_factor"], 1);
    assert_eq!(topic["is_internal"], false);
    let self_url = format!("{}{a_topics}/orders", cp.url);
    assert_eq!(topic["metadata"]["self"], self_url);
    assert!(
        topic["metadata"]["resource_name"]
            .as_str()
            .unwrap()
            .ends_with(&format!("kafka={a_cluster}/topic=orders")),
        "{topic}"
    );
    assert_eq!(topic["configs"]["related"], format!("{self_url}/configs"));
    // The default partition count comes from the cell.
    let (status, t2) = a(
        Method::POST,
        a_topics.clone(),
        Some(json!({"topic_name": "audit", "replication_factor": 1})),
    )
    .await;
    assert_eq!(status, 201, "{t2}");
    assert_eq!(t2["partitions_count"], 1);
    // validate_only creates nothing.
    let (status, t3) = a(
        Method::POST,
        a_topics.clone(),
        Some(json!({"topic_name": "dry-run", "replication_factor": 1, "validate_only": true})),
    )
    .await;
    assert_eq!(status, 201, "{t3}");

    // List (by name), get, configs.
    let (status, list) = a(Method::GET, a_topics.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(names(&list), vec!["audit", "orders"]);
    let (status, got) = a(Method::GET, format!("{a_topics}/orders"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got, topic);
    let (status, configs) = a(Method::GET, format!("{a_topics}/orders/configs"), None).await;
    assert_eq!(status, 200, "{configs}");
    assert_eq!(configs["kind"], "KafkaTopicConfigList");
    let pairs: Vec<(String, String)> = configs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["kind"], "KafkaTopicConfig");
            assert_eq!(c["topic_name"], "orders");
            (
                c["name"].as_str().unwrap().to_string(),
                c["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("cleanup.policy".to_string(), "delete".to_string()),
            ("retention.ms".to_string(), "86400000".to_string())
        ]
    );
    let (status, one) = a(
        Method::GET,
        format!("{a_topics}/orders/configs/retention.ms"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["value"], "86400000");
    assert_eq!(one, configs["data"][1]);
    let (status, _) = a(
        Method::GET,
        format!("{a_topics}/orders/configs/segment.ms"),
        None,
    )
    .await;
    assert_eq!(status, 404, "a config left at its default is not listed");

    // Errors: an existing topic, what the controller refuses, a missing topic.
    let (status, err) = a(
        Method::POST,
        a_topics.clone(),
        Some(json!({"topic_name": "orders", "replication_factor": 1})),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert!(err["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    let (status, err) = a(
        Method::POST,
        a_topics.clone(),
        Some(json!({"topic_name": "wide", "replication_factor": 3})),
    )
    .await;
    assert_eq!(status, 400, "one broker cannot hold 3 replicas: {err}");
    assert!(
        err["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("replication factor"),
        "{err}"
    );
    let (status, _) = a(Method::GET, format!("{a_topics}/nothere"), None).await;
    assert_eq!(status, 404);
    let (status, _) = a(Method::GET, format!("{a_topics}/nothere/configs"), None).await;
    assert_eq!(status, 404);

    // Tenant B: its own cluster is empty, even though A's topic names exist in the cell,
    // and it may use the same names.
    let (status, list) = b(Method::GET, b_topics.clone(), None).await;
    assert_eq!(status, 200);
    assert!(names(&list).is_empty(), "B sees none of A's topics: {list}");
    let (status, _) = b(
        Method::POST,
        b_topics.clone(),
        Some(json!({"topic_name": "orders", "partitions_count": 1, "replication_factor": 1})),
    )
    .await;
    assert_eq!(status, 201, "names are per cluster");
    // B's key on A's cluster id: 404 for every route, and A's names never show.
    for (method, path) in [
        (Method::GET, a_topics.clone()),
        (Method::GET, format!("{a_topics}/orders")),
        (Method::GET, format!("{a_topics}/orders/configs")),
        (
            Method::GET,
            format!("{a_topics}/orders/configs/retention.ms"),
        ),
        (Method::DELETE, format!("{a_topics}/orders")),
        (Method::DELETE, format!("{a_topics}/audit")),
    ] {
        let (status, body) = b(method.clone(), path.clone(), None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(!body.to_string().contains("audit"), "{body}");
    }
    let (status, _) = b(
        Method::POST,
        a_topics.clone(),
        Some(json!({"topic_name": "planted", "replication_factor": 1})),
    )
    .await;
    assert_eq!(status, 404);
    // A's key on B's cluster: 404 too; A's topics are all still there.
    let (status, _) = a(Method::GET, b_topics.clone(), None).await;
    assert_eq!(status, 404);
    let (_, list) = a(Method::GET, a_topics.clone(), None).await;
    assert_eq!(names(&list), vec!["audit", "orders"]);
    // A Cloud API key and a bearer token do not work for Kafka REST.
    let (status, _) = cp.call(Method::GET, &a_topics, Some(&a_token), None).await;
    assert_eq!(status, 401);

    // Delete: gone from list and get; deleting again is 404. B's "orders" stays.
    let (status, body) = a(Method::DELETE, format!("{a_topics}/orders"), None).await;
    assert_eq!(status, 204, "{body}");
    let (_, list) = a(Method::GET, a_topics.clone(), None).await;
    assert_eq!(names(&list), vec!["audit"]);
    let (status, _) = a(Method::GET, format!("{a_topics}/orders"), None).await;
    assert_eq!(status, 404);
    let (status, _) = a(Method::DELETE, format!("{a_topics}/orders"), None).await;
    assert_eq!(status, 404);
    let (_, list) = b(Method::GET, b_topics.clone(), None).await;
    assert_eq!(names(&list), vec!["orders"]);
}
