//! An in-process 3-voter controller quorum over real gRPC on 127.0.0.1 (temp dirs), driven
//! through `ControllerClient` like brokers and the control plane will drive it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cells::client::{watch_metadata, ClientOptions, ControllerClient};
use cells::error::codes;
use cells::image::CellImage;
use cells::{ControllerConfig, ControllerNode};
use proto::cell::v1::cell_controller_client::CellControllerClient;
use proto::cell::v1::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Quorum {
    nodes: Vec<ControllerNode>,
    addrs: Vec<String>,
    shutdown: CancellationToken,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_quorum() -> Quorum {
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        voters.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let shutdown = CancellationToken::new();
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ControllerConfig::new(i as u64 + 1, "cell-test", dir.path(), voters.clone());
        c.session_timeout = Duration::from_millis(1500);
        c.preferred_election_interval = Duration::from_millis(500);
        c.snapshot_every = 20;
        c.watch_ring = 8;
        nodes.push(ControllerNode::start(c, l, shutdown.clone()).await.unwrap());
        dirs.push(dir);
    }
    Quorum {
        nodes,
        addrs: voters.values().cloned().collect(),
        shutdown,
        _dirs: dirs,
    }
}

impl Quorum {
    fn client(&self) -> ControllerClient {
        ControllerClient::new(&self.addrs, ClientOptions::default()).unwrap()
    }

    async fn leader(&self) -> &ControllerNode {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for n in &self.nodes {
                if n.controller().raft().metrics().borrow().state == openraft::ServerState::Leader {
                    return n;
                }
            }
            assert!(Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn image(&self) -> CellImage {
        self.leader().await.controller().hub().image().clone()
    }
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn endpoint(port: u32) -> Option<Endpoint> {
    Some(Endpoint {
        host: "127.0.0.1".into(),
        port,
    })
}

/// Background heartbeats for the brokers in `beating` (epoch, want_shutdown).
fn heartbeater(
    client: ControllerClient,
    beating: Arc<Mutex<HashMap<i32, (i64, bool)>>>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let now: Vec<(i32, (i64, bool))> = beating
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect();
            for (id, (epoch, want_shutdown)) in now {
                let _ = client
                    .broker_heartbeat(BrokerHeartbeatRequest {
                        broker_id: id,
                        broker_epoch: epoch,
                        applied_offset: u64::MAX,
                        want_shutdown,
                        usage: vec![],
                        counters: None,
                    })
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

fn state_of(image: &CellImage, broker: i32) -> BrokerState {
    BrokerState::try_from(image.brokers[&broker].state).unwrap()
}

fn topic(name: &str, partitions: i32, rf: i32) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        configs: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_quorum_end_to_end() {
    let q = start_quorum().await;
    let client = q.client();
    let leader_addr = q.leader().await.addr().to_string();

    // A follower refuses writes and names the leader.
    let follower = q.addrs.iter().find(|a| **a != leader_addr).unwrap().clone();
    let mut raw = CellControllerClient::connect(format!("http://{follower}"))
        .await
        .unwrap();
    let err = raw
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(
        err.metadata()
            .get("tributary-leader")
            .unwrap()
            .to_str()
            .unwrap(),
        leader_addr
    );

    // Three brokers in three zones register and become ACTIVE once caught up.
    let mut epochs = HashMap::new();
    for (id, zone) in [(1, "zone-a"), (2, "zone-b"), (3, "zone-c")] {
        let r = client
            .register_broker(RegisterBrokerRequest {
                broker_id: id,
                incarnation_id: format!("inc-{id}"),
                zone: zone.into(),
                kafka: endpoint(9090 + id as u32),
                sasl: None,
                sasl_ssl: None,
            })
            .await
            .unwrap();
        assert!(r.broker_epoch > 0);
        epochs.insert(id, r.broker_epoch);
    }
    assert_eq!(
        q.image().await.brokers[&1].broker_epoch,
        epochs[&1],
        "epoch is the registration offset"
    );
    let again = client
        .register_broker(RegisterBrokerRequest {
            broker_id: 1,
            incarnation_id: "inc-1".into(),
            zone: "zone-a".into(),
            kafka: endpoint(9091),
            sasl: None,
            sasl_ssl: None,
        })
        .await
        .unwrap();
    assert_eq!(
        again.broker_epoch, epochs[&1],
        "same incarnation, same epoch"
    );
    for id in 1..=3 {
        let behind = client
            .broker_heartbeat(BrokerHeartbeatRequest {
                broker_id: id,
                broker_epoch: epochs[&id],
                applied_offset: 0,
                want_shutdown: false,
                usage: vec![],
                counters: None,
            })
            .await
            .unwrap();
        assert_eq!(
            behind.state,
            BrokerState::Fenced as i32,
            "not caught up yet"
        );
    }
    let beating: Arc<Mutex<HashMap<i32, (i64, bool)>>> = Arc::new(Mutex::new(
        epochs.iter().map(|(k, v)| (*k, (*v, false))).collect(),
    ));
    let stop = CancellationToken::new();
    heartbeater(client.clone(), beating.clone(), stop.clone());
    wait_for("three ACTIVE brokers", async || {
        let img = q.image().await;
        (1..=3).all(|b| state_of(&img, b) == BrokerState::Active)
    })
    .await;

    // A tenant and its topics.
    let limits = ClusterLimits {
        max_partitions: 10,
        ..Default::default()
    };
    let created = client
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: "lkc-1".into(),
            organization_id: "org-1".into(),
            limits: Some(limits),
        })
        .await
        .unwrap();
    assert!(created.offset > 0);
    let same = client
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: "lkc-1".into(),
            organization_id: "org-1".into(),
            limits: Some(limits),
        })
        .await
        .unwrap();
    assert_eq!(same.error_code, 0, "idempotent");

    let create = |topics: Vec<CreatableTopic>, validate_only: bool| {
        let client = client.clone();
        async move {
            client
                .create_topics(CreateTopicsRequest {
                    cluster_id: "lkc-1".into(),
                    topics,
                    validate_only,
                })
                .await
                .unwrap()
                .topics
        }
    };
    let r = create(vec![topic("dry", 1, 3)], true).await;
    assert_eq!(r[0].error_code, 0);
    assert!(
        q.image().await.topic("lkc-1", "dry").is_none(),
        "validate_only creates nothing"
    );
    let r = create(vec![topic("orders", 3, 3)], false).await;
    assert_eq!(r[0].error_code, 0, "{:?}", r[0]);
    assert!(r[0].offset > 0);
    let img = q.image().await;
    let orders = img.topic("lkc-1", "orders").unwrap().clone();
    let mut leaders = BTreeSet::new();
    for p in orders.partitions.values() {
        let zones: BTreeSet<&str> = p
            .replicas
            .iter()
            .map(|b| img.brokers[b].zone.as_str())
            .collect();
        assert_eq!(zones.len(), 3, "replicas span zones: {p:?}");
        leaders.insert(p.leader);
    }
    assert_eq!(leaders.len(), 3, "the tenant's leaders spread over brokers");
    let errors: Vec<(i32, String)> = create(
        vec![
            topic("orders", 1, 3),
            topic("zero", 0, 3),
            topic("wide", 1, 4),
            topic("big", 8, 1),
        ],
        false,
    )
    .await
    .into_iter()
    .map(|t| (t.error_code, t.error_message))
    .collect();
    assert_eq!(errors[0].0, codes::TOPIC_ALREADY_EXISTS);
    assert_eq!(errors[1].0, codes::INVALID_PARTITIONS);
    assert_eq!(errors[2].0, codes::INVALID_REPLICATION_FACTOR);
    assert_eq!(errors[3].0, codes::POLICY_VIOLATION);
    assert!(errors[3].1.contains("10"), "{}", errors[3].1);
    let no_cluster = client
        .create_topics(CreateTopicsRequest {
            cluster_id: "lkc-missing".into(),
            topics: vec![topic("t", 1, 1)],
            validate_only: false,
        })
        .await
        .unwrap();
    assert_ne!(no_cluster.topics[0].error_code, 0);
    let grow = client
        .create_partitions(CreatePartitionsRequest {
            cluster_id: "lkc-1".into(),
            topic: "orders".into(),
            new_total: 2,
            validate_only: false,
        })
        .await
        .unwrap();
    assert_eq!(grow.error_code, codes::INVALID_PARTITIONS);

    // Broker 1 stops heartbeating: fenced, its leaderships move, epochs bumped.
    let led_by_1: Vec<PartitionRecord> = orders
        .partitions
        .values()
        .filter(|p| p.leader == 1)
        .cloned()
        .collect();
    assert_eq!(led_by_1.len(), 1);
    beating.lock().unwrap().remove(&1);
    wait_for("broker 1 fenced", async || {
        state_of(&q.image().await, 1) == BrokerState::Fenced
    })
    .await;
    let img = q.image().await;
    let moved = img.topic("lkc-1", "orders").unwrap().partitions[&led_by_1[0].partition].clone();
    assert_ne!(moved.leader, 1);
    assert!(moved.leader == 2 || moved.leader == 3);
    assert_eq!(moved.leader_epoch, led_by_1[0].leader_epoch + 1);
    assert!(moved.partition_epoch > led_by_1[0].partition_epoch);
    for p in img.topic("lkc-1", "orders").unwrap().partitions.values() {
        assert!(!p.isr.contains(&1), "fenced broker left every ISR: {p:?}");
    }

    // AlterPartition validation.
    let alter =
        |p: &PartitionRecord, from: i32, le: i32, pe: i32, isr: Vec<i32>| AlterPartitionRequest {
            broker_id: from,
            broker_epoch: epochs[&from],
            topic_id: p.topic_id.clone(),
            partition: p.partition,
            leader_epoch: le,
            partition_epoch: pe,
            new_isr: isr,
        };
    let p = moved.clone();
    let l = p.leader;
    let other = if l == 2 { 3 } else { 2 };
    let code = |r: AlterPartitionResponse| r.error_code;
    assert_eq!(
        code(
            client
                .alter_partition(alter(&p, l, p.leader_epoch - 1, p.partition_epoch, vec![l]))
                .await
                .unwrap()
        ),
        codes::FENCED_LEADER_EPOCH
    );
    assert_eq!(
        code(
            client
                .alter_partition(alter(&p, l, p.leader_epoch, p.partition_epoch + 7, vec![l]))
                .await
                .unwrap()
        ),
        codes::INVALID_UPDATE_VERSION
    );
    assert_eq!(
        code(
            client
                .alter_partition(alter(
                    &p,
                    l,
                    p.leader_epoch,
                    p.partition_epoch,
                    vec![l, other, 1]
                ))
                .await
                .unwrap()
        ),
        codes::INELIGIBLE_REPLICA
    );
    assert_eq!(
        code(
            client
                .alter_partition(alter(
                    &p,
                    other,
                    p.leader_epoch,
                    p.partition_epoch,
                    vec![other]
                ))
                .await
                .unwrap()
        ),
        codes::NOT_LEADER_OR_FOLLOWER
    );
    assert_eq!(
        code(
            client
                .alter_partition(alter(&p, l, p.leader_epoch, p.partition_epoch, vec![other]))
                .await
                .unwrap()
        ),
        codes::INVALID_REQUEST
    );
    let ok = client
        .alter_partition(alter(&p, l, p.leader_epoch, p.partition_epoch, vec![l]))
        .await
        .unwrap();
    assert_eq!(ok.error_code, 0);
    assert_eq!(
        ok.partition.as_ref().unwrap().partition_epoch,
        p.partition_epoch + 1
    );
    assert_eq!(ok.partition.as_ref().unwrap().isr, vec![l]);

    // Broker 1 comes back: ACTIVE again; once its leader adds it to the ISR, the preferred
    // leader election gives it its partition back.
    beating.lock().unwrap().insert(1, (epochs[&1], false));
    wait_for("broker 1 active again", async || {
        state_of(&q.image().await, 1) == BrokerState::Active
    })
    .await;
    let p = q.image().await.topic("lkc-1", "orders").unwrap().partitions[&moved.partition].clone();
    // On a loaded machine the quorum may be between leaders for a moment: retry (bounded)
    // while it says so; any answer must then be a success.
    let mut back = None;
    wait_for("an ISR expansion answered", async || {
        let req = alter(&p, l, p.leader_epoch, p.partition_epoch, vec![l, 1]);
        match client.alter_partition(req).await {
            Ok(r) => {
                back = Some(r);
                true
            }
            Err(e) => {
                assert!(e.to_string().contains("not the leader"), "{e}");
                false
            }
        }
    })
    .await;
    assert_eq!(back.unwrap().error_code, 0);
    wait_for("preferred leader back", async || {
        let img = q.image().await;
        let p = &img.topic("lkc-1", "orders").unwrap().partitions[&moved.partition];
        p.leader == p.replicas[0]
    })
    .await;

    // Controlled shutdown of broker 3: leaderships move first, then shutdown_ok.
    beating.lock().unwrap().insert(3, (epochs[&3], true));
    wait_for("broker 3 leads nothing", async || {
        let r = client
            .broker_heartbeat(BrokerHeartbeatRequest {
                broker_id: 3,
                broker_epoch: epochs[&3],
                applied_offset: u64::MAX,
                want_shutdown: true,
                usage: vec![],
                counters: None,
            })
            .await
            .unwrap();
        r.state == BrokerState::ControlledShutdown as i32 && r.shutdown_ok
    })
    .await;
    let img = q.image().await;
    assert!(img
        .topic("lkc-1", "orders")
        .unwrap()
        .partitions
        .values()
        .all(|p| p.leader != 3));

    // Load, drain, credentials, deletes.
    let load = client.get_cell_load(GetCellLoadRequest {}).await.unwrap();
    assert_eq!(load.partitions, 3);
    assert_eq!(load.brokers.len(), 3);
    assert!(load.load > 0.0 && load.load <= 1.0);
    assert_eq!(load.bootstrap.len(), 2, "brokers 1 and 2 are ACTIVE");
    client
        .drain_broker(DrainBrokerRequest { broker_id: 2 })
        .await
        .unwrap();
    assert_eq!(state_of(&q.image().await, 2), BrokerState::Draining);
    let cred = CredentialRecord {
        api_key: "KEY1".into(),
        cluster_id: "lkc-1".into(),
        principal: "User:u-1".into(),
        secret_sha256: "0".repeat(64),
        owner_is_user: true,
        scram: vec![],
    };
    client
        .put_credential(PutCredentialRequest {
            credential: Some(cred),
        })
        .await
        .unwrap();
    assert!(q.image().await.credentials.contains_key("KEY1"));
    let del = client
        .delete_topics(DeleteTopicsRequest {
            cluster_id: "lkc-1".into(),
            names: vec!["nope".into()],
            topic_ids: vec![vec![7; 16]],
        })
        .await
        .unwrap();
    assert_eq!(del.topics[0].error_code, codes::UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(del.topics[1].error_code, codes::UNKNOWN_TOPIC_ID);

    // Broker 3 restarts as a new incarnation: a new, higher epoch, FENCED until caught up;
    // its old epoch is refused.
    beating.lock().unwrap().remove(&3);
    let re = client
        .register_broker(RegisterBrokerRequest {
            broker_id: 3,
            incarnation_id: "inc-3b".into(),
            zone: "zone-c".into(),
            kafka: endpoint(9093),
            sasl: None,
            sasl_ssl: None,
        })
        .await
        .unwrap();
    assert!(re.broker_epoch > epochs[&3]);
    assert_eq!(state_of(&q.image().await, 3), BrokerState::Fenced);
    let stale = client
        .broker_heartbeat(BrokerHeartbeatRequest {
            broker_id: 3,
            broker_epoch: epochs[&3],
            applied_offset: u64::MAX,
            want_shutdown: false,
            usage: vec![],
            counters: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(stale, cells::CellError::Rpc(ref s) if s.code() == tonic::Code::FailedPrecondition),
        "{stale}"
    );
    let hb = client
        .broker_heartbeat(BrokerHeartbeatRequest {
            broker_id: 3,
            broker_epoch: re.broker_epoch,
            applied_offset: re.broker_epoch as u64,
            want_shutdown: false,
            usage: vec![],
            counters: None,
        })
        .await
        .unwrap();
    assert_eq!(hb.state, BrokerState::Active as i32);
    beating.lock().unwrap().insert(3, (re.broker_epoch, false));

    // Watchers: the client's watcher converges on the leader's image; a watcher far behind
    // the ring starts with a snapshot.
    let cancel = CancellationToken::new();
    let (mut rx, task) = watch_metadata(client.clone(), cancel.clone());
    wait_for("the watcher's image equals the leader's", async || {
        let leader_now = q.image().await;
        let watched = rx.borrow_and_update().clone();
        *watched == leader_now
    })
    .await;
    let mut stream = raw
        .watch_metadata(WatchMetadataRequest { after_offset: 1 })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.is_snapshot, "far behind the ring: snapshot first");
    let mut rebuilt = CellImage::default();
    rebuilt.apply(first.offset, true, &first.records);
    assert_eq!(
        rebuilt.topics,
        q.nodes[0].controller().hub().image().clone().topics
    );
    client
        .delete_logical_cluster(DeleteLogicalClusterRequest {
            cluster_id: "lkc-1".into(),
        })
        .await
        .unwrap();
    wait_for("watcher sees the delete", async || {
        rx.borrow_and_update().clusters.is_empty()
    })
    .await;
    assert!(rx.borrow().topics.is_empty());

    // Every voter converges on the same image.
    let img = q.image().await;
    wait_for("voters agree", async || {
        q.nodes.iter().all(|n| *n.controller().hub().image() == img)
    })
    .await;

    cancel.cancel();
    let _ = task.await;
    stop.cancel();
    q.shutdown.cancel();
    for n in q.nodes {
        n.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_leads_alone_and_resumes_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let voters = BTreeMap::from([(1u64, addr.clone())]);
    let config = ControllerConfig::new(1, "cell-one", dir.path(), voters);
    let shutdown = CancellationToken::new();
    let node = ControllerNode::start(config.clone(), l, shutdown.clone())
        .await
        .unwrap();
    let client =
        ControllerClient::new(std::slice::from_ref(&addr), ClientOptions::default()).unwrap();
    let r = client
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: "lkc-solo".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(r.offset > 0);
    // RF 3 on a cell without three active brokers is an error, not a silent downgrade.
    let t = client
        .create_topics(CreateTopicsRequest {
            cluster_id: "lkc-solo".into(),
            topics: vec![topic("t", -1, -1)],
            validate_only: false,
        })
        .await
        .unwrap();
    assert_eq!(t.topics[0].error_code, codes::INVALID_REPLICATION_FACTOR);
    shutdown.cancel();
    node.wait().await;

    let l = TcpListener::bind(&addr).await.unwrap();
    let shutdown = CancellationToken::new();
    let node = ControllerNode::start(config, l, shutdown.clone())
        .await
        .unwrap();
    wait_for("the cluster after a restart", async || {
        node.controller()
            .hub()
            .image()
            .clusters
            .contains_key("lkc-solo")
    })
    .await;
    let q = client.describe_quorum().await.unwrap();
    assert_eq!(q.voters, vec![1]);
    shutdown.cancel();
    node.wait().await;
}
