//! Tenants on one cell, through the SASL_PLAINTEXT listener of real broker processes:
//! each connection is bound to its API key's logical cluster, tenants see only their own
//! topics and groups, bad credentials are refused (after a delay) and revoked keys lose
//! their connections.
//!
//! The isolation suite has tenant B try every advertised API against tenant A's topic
//! and group, by name and by id, and checks each answer is exactly what B gets for a
//! name that exists nowhere; then that no byte of A's data reached B.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cell::Cell;
use common::clients::sasl_config;
use common::wire::{record_batch, WireClient};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    incremental_alter_configs_request, leave_group_request, offset_fetch_request,
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, BrokerId, CreateAclsRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeAclsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, ProducerId, RequestKind,
    ResponseKind, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const A: &str = "lkc-aaaa";
const B: &str = "lkc-bbbb";
const KEY_A: &str = "AKEYAAAAAAAAAAAA";
const KEY_B: &str = "BKEYBBBBBBBBBBBB";
const SECRET_A: &str = "secret-of-tenant-a";
const SECRET_B: &str = "secret-of-tenant-b";
const TOPIC: &str = "orders";
const GROUP: &str = "billing-service";
/// A name that exists in no tenant: what B sees for A's resources must look like this.
const MISSING: &str = "no-such-thing-anywhere";
const RECORDS: usize = 30;

fn sv(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

async fn two_tenant_cell() -> Cell {
    let cell = Cell::start_sasl(1, 3, &[], &[]);
    cell.wait_active(3).await;
    cell.create_tenant(A).await;
    cell.create_tenant(B).await;
    cell.put_key(A, KEY_A, SECRET_A, "User:u-alice").await;
    cell.put_key(B, KEY_B, SECRET_B, "User:u-bob").await;
    cell
}

fn first_sasl(cell: &Cell) -> String {
    cell.brokers[0].sasl_addr.clone().expect("sasl listener")
}

async fn connect(cell: &Cell, key: &str, secret: &str) -> WireClient {
    WireClient::sasl_plain(&first_sasl(cell), key, secret)
        .await
        .unwrap_or_else(|e| panic!("authenticate {key}: {e:?}"))
}

/// A connection to the coordinator of `group` as the tenant of `key`.
async fn coordinator(cell: &Cell, key: &str, secret: &str, group: &str) -> WireClient {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = connect(cell, key, secret).await;
        let req = FindCoordinatorRequest::default().with_key(sv(group));
        if let Ok(ResponseKind::FindCoordinator(r)) =
            c.call(ApiKey::FindCoordinator, 3, req.into()).await
        {
            if r.error_code == 0 {
                let addr = format!("{}:{}", r.host.as_str(), r.port);
                return WireClient::sasl_plain(&addr, key, secret)
                    .await
                    .expect("authenticate at the coordinator");
            }
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tenant A's world: a replicated topic with records and a group with offsets.
/// Returns the topic's id.
async fn populate_tenant_a(cell: &Cell) -> uuid::Uuid {
    let mut a = connect(cell, KEY_A, SECRET_A).await;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(sv(TOPIC)))
            .with_num_partitions(3)
            .with_replication_factor(3)])
        .with_timeout_ms(20_000);
    let ResponseKind::CreateTopics(r) = a
        .call(ApiKey::CreateTopics, 7, create.into())
        .await
        .unwrap()
    else {
        panic!("CreateTopics answer")
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    let topic_id = r.topics[0].topic_id;

    let producer: FutureProducer = sasl_config(&cell.sasl_bootstrap(), KEY_A, SECRET_A)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for i in 0..RECORDS {
        let value = format!("a-secret-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(TOPIC)
                    .partition((i % 3) as i32)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("A's produce: {e}"));
    }

    let mut coord = coordinator(cell, KEY_A, SECRET_A, GROUP).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(sv(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sv(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(7)])]);
    let ResponseKind::OffsetCommit(r) = coord
        .call(ApiKey::OffsetCommit, 8, commit.into())
        .await
        .unwrap()
    else {
        panic!("OffsetCommit answer")
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0, "A commits");
    topic_id
}

/// Every error code in a response, in order, with the resource names blanked out: two
/// answers that differ only in the names asked about compare equal.
fn shape(resp: &ResponseKind) -> String {
    let text = format!("{resp:?}");
    text.replace(TOPIC, "<name>")
        .replace(MISSING, "<name>")
        .replace(GROUP, "<name>")
}

/// B's view: each request aimed at A's resource answers exactly like the same request
/// aimed at a resource that exists nowhere.
struct Attempts {
    made: usize,
}

impl Attempts {
    async fn same_as_missing(
        &mut self,
        client: &mut WireClient,
        what: &str,
        key: ApiKey,
        version: i16,
        at_a: RequestKind,
        at_missing: RequestKind,
    ) {
        let a = client.call(key, version, at_a).await.expect(what);
        let m = client.call(key, version, at_missing).await.expect(what);
        self.made += 1;
        assert_eq!(
            shape(&a),
            shape(&m),
            "{what}: B's answer about A's resource differs from a missing one's"
        );
        assert!(
            !format!("{a:?}").contains("a-secret"),
            "{what}: A's data leaked"
        );
    }
}

fn topic_requests(name: &str, id: uuid::Uuid) -> Vec<(&'static str, ApiKey, i16, RequestKind)> {
    let t = || TopicName(sv(name));
    let records = record_batch(&["b-writes-into-a".to_string()]);
    vec![
        (
            "Metadata by name",
            ApiKey::Metadata,
            12,
            MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(t()))
                ]))
                .with_allow_auto_topic_creation(false)
                .into(),
        ),
        (
            "Metadata by id",
            ApiKey::Metadata,
            12,
            MetadataRequest::default()
                .with_topics(Some(
                    vec![MetadataRequestTopic::default().with_topic_id(id)],
                ))
                .into(),
        ),
        (
            "Produce",
            ApiKey::Produce,
            9,
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(t())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records))])])
                .into(),
        ),
        (
            "Fetch",
            ApiKey::Fetch,
            12,
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(10)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default().with_topic(t()).with_partitions(
                    (0..3)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )])
                .into(),
        ),
        (
            "Fetch claiming to be a follower",
            ApiKey::Fetch,
            12,
            FetchRequest::default()
                .with_replica_id(BrokerId(2))
                .with_max_wait_ms(10)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(sv(&id.to_string())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])])
                .into(),
        ),
        (
            "ListOffsets",
            ApiKey::ListOffsets,
            7,
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(t())
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2)])])
                .into(),
        ),
        (
            "OffsetForLeaderEpoch",
            ApiKey::OffsetForLeaderEpoch,
            4,
            OffsetForLeaderEpochRequest::default()
                .with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(t())
                    .with_partitions(vec![OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_leader_epoch(0)])])
                .into(),
        ),
        (
            "DeleteRecords",
            ApiKey::DeleteRecords,
            2,
            DeleteRecordsRequest::default()
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(t())
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(5)])])
                .with_timeout_ms(5000)
                .into(),
        ),
        (
            "CreatePartitions",
            ApiKey::CreatePartitions,
            3,
            CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(t())
                    .with_count(6)])
                .with_timeout_ms(5000)
                .into(),
        ),
        (
            "DescribeConfigs",
            ApiKey::DescribeConfigs,
            4,
            DescribeConfigsRequest::default()
                .with_resources(vec![DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(sv(name))])
                .into(),
        ),
        (
            "AlterConfigs",
            ApiKey::AlterConfigs,
            2,
            AlterConfigsRequest::default()
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(sv(name))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(sv("retention.ms"))
                        .with_value(Some(sv("1000")))])])
                .into(),
        ),
        (
            "IncrementalAlterConfigs",
            ApiKey::IncrementalAlterConfigs,
            1,
            IncrementalAlterConfigsRequest::default()
                .with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(sv(name))
                        .with_configs(vec![
                            incremental_alter_configs_request::AlterableConfig::default()
                                .with_name(sv("retention.ms"))
                                .with_config_operation(0)
                                .with_value(Some(sv("1000"))),
                        ]),
                ])
                .into(),
        ),
        (
            "DeleteTopics by name",
            ApiKey::DeleteTopics,
            6,
            DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_name(Some(t()))])
                .with_timeout_ms(5000)
                .into(),
        ),
        (
            "DeleteTopics by id",
            ApiKey::DeleteTopics,
            6,
            DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(id)])
                .with_timeout_ms(5000)
                .into(),
        ),
    ]
}

fn group_requests(group: &str) -> Vec<(&'static str, ApiKey, i16, RequestKind)> {
    let g = || GroupId(sv(group));
    vec![
        (
            "OffsetFetch v7",
            ApiKey::OffsetFetch,
            7,
            OffsetFetchRequest::default()
                .with_group_id(g())
                .with_topics(None)
                .into(),
        ),
        (
            "OffsetFetch v8",
            ApiKey::OffsetFetch,
            8,
            OffsetFetchRequest::default()
                .with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(g())
                        .with_topics(None),
                ])
                .into(),
        ),
        (
            "DescribeGroups",
            ApiKey::DescribeGroups,
            5,
            DescribeGroupsRequest::default()
                .with_groups(vec![g()])
                .into(),
        ),
        (
            "Heartbeat",
            ApiKey::Heartbeat,
            4,
            HeartbeatRequest::default()
                .with_group_id(g())
                .with_generation_id(1)
                .with_member_id(sv("some-member"))
                .into(),
        ),
        (
            "SyncGroup",
            ApiKey::SyncGroup,
            5,
            SyncGroupRequest::default()
                .with_group_id(g())
                .with_generation_id(1)
                .with_member_id(sv("some-member"))
                .with_protocol_type(Some(sv("consumer")))
                .with_protocol_name(Some(sv("range")))
                .into(),
        ),
        (
            "LeaveGroup",
            ApiKey::LeaveGroup,
            5,
            LeaveGroupRequest::default()
                .with_group_id(g())
                .with_members(vec![leave_group_request::MemberIdentity::default()
                    .with_member_id(sv("some-member"))])
                .into(),
        ),
        (
            "DeleteGroups",
            ApiKey::DeleteGroups,
            2,
            DeleteGroupsRequest::default()
                .with_groups_names(vec![g()])
                .into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_b_cannot_reach_tenant_a_by_any_advertised_api() {
    let cell = two_tenant_cell().await;
    let topic_id = populate_tenant_a(&cell).await;
    let mut attempts = Attempts { made: 0 };

    // Topics, by name and by id, against every broker (leaders and followers alike).
    let missing_id = uuid::Uuid::new_v4();
    for broker in &cell.brokers {
        let addr = broker.sasl_addr.clone().unwrap();
        let mut b = WireClient::sasl_plain(&addr, KEY_B, SECRET_B)
            .await
            .unwrap();
        for ((what, key, v, at_a), (_, _, _, at_missing)) in topic_requests(TOPIC, topic_id)
            .into_iter()
            .zip(topic_requests(MISSING, missing_id))
        {
            let shape_a = {
                let r = b.call(key, v, at_a.clone()).await.expect(what);
                shape(&r).replace(&topic_id.to_string(), "<id>")
            };
            let shape_m = {
                let r = b.call(key, v, at_missing.clone()).await.expect(what);
                shape(&r).replace(&missing_id.to_string(), "<id>")
            };
            attempts.made += 1;
            assert_eq!(shape_a, shape_m, "{what} on broker {}", broker.node_id);
        }
        // The listing APIs show B nothing of A's.
        let all = MetadataRequest::default().with_topics(None);
        let r = b.call(ApiKey::Metadata, 12, all.into()).await.unwrap();
        attempts.made += 1;
        let text = format!("{r:?}");
        assert!(!text.contains(TOPIC) && !text.contains(&topic_id.to_string()));
        assert!(text.contains(B), "B's Metadata names B's cluster: {text}");
        let r = b
            .call(
                ApiKey::DescribeCluster,
                0,
                DescribeClusterRequest::default().into(),
            )
            .await
            .unwrap();
        attempts.made += 1;
        let ResponseKind::DescribeCluster(r) = r else {
            panic!()
        };
        assert_eq!(r.cluster_id.as_str(), B);
    }

    // Groups, at B's coordinator for that group id (a different partition than A's).
    let mut b_coord = coordinator(&cell, KEY_B, SECRET_B, GROUP).await;
    let mut b_missing = coordinator(&cell, KEY_B, SECRET_B, MISSING).await;
    for ((what, key, v, at_a), (_, _, _, at_missing)) in group_requests(GROUP)
        .into_iter()
        .zip(group_requests(MISSING))
    {
        let a = b_coord.call(key, v, at_a).await.expect(what);
        let m = b_missing.call(key, v, at_missing).await.expect(what);
        attempts.made += 1;
        assert_eq!(shape(&a), shape(&m), "{what}");
    }
    for broker in &cell.brokers {
        let addr = broker.sasl_addr.clone().unwrap();
        let mut b = WireClient::sasl_plain(&addr, KEY_B, SECRET_B)
            .await
            .unwrap();
        let r = b
            .call(ApiKey::ListGroups, 4, ListGroupsRequest::default().into())
            .await
            .unwrap();
        attempts.made += 1;
        assert!(
            !format!("{r:?}").contains(GROUP),
            "ListGroups shows A's group"
        );
    }
    // B committing into "its" group of the same name touches only B's group.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(sv(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sv(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    attempts
        .same_as_missing(
            &mut b_coord,
            "OffsetCommit to A's topic",
            ApiKey::OffsetCommit,
            8,
            commit.clone().into(),
            commit
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sv(MISSING)))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1)])])
                .into(),
        )
        .await;

    // A's world is untouched: its records, its topic and its group's offset.
    let consumer: BaseConsumer = sasl_config(&cell.sasl_bootstrap(), KEY_A, SECRET_A)
        .set("group.id", "a-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < RECORDS && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    assert_eq!(seen.len(), RECORDS, "A reads back all of its records");
    assert!(seen.iter().all(|v| v.starts_with("a-secret-")), "{seen:?}");
    let mut a_coord = coordinator(&cell, KEY_A, SECRET_A, GROUP).await;
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(sv(GROUP)))
        .with_topics(None);
    let ResponseKind::OffsetFetch(r) = a_coord
        .call(ApiKey::OffsetFetch, 7, fetch.into())
        .await
        .unwrap()
    else {
        panic!()
    };
    let committed: BTreeMap<i32, i64> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(committed.get(&0), Some(&7), "A's group offset is A's");

    // B with a real client: a topic of the same name is B's own, and holds only B's data.
    let producer: FutureProducer = sasl_config(&cell.sasl_bootstrap(), KEY_B, SECRET_B)
        .set("acks", "all")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<(), _>::to(TOPIC)
                .partition(0)
                .payload("b-own"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("B's produce: {e}"));
    let consumer: BaseConsumer = sasl_config(&cell.sasl_bootstrap(), KEY_B, SECRET_B)
        .set("group.id", "b-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut b_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            b_seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    assert_eq!(
        b_seen,
        vec!["b-own".to_string()],
        "B reads only its own topic"
    );
    println!(
        "ISOLATION: {} attempts by tenant B on tenant A's topic and group; none reached A",
        attempts.made
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_and_revoked_keys_lose_their_connections() {
    let cell = two_tenant_cell().await;
    let addr = first_sasl(&cell);

    // A wrong secret and an unknown key get the same answer, and the connection closes.
    for (user, password) in [(KEY_A, "wrong"), ("NOSUCHKEY", SECRET_A), (KEY_A, SECRET_B)] {
        let started = Instant::now();
        let err = WireClient::sasl_plain(&addr, user, password)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.0, 58, "SASL_AUTHENTICATION_FAILED, got {err:?}");
        assert!(
            err.1.contains("invalid API key or secret"),
            "message says what failed: {}",
            err.1
        );
        println!("refused {user} after {} ms", started.elapsed().as_millis());
    }

    // Anything but ApiVersions before authenticating closes the connection.
    let mut raw = WireClient::connect(&addr).await;
    let r = raw
        .call(ApiKey::ApiVersions, 3, ApiVersionsRequest::default().into())
        .await
        .expect("ApiVersions is allowed before SASL");
    let ResponseKind::ApiVersions(v) = r else {
        panic!()
    };
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::SaslHandshake as i16));
    let meta = MetadataRequest::default().with_topics(None);
    assert!(
        raw.call(ApiKey::Metadata, 12, meta.into()).await.is_err(),
        "Metadata before authentication must close the connection"
    );

    // The PLAINTEXT listener of a broker without --tenant serves only replication.
    let mut plain = WireClient::connect(&cell.brokers[0].addr).await;
    let meta = MetadataRequest::default().with_topics(None);
    assert!(
        plain.call(ApiKey::Metadata, 12, meta.into()).await.is_err(),
        "client requests on the replication listener must close the connection"
    );

    // A revoked key's open connections close, idle or not; new ones are refused.
    let mut idle = connect(&cell, KEY_A, SECRET_A).await;
    let mut busy = connect(&cell, KEY_A, SECRET_A).await;
    let mut other = connect(&cell, KEY_B, SECRET_B).await;
    let revoked_at = Instant::now();
    cell.revoke_key(KEY_A).await;
    assert!(idle.is_closed().await, "idle connection of a revoked key");
    let closed_after = revoked_at.elapsed();
    let meta = MetadataRequest::default().with_topics(None);
    assert!(busy.call(ApiKey::Metadata, 12, meta.into()).await.is_err());
    let err = WireClient::sasl_plain(&addr, KEY_A, SECRET_A)
        .await
        .err()
        .expect("revoked key refused");
    assert_eq!(err.0, 58);
    let meta = MetadataRequest::default().with_topics(None);
    assert!(
        other.call(ApiKey::Metadata, 12, meta.into()).await.is_ok(),
        "another tenant's connection stays open"
    );
    println!(
        "REVOCATION: idle connection closed {} ms after the key was deleted",
        closed_after.as_millis()
    );
}

const KEY_SA: &str = "SAKEYSSSSSSSSSSS";
const SECRET_SA: &str = "secret-of-the-reader";

fn read_acl(topic: &str, principal: &str) -> AclCreation {
    AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(sv(topic))
        .with_resource_pattern_type(3)
        .with_principal(sv(principal))
        .with_host(sv("*"))
        .with_operation(3)
        .with_permission_type(3)
}

fn all_acls() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)
}

/// Every error code in a response, in order of appearance.
fn codes(resp: &ResponseKind) -> Vec<i16> {
    let text = format!("{resp:?}");
    text.match_indices("error_code: ")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let end = rest
                .find(|c: char| c != '-' && !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_with_read_on_one_topic_can_consume_it_and_nothing_else() {
    let cell = two_tenant_cell().await;
    cell.put_key(A, KEY_SA, SECRET_SA, "User:sa-reader").await;
    let mut owner = connect(&cell, KEY_A, SECRET_A).await;
    for topic in ["orders", "payments"] {
        let create = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(sv(topic)))
                .with_num_partitions(1)
                .with_replication_factor(3)])
            .with_timeout_ms(20_000);
        let r = owner
            .call(ApiKey::CreateTopics, 7, create.into())
            .await
            .unwrap();
        assert!(codes(&r).iter().all(|c| *c == 0), "{r:?}");
    }
    let producer: FutureProducer = sasl_config(&cell.sasl_bootstrap(), KEY_A, SECRET_A)
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..10 {
        for topic in ["orders", "payments"] {
            producer
                .send(
                    FutureRecord::<(), _>::to(topic).payload(&format!("{topic}-{i}")),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("owner's produce: {e}"));
        }
    }
    // The owner (a user's key) grants the service account READ on `orders` only.
    let grant =
        CreateAclsRequest::default().with_creations(vec![read_acl("orders", "User:sa-reader")]);
    let r = owner
        .call(ApiKey::CreateAcls, 2, grant.into())
        .await
        .unwrap();
    assert!(codes(&r).iter().all(|c| *c == 0), "{r:?}");
    let bad = CreateAclsRequest::default().with_creations(vec![read_acl("orders", "sa-reader")]);
    let r = owner.call(ApiKey::CreateAcls, 2, bad.into()).await.unwrap();
    assert_eq!(
        codes(&r),
        vec![42],
        "a principal without User: is an INVALID_REQUEST: {r:?}"
    );

    // The service account consumes `orders` with a real client.
    let consumer: BaseConsumer = sasl_config(&cell.sasl_bootstrap(), KEY_SA, SECRET_SA)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("orders", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 10 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    assert_eq!(got.len(), 10, "the reader consumes orders: {got:?}");
    assert!(got.iter().all(|v| v.starts_with("orders-")));
    drop(consumer);

    // ...and nothing else.
    let mut sa = connect(&cell, KEY_SA, SECRET_SA).await;
    let listed = sa
        .call(
            ApiKey::Metadata,
            12,
            MetadataRequest::default().with_topics(None).into(),
        )
        .await
        .unwrap();
    let ResponseKind::Metadata(m) = &listed else {
        panic!()
    };
    let names: Vec<String> = m
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(
        names,
        vec!["orders".to_string()],
        "the reader lists only what it may describe"
    );
    let fetch = |topic: &str| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(10)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(sv(topic)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sv("orders")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(record_batch(&["not allowed".to_string()])))])]);
    let refused: Vec<(&str, ApiKey, i16, RequestKind, i16)> = vec![
        (
            "Produce to the readable topic",
            ApiKey::Produce,
            9,
            produce.into(),
            29,
        ),
        (
            "Fetch another topic",
            ApiKey::Fetch,
            12,
            fetch("payments").into(),
            29,
        ),
        (
            "Metadata of another topic",
            ApiKey::Metadata,
            12,
            MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(TopicName(sv("payments"))))
                ]))
                .into(),
            29,
        ),
        (
            "CreateTopics",
            ApiKey::CreateTopics,
            7,
            CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(sv("mine")))
                    .with_num_partitions(1)
                    .with_replication_factor(3)])
                .into(),
            29,
        ),
        (
            "DeleteTopics",
            ApiKey::DeleteTopics,
            6,
            DeleteTopicsRequest::default()
                .with_topics(vec![
                    DeleteTopicState::default().with_name(Some(TopicName(sv("orders"))))
                ])
                .into(),
            29,
        ),
        (
            "FindCoordinator for a group",
            ApiKey::FindCoordinator,
            3,
            FindCoordinatorRequest::default()
                .with_key(sv("readers"))
                .into(),
            30,
        ),
        (
            "InitProducerId",
            ApiKey::InitProducerId,
            4,
            InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .into(),
            31,
        ),
        (
            "DescribeAcls",
            ApiKey::DescribeAcls,
            2,
            all_acls().into(),
            31,
        ),
        (
            "CreateAcls for itself",
            ApiKey::CreateAcls,
            2,
            CreateAclsRequest::default()
                .with_creations(vec![read_acl("payments", "User:sa-reader")])
                .into(),
            31,
        ),
    ];
    for (what, key, v, req, want) in refused {
        let r = sa.call(key, v, req).await.expect(what);
        let got = codes(&r);
        assert!(
            got.contains(&want),
            "{what}: wanted error {want}, got {got:?} in {r:?}"
        );
        assert!(
            !format!("{r:?}").contains("payments-"),
            "{what}: data leaked"
        );
    }

    // Tenant B's owner sees none of A's ACLs; A's owner sees its binding and deletes it.
    let mut b = connect(&cell, KEY_B, SECRET_B).await;
    let r = b
        .call(ApiKey::DescribeAcls, 2, all_acls().into())
        .await
        .unwrap();
    assert!(
        !format!("{r:?}").contains("sa-reader"),
        "B sees A's ACLs: {r:?}"
    );
    let r = owner
        .call(ApiKey::DescribeAcls, 2, all_acls().into())
        .await
        .unwrap();
    assert!(format!("{r:?}").contains("sa-reader"), "{r:?}");
    let delete = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_principal_filter(Some(sv("User:sa-reader")))
        .with_operation(1)
        .with_permission_type(1)]);
    let r = b
        .call(ApiKey::DeleteAcls, 2, delete.clone().into())
        .await
        .unwrap();
    assert!(
        !format!("{r:?}").contains("sa-reader"),
        "B deleted A's ACL: {r:?}"
    );
    let r = owner
        .call(ApiKey::DeleteAcls, 2, delete.into())
        .await
        .unwrap();
    assert!(
        format!("{r:?}").contains("sa-reader"),
        "the owner deletes the binding: {r:?}"
    );
    let r = sa
        .call(ApiKey::Fetch, 12, fetch("orders").into())
        .await
        .unwrap();
    assert!(codes(&r).contains(&29), "READ is gone with its ACL: {r:?}");
}

/// kcat with Debian's librdkafka (2.0.2), which enables SASL only when SaslHandshake v0 is
/// advertised: produce and consume as tenant A, and be refused with a wrong secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_and_consumes_over_sasl_plain_and_scram() {
    let cell = two_tenant_cell().await;
    let bootstrap = cell.sasl_bootstrap();
    let kcat_args = |mechanism: &str, key: &str, secret: &str, rest: &[&str]| {
        common::clients::kcat_sasl_args(&bootstrap, None, mechanism, key, secret, rest)
    };
    let run = |args: Vec<String>, stdin: Option<&str>| common::clients::kcat(&args, stdin);
    // Written with SCRAM-SHA-256, read back with SCRAM-SHA-512 and with PLAIN.
    let produce = ["-P", "-t", "greetings", "-X", "acks=all"];
    run(
        kcat_args("SCRAM-SHA-256", KEY_A, SECRET_A, &produce),
        Some("hello\nfrom kcat\n"),
    );
    let consume = [
        "-C",
        "-t",
        "greetings",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%s\n",
    ];
    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let out = run(kcat_args(mechanism, KEY_A, SECRET_A, &consume), None);
        assert_eq!(out, "hello\nfrom kcat\n", "{mechanism}");
    }
    // A wrong secret fails SCRAM as it fails PLAIN.
    let args = kcat_args(
        "SCRAM-SHA-256",
        KEY_A,
        "not-the-secret",
        &["-L", "-m", "10"],
    );
    let err = common::clients::kcat_fails(&args);
    assert!(err.contains("uthentication failed"), "{err}");
    // B's key sees no such topic.
    let listed = run(kcat_args("SCRAM-SHA-512", KEY_B, SECRET_B, &["-L"]), None);
    assert!(!listed.contains("greetings"), "{listed}");
}
