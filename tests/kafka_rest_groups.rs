//! Kafka REST v3 consumer groups and ACLs end to end, on SQLite and on PostgreSQL: a real
//! cell (a `tributary controller` and a `tributary broker` with a SASL listener) and a real
//! `tributary control-plane` with two tenants' clusters. Records are produced and offsets
//! committed with librdkafka over SASL/PLAIN; Kafka REST then shows the groups, their
//! members and their lag exactly, creates, searches and deletes ACLs, and those ACLs
//! decide what a service account's key may see. Neither tenant's key sees or touches the
//! other's groups or ACLs, even under the same group name.

mod common;

use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::sasl_config;
use common::control_plane::{ControlPlane, Db};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_acls_on_sqlite() {
    groups_and_acls(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_acls_on_postgres() {
    groups_and_acls(Db::postgres()).await
}

/// A cluster API key.
#[derive(Clone)]
struct Key {
    id: String,
    secret: String,
}

impl Key {
    async fn call(
        &self,
        cp: &ControlPlane,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        cp.basic(method, path, &self.id, &self.secret, body).await
    }

    async fn get(&self, cp: &ControlPlane, path: &str) -> Value {
        let (status, body) = self.call(cp, Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

async fn key(cp: &ControlPlane, token: &str, owner: &str, cluster: &str) -> Key {
    let (id, secret) = cp.cluster_key(token, owner, cluster).await;
    Key { id, secret }
}

/// Waits (30 s) until the cluster's brokers take `key` (a new key reaches them within about
/// a second; until then calls that go to the brokers answer 503).
async fn until_brokers_take(cp: &ControlPlane, key: &Key, cluster: &str) {
    let path = format!("/kafka/v3/clusters/{cluster}/consumer-groups");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = key.call(cp, Method::GET, &path, None).await;
        if status != 503 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the brokers never took key {}: {body}",
            key.id
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produces `count` records to each `(partition, count)` of `topic` and waits for each
/// acknowledgement.
async fn produce(bootstrap: &str, key: &Key, topic: &str, counts: &[(i32, usize)]) {
    let producer: FutureProducer = sasl_config(bootstrap, &key.id, &key.secret)
        .set("acks", "all")
        .create()
        .expect("producer");
    for &(partition, count) in counts {
        for i in 0..count {
            let value = format!("record-{partition}-{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(partition)
                        .payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce to {topic}/{partition}: {e}"));
        }
    }
}

/// Commits `offsets` (`(partition, offset)` of `topic`) for `group` as `consumer`,
/// retrying (30 s) while the group's coordinator is not there yet (the cell creates its
/// offsets topic on first need).
fn commit_as(consumer: &BaseConsumer, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => return,
            Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress,
            )) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("commit for {group}: {e}"),
        }
    }
}

/// Commits `offsets` for `group` without joining it.
fn commit(bootstrap: &str, key: &Key, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = sasl_config(bootstrap, &key.id, &key.secret)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    commit_as(&consumer, group, topic, offsets);
}

/// A member of `group` subscribed to `topic`, polled (60 s) until it has `partitions`.
fn member(
    bootstrap: &str,
    key: &Key,
    group: &str,
    client_id: &str,
    topic: &str,
    partitions: usize,
) -> BaseConsumer {
    let consumer: BaseConsumer = sasl_config(bootstrap, &key.id, &key.secret)
        .set("group.id", group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer.assignment().map(|a| a.count()).unwrap_or(0) < partitions {
        assert!(
            Instant::now() < deadline,
            "{client_id} never got {partitions} partitions"
        );
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            panic!("{client_id}: {e}");
        }
    }
    consumer
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data[] in {list}"))
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

fn acl(resource_type: &str, name: &str, pattern: &str, principal: &str, operation: &str) -> Value {
    json!({"resource_type": resource_type, "resource_name": name, "pattern_type": pattern,
           "principal": principal, "host": "*", "operation": operation, "permission": "ALLOW"})
}

async fn groups_and_acls(db: Db) {
    // One broker: topics (and the offsets topic) have one replica, so acks=all and group
    // commits need min.insync.replicas 1.
    let cell = Cell::start_sasl(
        1,
        1,
        &["--default-replication-factor", "1"],
        &["--min-insync-replicas", "1"],
    );
    cell.wait_active(1).await;
    let cp = ControlPlane::start(&db, &[format!("cell-test={}", cell.controllers)]).await;
    let bootstrap = cell.sasl_bootstrap();

    let (a_token, a_user) = cp.account("groups-a@example.com").await;
    let a_cluster = cp.provisioned_cluster(&a_token).await;
    let a = key(&cp, &a_token, &a_user, &a_cluster).await;
    let (b_token, b_user) = cp.account("groups-b@example.com").await;
    let b_cluster = cp.provisioned_cluster(&b_token).await;
    let b = key(&cp, &b_token, &b_user, &b_cluster).await;
    until_brokers_take(&cp, &a, &a_cluster).await;
    until_brokers_take(&cp, &b, &b_cluster).await;
    let a_base = format!("/kafka/v3/clusters/{a_cluster}");
    let b_base = format!("/kafka/v3/clusters/{b_cluster}");

    // A new cluster has no groups and no ACLs.
    let list = a.get(&cp, &format!("{a_base}/consumer-groups")).await;
    assert_eq!(list["kind"], "KafkaConsumerGroupList");
    assert_eq!(
        list["metadata"]["self"],
        format!("{}{a_base}/consumer-groups", cp.url)
    );
    assert!(ids(&list, "consumer_group_id").is_empty(), "{list}");
    let acls = a.get(&cp, &format!("{a_base}/acls")).await;
    assert_eq!(acls["kind"], "KafkaAclList");
    assert_eq!(acls["data"], json!([]));

    // Tenant A: 7 records in partition 0 and 5 in partition 1 of "orders"; group "billing"
    // commits 3 and 5 without joining; group "live" has a member and commits 2 and 2.
    let (status, t) = a
        .call(
            &cp,
            Method::POST,
            &format!("{a_base}/topics"),
            Some(json!({"topic_name": "orders", "partitions_count": 2, "replication_factor": 1})),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    produce(&bootstrap, &a, "orders", &[(0, 7), (1, 5)]).await;
    commit(&bootstrap, &a, "billing", "orders", &[(0, 3), (1, 5)]);
    let live = member(&bootstrap, &a, "live", "live-client", "orders", 2);
    commit_as(&live, "live", "orders", &[(0, 2), (1, 2)]);

    // The groups, by id.
    let list = a.get(&cp, &format!("{a_base}/consumer-groups")).await;
    assert_eq!(ids(&list, "consumer_group_id"), vec!["billing", "live"]);
    let billing = &list["data"][0];
    assert_eq!(billing["kind"], "KafkaConsumerGroup");
    assert_eq!(billing["cluster_id"], a_cluster);
    assert_eq!(billing["is_simple"], true);
    assert_eq!(billing["state"], "EMPTY");
    let group_url = format!("{}{a_base}/consumer-groups/billing", cp.url);
    assert_eq!(billing["metadata"]["self"], group_url);
    assert!(billing["metadata"]["resource_name"]
        .as_str()
        .unwrap()
        .ends_with(&format!("kafka={a_cluster}/consumer-group=billing")));
    assert_eq!(
        billing["lag_summary"]["related"],
        format!("{group_url}/lag-summary")
    );
    assert_eq!(
        billing["consumers"]["related"],
        format!("{group_url}/consumers")
    );
    let live_view = &list["data"][1];
    assert_eq!(live_view["is_simple"], false);
    assert_eq!(live_view["state"], "STABLE");
    assert!(
        !live_view["partition_assignor"].as_str().unwrap().is_empty(),
        "{live_view}"
    );
    let got = a
        .get(&cp, &format!("{a_base}/consumer-groups/billing"))
        .await;
    assert_eq!(&got, billing);

    // "billing": lag 7-3 = 4 on partition 0, 5-5 = 0 on partition 1; nobody assigned.
    let lags = a
        .get(&cp, &format!("{a_base}/consumer-groups/billing/lags"))
        .await;
    assert_eq!(lags["kind"], "KafkaConsumerLagList");
    let rows: Vec<(i64, i64, i64, i64, String)> = lags["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["kind"], "KafkaConsumerLag");
            assert_eq!(l["topic_name"], "orders");
            (
                l["partition_id"].as_i64().unwrap(),
                l["current_offset"].as_i64().unwrap(),
                l["log_end_offset"].as_i64().unwrap(),
                l["lag"].as_i64().unwrap(),
                l["consumer_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![(0, 3, 7, 4, String::new()), (1, 5, 5, 0, String::new())]
    );
    let one = a
        .get(
            &cp,
            &format!("{a_base}/consumer-groups/billing/lags/orders/partitions/0"),
        )
        .await;
    assert_eq!(one, lags["data"][0]);
    let (status, _) = a
        .call(
            &cp,
            Method::GET,
            &format!("{a_base}/consumer-groups/billing/lags/orders/partitions/7"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let summary = a
        .get(
            &cp,
            &format!("{a_base}/consumer-groups/billing/lag-summary"),
        )
        .await;
    assert_eq!(summary["kind"], "KafkaConsumerGroupLagSummary");
    assert_eq!(summary["consumer_group_id"], "billing");
    assert_eq!(summary["total_lag"], 4);
    assert_eq!(summary["max_lag"], 4);
    assert_eq!(summary["max_lag_topic_name"], "orders");
    assert_eq!(summary["max_lag_partition_id"], 0);
    assert_eq!(summary["max_lag_consumer_id"], "");
    assert!(summary.get("max_lag_consumer").is_none(), "{summary}");
    assert!(summary["max_lag_partition"]["related"]
        .as_str()
        .unwrap()
        .ends_with("/topics/orders/partitions/0"));
    let consumers = a
        .get(&cp, &format!("{a_base}/consumer-groups/billing/consumers"))
        .await;
    assert_eq!(consumers["data"], json!([]));

    // "live": one member with both partitions; lags 7-2 = 5 and 5-2 = 3.
    let consumers = a
        .get(&cp, &format!("{a_base}/consumer-groups/live/consumers"))
        .await;
    assert_eq!(consumers["kind"], "KafkaConsumerList");
    assert_eq!(ids(&consumers, "client_id"), vec!["live-client"]);
    let member_id = consumers["data"][0]["consumer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let one = a
        .get(
            &cp,
            &format!("{a_base}/consumer-groups/live/consumers/{member_id}"),
        )
        .await;
    assert_eq!(one, consumers["data"][0]);
    assert_eq!(one["kind"], "KafkaConsumer");
    let (status, _) = a
        .call(
            &cp,
            Method::GET,
            &format!("{a_base}/consumer-groups/live/consumers/nobody"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let summary = a
        .get(&cp, &format!("{a_base}/consumer-groups/live/lag-summary"))
        .await;
    assert_eq!(
        (summary["total_lag"].as_i64(), summary["max_lag"].as_i64()),
        (Some(8), Some(5))
    );
    assert_eq!(summary["max_lag_partition_id"], 0);
    assert_eq!(summary["max_lag_client_id"], "live-client");
    assert_eq!(summary["max_lag_consumer_id"], member_id.as_str());
    assert!(summary["max_lag_consumer"]["related"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/consumer-groups/live/consumers/{member_id}")));
    drop(live);

    // Unknown groups are 404 on every group route.
    for path in [
        "nothere",
        "nothere/consumers",
        "nothere/lags",
        "nothere/lag-summary",
    ] {
        let (status, body) = a
            .call(
                &cp,
                Method::GET,
                &format!("{a_base}/consumer-groups/{path}"),
                None,
            )
            .await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "not_found");
    }

    // Tenant B: its cluster has none of A's groups, even by name, and its own "billing"
    // is its own.
    let list = b.get(&cp, &format!("{b_base}/consumer-groups")).await;
    assert!(ids(&list, "consumer_group_id").is_empty(), "{list}");
    for path in [
        "billing",
        "billing/lag-summary",
        "billing/lags",
        "live/consumers",
    ] {
        let (status, body) = b
            .call(
                &cp,
                Method::GET,
                &format!("{b_base}/consumer-groups/{path}"),
                None,
            )
            .await;
        assert_eq!(status, 404, "B {path}: {body}");
    }
    let (status, _) = b
        .call(
            &cp,
            Method::POST,
            &format!("{b_base}/topics"),
            Some(json!({"topic_name": "orders", "partitions_count": 1, "replication_factor": 1})),
        )
        .await;
    assert_eq!(status, 201);
    produce(&bootstrap, &b, "orders", &[(0, 2)]).await;
    commit(&bootstrap, &b, "billing", "orders", &[(0, 1)]);
    let summary = b
        .get(
            &cp,
            &format!("{b_base}/consumer-groups/billing/lag-summary"),
        )
        .await;
    assert_eq!(
        (summary["total_lag"].as_i64(), summary["max_lag"].as_i64()),
        (Some(1), Some(1))
    );
    let summary = a
        .get(
            &cp,
            &format!("{a_base}/consumer-groups/billing/lag-summary"),
        )
        .await;
    assert_eq!(summary["total_lag"], 4, "A's billing is untouched by B's");
    // B's key on A's cluster: 404 on every route, and nothing of A's in the answer.
    for (method, path, body) in [
        (Method::GET, format!("{a_base}/consumer-groups"), None),
        (
            Method::GET,
            format!("{a_base}/consumer-groups/billing"),
            None,
        ),
        (
            Method::GET,
            format!("{a_base}/consumer-groups/billing/lag-summary"),
            None,
        ),
        (
            Method::GET,
            format!("{a_base}/consumer-groups/billing/lags"),
            None,
        ),
        (
            Method::GET,
            format!("{a_base}/consumer-groups/live/consumers"),
            None,
        ),
        (Method::GET, format!("{a_base}/acls"), None),
        (
            Method::POST,
            format!("{a_base}/acls"),
            Some(acl("TOPIC", "orders", "LITERAL", "User:*", "READ")),
        ),
        (
            Method::DELETE,
            format!(
                "{a_base}/acls?resource_type=ANY&pattern_type=ANY&operation=ANY&permission=ANY"
            ),
            None,
        ),
    ] {
        let (status, answer) = b.call(&cp, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert!(!answer.to_string().contains("live-client"), "{answer}");
    }

    // A service account's key sees only what ACLs allow.
    let (status, sa) = cp
        .call(
            Method::POST,
            "/iam/v2/service-accounts",
            Some(&a_token),
            Some(json!({"display_name": "reporting"})),
        )
        .await;
    assert_eq!(status, 201, "{sa}");
    let sa_id = sa["id"].as_str().unwrap().to_string();
    let principal = format!("User:{sa_id}");
    let s = key(&cp, &a_token, &sa_id, &a_cluster).await;
    until_brokers_take(&cp, &s, &a_cluster).await;
    let list = s.get(&cp, &format!("{a_base}/consumer-groups")).await;
    assert!(
        ids(&list, "consumer_group_id").is_empty(),
        "no DESCRIBE on any group: {list}"
    );
    for (method, path, body) in [
        (
            Method::GET,
            format!("{a_base}/consumer-groups/billing"),
            None,
        ),
        (Method::GET, format!("{a_base}/acls"), None),
        (
            Method::POST,
            format!("{a_base}/acls"),
            Some(acl("GROUP", "billing", "LITERAL", &principal, "READ")),
        ),
    ] {
        let (status, answer) = s.call(&cp, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["errors"][0]["code"], "forbidden");
        assert!(
            answer["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("ACL"),
            "{answer}"
        );
    }
    // A's own key grants DESCRIBE on the group: the service account now sees it, but its
    // lag needs READ on the group (OffsetFetch) too.
    let (status, body) = a
        .call(
            &cp,
            Method::POST,
            &format!("{a_base}/acls"),
            Some(acl("GROUP", "billing", "LITERAL", &principal, "DESCRIBE")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let list = s.get(&cp, &format!("{a_base}/consumer-groups")).await;
    assert_eq!(ids(&list, "consumer_group_id"), vec!["billing"]);
    s.get(&cp, &format!("{a_base}/consumer-groups/billing"))
        .await;
    let (status, answer) = s
        .call(
            &cp,
            Method::GET,
            &format!("{a_base}/consumer-groups/billing/lag-summary"),
            None,
        )
        .await;
    assert_eq!(status, 403, "{answer}");

    // ACLs: create (twice is once), search by each filter, delete by filter.
    let topic_acl = acl("TOPIC", "ord", "PREFIXED", &principal, "READ");
    for _ in 0..2 {
        let (status, body) = a
            .call(
                &cp,
                Method::POST,
                &format!("{a_base}/acls"),
                Some(topic_acl.clone()),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let all = a.get(&cp, &format!("{a_base}/acls")).await;
    assert_eq!(ids(&all, "resource_type"), vec!["TOPIC", "GROUP"]);
    let topic = &all["data"][0];
    assert_eq!(topic["kind"], "KafkaAcl");
    assert_eq!(topic["cluster_id"], a_cluster);
    for field in [
        "resource_type",
        "resource_name",
        "pattern_type",
        "principal",
        "host",
        "operation",
        "permission",
    ] {
        assert_eq!(topic[field], topic_acl[field], "{field}: {topic}");
    }
    let self_url = topic["metadata"]["self"].as_str().unwrap();
    assert!(
        self_url.starts_with(&format!(
            "{}{a_base}/acls?resource_type=TOPIC&resource_name=ord",
            cp.url
        )),
        "{self_url}"
    );
    let found = a.get(&cp, &self_url.replacen(&cp.url, "", 1)).await;
    assert_eq!(
        found["data"],
        json!([topic]),
        "an ACL's self finds exactly it"
    );
    for (query, want) in [
        ("resource_type=GROUP", vec!["GROUP"]),
        ("pattern_type=PREFIXED", vec!["TOPIC"]),
        ("operation=DESCRIBE", vec!["GROUP"]),
        ("permission=DENY", vec![]),
        (
            "resource_type=TOPIC&resource_name=orders&pattern_type=MATCH",
            vec!["TOPIC"],
        ),
        (
            &format!("principal={principal}") as &str,
            vec!["TOPIC", "GROUP"],
        ),
        ("principal=User:u-nobody", vec![]),
    ] {
        let found = a.get(&cp, &format!("{a_base}/acls?{query}")).await;
        assert_eq!(ids(&found, "resource_type"), want, "{query}: {found}");
    }
    // What the brokers refuse is a 400 with their reason.
    for (body, says) in [
        (acl("TOPIC", "orders", "LITERAL", "bob", "READ"), "User:sa-"),
        (
            acl("CLUSTER", "mine", "LITERAL", &principal, "ALTER"),
            "kafka-cluster",
        ),
    ] {
        let (status, answer) = a
            .call(&cp, Method::POST, &format!("{a_base}/acls"), Some(body))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains(says),
            "{answer}"
        );
    }
    // B sees none of A's ACLs on its own cluster.
    let b_acls = b.get(&cp, &format!("{b_base}/acls")).await;
    assert_eq!(b_acls["data"], json!([]));
    // Delete the topic ACLs: answered with what went; the group ACL stays.
    let (status, deleted) = a
        .call(
            &cp,
            Method::DELETE,
            &format!(
                "{a_base}/acls?resource_type=TOPIC&pattern_type=ANY&operation=ANY&permission=ANY"
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["data"], json!([topic]));
    let left = a.get(&cp, &format!("{a_base}/acls")).await;
    assert_eq!(ids(&left, "resource_type"), vec!["GROUP"]);
    let (status, deleted) = a
        .call(
            &cp,
            Method::DELETE,
            &format!(
                "{a_base}/acls?resource_type=TOPIC&pattern_type=ANY&operation=ANY&permission=ANY"
            ),
            None,
        )
        .await;
    assert_eq!((status, deleted), (200, json!({"data": []})));
    // Without its ACL the service account no longer sees the group.
    let (status, _) = a
        .call(&cp, Method::DELETE,
              &format!("{a_base}/acls?resource_type=GROUP&pattern_type=LITERAL&operation=DESCRIBE&permission=ALLOW&principal={principal}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .call(
            &cp,
            Method::GET,
            &format!("{a_base}/consumer-groups/billing"),
            None,
        )
        .await;
    assert_eq!(status, 403);
}
