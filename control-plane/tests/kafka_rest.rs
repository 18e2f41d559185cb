//! Kafka REST v3 (`/kafka/v3/clusters/{cluster_id}/topics...`, `.../consumer-groups...`,
//! `.../acls`) against real servers, on SQLite and PostgreSQL, up to the cell and the
//! brokers: who may call it (only an API key of the cluster in the path: bearer tokens,
//! Cloud API keys, other clusters' keys and wrong secrets are 401; a cluster outside the
//! key's organisation is 404), a cluster that is not PROVISIONED (409), what is validated
//! before the cell or the brokers are asked (400), and an unreachable cell or broker (503
//! naming it). Against a real cell: `tests/kafka_rest.rs` and `tests/kafka_rest_groups.rs`
//! at the workspace root.

mod common;

use common::{assert_error, closed_port, start_api_only, unreachable_cell_config, Db, Server};
use control_plane::Store;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

on_every_backend!(
    who_may_call,
    validation_and_unreachable_cell,
    groups_and_acls_who_may_call,
    groups_and_acls_validation_and_unreachable_brokers,
);

/// One organisation: its token, a cluster and a second cluster, a key for each, and a
/// Cloud API key.
struct Tenant {
    token: String,
    cluster: String,
    other_cluster: String,
    key: (String, String),
    other_key: (String, String),
    cloud_key: (String, String),
}

fn pair(k: &Value) -> (String, String) {
    (
        k["id"].as_str().unwrap().to_string(),
        k["spec"]["secret"].as_str().unwrap().to_string(),
    )
}

async fn tenant(s: &Server, email: &str) -> Tenant {
    let a = s.account(email).await;
    let env = s.create_env(&a.token, "prod").await;
    let env = env["id"].as_str().unwrap();
    let cluster = s.create_cluster(&a.token, env, "Basic").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other_cluster = s.create_cluster(&a.token, env, "Standard").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    Tenant {
        key: pair(&s.create_key(&a.token, &a.user, Some(&cluster)).await),
        other_key: pair(&s.create_key(&a.token, &a.user, Some(&other_cluster)).await),
        cloud_key: pair(&s.create_key(&a.token, &a.user, None).await),
        token: a.token,
        cluster,
        other_cluster,
    }
}

/// Marks `cluster` PROVISIONED in cell-1 (the test's unreachable cell), as the reconciler
/// would once the cell created it.
async fn provision(s: &Server, cluster: &str) {
    provision_at(s, cluster, "127.0.0.1:9092").await
}

/// [`provision`] with the brokers' bootstrap `bootstrap`.
async fn provision_at(s: &Server, cluster: &str, bootstrap: &str) {
    let store = Store::connect(&s.db_url).await.unwrap();
    assert!(store.place_cluster(cluster, "cell-1").await.unwrap());
    assert!(store.mark_provisioned(cluster, 1, bootstrap).await.unwrap());
}

/// Every consumer-group and ACL route of `cluster`: (method, path, body).
fn group_and_acl_routes(cluster: &str) -> Vec<(Method, String, Option<Value>)> {
    let c = format!("/kafka/v3/clusters/{cluster}");
    let g = format!("{c}/consumer-groups/orders-app");
    let acl = json!({"resource_type": "TOPIC", "resource_name": "orders", "pattern_type": "LITERAL",
                     "principal": "User:*", "host": "*", "operation": "READ", "permission": "ALLOW"});
    vec![
        (Method::GET, format!("{c}/consumer-groups"), None),
        (Method::GET, g.clone(), None),
        (Method::GET, format!("{g}/consumers"), None),
        (Method::GET, format!("{g}/consumers/member-1"), None),
        (Method::GET, format!("{g}/lags"), None),
        (Method::GET, format!("{g}/lags/orders/partitions/0"), None),
        (Method::GET, format!("{g}/lag-summary"), None),
        (Method::GET, format!("{c}/acls"), None),
        (Method::POST, format!("{c}/acls"), Some(acl)),
        (
            Method::DELETE,
            format!("{c}/acls?resource_type=ANY&pattern_type=ANY&operation=ANY&permission=ANY"),
            None,
        ),
    ]
}

async fn groups_and_acls_who_may_call(db: Db) {
    let s = start_api_only(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let a = tenant(&s, "ga@example.com").await;
    let b = tenant(&s, "gb@example.com").await;
    let brokers = closed_port().await;
    provision_at(&s, &a.cluster, &brokers).await;
    provision_at(&s, &b.cluster, &brokers).await;
    let wrong = (a.key.0.clone(), "not-the-secret".to_string());
    for (method, path, body) in group_and_acl_routes(&a.cluster) {
        let what = format!("{method} {path}");
        let mut req = s.http.request(method.clone(), s.url(&path));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let detail = assert_error(req.send().await.unwrap(), 401, "unauthenticated").await;
        assert!(detail.contains("HTTP Basic"), "{what}: {detail}");
        let mut req = s
            .http
            .request(method.clone(), s.url(&path))
            .bearer_auth(&a.token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let detail = assert_error(req.send().await.unwrap(), 401, "unauthenticated").await;
        assert!(detail.contains("bearer token"), "{what}: {detail}");
        for key in [&a.cloud_key, &wrong, &a.other_key] {
            let res = basic(&s, method.clone(), &path, key, body.clone()).await;
            assert_error(res, 401, "unauthenticated").await;
        }
        // Another organisation's key: the cluster does not exist for it.
        let res = basic(&s, method.clone(), &path, &b.key, body.clone()).await;
        let detail = assert_error(res, 404, "not_found").await;
        assert!(detail.contains(&a.cluster), "{what}: {detail}");
        // The key's own cluster while PROVISIONING: 409.
        let other = path.replace(&a.cluster, &a.other_cluster);
        let res = basic(&s, method.clone(), &other, &a.other_key, body.clone()).await;
        let detail = assert_error(res, 409, "conflict").await;
        assert!(detail.contains("PROVISIONING"), "{what}: {detail}");
    }
}

async fn groups_and_acls_validation_and_unreachable_brokers(db: Db) {
    let s = start_api_only(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let a = tenant(&s, "gv@example.com").await;
    let brokers = closed_port().await;
    provision_at(&s, &a.cluster, &brokers).await;
    let c = format!("/kafka/v3/clusters/{}", a.cluster);

    // Checked before any broker is asked: 400 saying what to fix.
    let long = "g".repeat(256);
    for (path, says) in [
        (format!("{c}/consumer-groups/{long}"), "consumer_group_id"),
        (
            format!("{c}/consumer-groups/a%0Ab/lag-summary"),
            "control characters",
        ),
        (
            format!("{c}/consumer-groups/g/consumers/{long}"),
            "consumer_id",
        ),
        (
            format!("{c}/consumer-groups/g/lags/orders/partitions/x"),
            "partition_id",
        ),
        (
            format!("{c}/consumer-groups/g/lags/orders/partitions/-1"),
            "partition_id",
        ),
        (format!("{c}/acls?operation=BOGUS"), "BOGUS"),
        (
            format!("{c}/acls?resource_type=UNKNOWN"),
            "UNKNOWN matches nothing",
        ),
        (format!("{c}/acls?colour=red"), "unknown field"),
        (
            format!("{c}/acls?principal={}", "p".repeat(256)),
            "principal",
        ),
    ] {
        let res = basic(&s, Method::GET, &path, &a.key, None).await;
        let detail = assert_error(res, 400, "invalid_argument").await;
        assert!(detail.contains(says), "{path}: {detail}");
    }
    let acls = format!("{c}/acls");
    let res = basic(&s, Method::DELETE, &acls, &a.key, None).await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(
        detail.contains("resource_type, pattern_type, operation, permission"),
        "{detail}"
    );
    let partial = format!("{acls}?resource_type=TOPIC&pattern_type=ANY&operation=READ");
    let res = basic(&s, Method::DELETE, &partial, &a.key, None).await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("needs permission"), "{detail}");
    let acl = json!({"resource_type": "TOPIC", "resource_name": "orders", "pattern_type": "LITERAL",
                     "principal": "User:*", "host": "*", "operation": "READ", "permission": "ALLOW"});
    let with = |field: &str, value: Value| {
        let mut body = acl.clone();
        body[field] = value;
        body
    };
    for (body, says) in [
        (with("pattern_type", json!("MATCH")), "LITERAL or PREFIXED"),
        (with("resource_type", json!("ANY")), "resource_type"),
        (with("operation", json!("ANY")), "operation"),
        (with("permission", json!("ANY")), "ALLOW or DENY"),
        (with("resource_name", json!("")), "resource_name"),
        (with("operation", json!("read")), "unknown variant"),
        (with("colour", json!("red")), "unknown field"),
        (json!({"resource_type": "TOPIC"}), "missing field"),
    ] {
        let res = basic(
            &s,
            Method::POST,
            &format!("{c}/acls"),
            &a.key,
            Some(body.clone()),
        )
        .await;
        let detail = assert_error(res, 400, "invalid_argument").await;
        assert!(detail.contains(says), "{body}: {detail}");
    }

    // Valid, but no broker answers: 503 naming the bootstrap broker, on every route.
    for (method, path, body) in group_and_acl_routes(&a.cluster) {
        let res = basic(&s, method.clone(), &path, &a.key, body).await;
        let detail = assert_error(res, 503, "unavailable").await;
        assert!(detail.contains(&brokers), "{method} {path}: {detail}");
    }
}

async fn basic(
    s: &Server,
    method: Method,
    path: &str,
    key: &(String, String),
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = s
        .http
        .request(method, s.url(path))
        .basic_auth(&key.0, Some(&key.1));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn who_may_call(db: Db) {
    let s = start_api_only(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let a = tenant(&s, "a@example.com").await;
    let b = tenant(&s, "b@example.com").await;
    let topics = format!("/kafka/v3/clusters/{}/topics", a.cluster);
    provision(&s, &a.cluster).await;
    provision(&s, &b.cluster).await;

    let res = s.http.get(s.url(&topics)).send().await.unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("HTTP Basic"), "{detail}");
    let res = s
        .http
        .get(s.url(&topics))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("bearer token"), "{detail}");
    let res = basic(&s, Method::GET, &topics, &a.cloud_key, None).await;
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("Cloud API key"), "{detail}");
    let wrong = (a.key.0.clone(), "not-the-secret".to_string());
    assert_error(
        basic(&s, Method::GET, &topics, &wrong, None).await,
        401,
        "unauthenticated",
    )
    .await;
    let res = basic(&s, Method::GET, &topics, &a.other_key, None).await;
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(
        detail.contains(&format!("is for cluster {}", a.other_cluster)),
        "{detail}"
    );

    // Another organisation's key: the cluster does not exist for it, on every route, and
    // nothing of A's shows in the answers.
    for (method, path) in [
        (Method::GET, topics.clone()),
        (Method::POST, topics.clone()),
        (Method::GET, format!("{topics}/orders")),
        (Method::DELETE, format!("{topics}/orders")),
        (Method::GET, format!("{topics}/orders/configs")),
        (Method::GET, format!("{topics}/orders/configs/retention.ms")),
    ] {
        let body = (method == Method::POST).then(|| json!({"topic_name": "x"}));
        let res = basic(&s, method.clone(), &path, &b.key, body).await;
        let detail = assert_error(res, 404, "not_found").await;
        assert!(detail.contains(&a.cluster), "{method} {path}: {detail}");
    }
    let res = basic(
        &s,
        Method::GET,
        "/kafka/v3/clusters/lkc-nothere/topics",
        &a.key,
        None,
    )
    .await;
    assert_error(res, 404, "not_found").await;

    // The key's own cluster, but still PROVISIONING: 409 says so.
    let other_topics = format!("/kafka/v3/clusters/{}/topics", a.other_cluster);
    let res = basic(&s, Method::GET, &other_topics, &a.other_key, None).await;
    let detail = assert_error(res, 409, "conflict").await;
    assert!(detail.contains("PROVISIONING"), "{detail}");

    // A deleted key stops working at once.
    let res = s
        .delete(&s.url(&format!("/iam/v2/api-keys/{}", a.key.0)), &a.token)
        .await;
    assert_eq!(res.status(), 204);
    assert_error(
        basic(&s, Method::GET, &topics, &a.key, None).await,
        401,
        "unauthenticated",
    )
    .await;
    // So does every key of a deleted cluster (and the cluster is gone).
    let res = s
        .delete(&s.url(&format!("/cmk/v2/clusters/{}", b.cluster)), &b.token)
        .await;
    assert_eq!(res.status(), 204);
    let b_topics = format!("/kafka/v3/clusters/{}/topics", b.cluster);
    assert_error(
        basic(&s, Method::GET, &b_topics, &b.key, None).await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn validation_and_unreachable_cell(db: Db) {
    let s = start_api_only(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let a = tenant(&s, "v@example.com").await;
    provision(&s, &a.cluster).await;
    let topics = format!("/kafka/v3/clusters/{}/topics", a.cluster);
    let create = |body: Value| basic(&s, Method::POST, &topics, &a.key, Some(body));

    for (body, says) in [
        (json!({"topic_name": "a b"}), "topic_name"),
        (json!({"topic_name": ".."}), "topic_name"),
        (json!({"topic_name": "x".repeat(250)}), "topic_name"),
        (
            json!({"topic_name": "t", "partitions_count": 0}),
            "partitions_count",
        ),
        (
            json!({"topic_name": "t", "replication_factor": 0}),
            "replication_factor",
        ),
        (
            json!({"topic_name": "t", "configs": [{"name": "cleanup.policy", "value": "compact"}]}),
            "allowed: delete",
        ),
        (
            json!({"topic_name": "t", "configs": [{"name": "retention.ms", "value": "soon"}]}),
            "must be an integer",
        ),
        (
            json!({"topic_name": "t", "configs": [{"name": "compression.type", "value": "zstd"}]}),
            "supported: cleanup.policy",
        ),
        (
            json!({"topic_name": "t", "configs": [{"name": "retention.ms", "value": "1"},
                                                   {"name": "retention.ms", "value": "2"}]}),
            "given twice",
        ),
        (json!({"topic_name": "t", "partitions": 3}), "unknown field"),
        (json!({"partitions_count": 3}), "topic_name"),
    ] {
        let detail = assert_error(create(body.clone()).await, 400, "invalid_argument").await;
        assert!(detail.contains(says), "{body}: {detail}");
    }
    let configs: Vec<Value> = (0..65)
        .map(|i| json!({"name": "retention.ms", "value": i.to_string()}))
        .collect();
    let detail = assert_error(
        create(json!({"topic_name": "t", "configs": configs})).await,
        400,
        "invalid_argument",
    )
    .await;
    assert!(detail.contains("at most 64"), "{detail}");

    // Valid, but the cell is unreachable: 503 naming the cell, for every route.
    let res = create(json!({"topic_name": "orders", "partitions_count": 3})).await;
    let detail = assert_error(res, 503, "unavailable").await;
    assert!(detail.contains("cell-1"), "{detail}");
    for path in [
        topics.clone(),
        format!("{topics}/orders"),
        format!("{topics}/orders/configs"),
    ] {
        let res = basic(&s, Method::GET, &path, &a.key, None).await;
        assert_error(res, 503, "unavailable").await;
    }
    let res = basic(
        &s,
        Method::DELETE,
        &format!("{topics}/orders"),
        &a.key,
        None,
    )
    .await;
    assert_error(res, 503, "unavailable").await;
}
