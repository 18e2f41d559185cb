//! Three `tributary controller` OS processes form a cell's quorum: create a logical cluster,
//! SIGKILL the Raft leader, see a new leader take writes (and report how long that took),
//! write enough that the killed voter must catch up from a snapshot, restart it, check all
//! three report the same committed image over
//! WatchMetadata, then restart all three and find everything still there.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cells::client::{watch_metadata, ClientOptions, ControllerClient};
use cells::image::CellImage;
use common::cell::{free_addr, ControllerProcess};
use proto::cell::v1::CreateLogicalClusterRequest;
use tokio_util::sync::CancellationToken;

fn client(addrs: &[String]) -> ControllerClient {
    let options = ClientOptions {
        call_timeout: Duration::from_secs(2),
        max_attempts: 40,
        ..Default::default()
    };
    ControllerClient::new(addrs, options).unwrap()
}

/// The leader's node id as voter `addr` sees it (0: none or unreachable).
async fn leader_seen_by(addr: &str) -> u64 {
    let one = ControllerClient::new(
        &[addr.to_string()],
        ClientOptions {
            max_attempts: 1,
            call_timeout: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    one.describe_quorum()
        .await
        .map(|q| q.leader_id)
        .unwrap_or(0)
}

async fn wait_leader(addrs: &[String], not: Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for a in addrs {
            let l = leader_seen_by(a).await;
            if l != 0 && Some(l) != not {
                return l;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_cluster(c: &ControllerClient, id: &str) -> u64 {
    let r = c
        .create_logical_cluster(CreateLogicalClusterRequest {
            cluster_id: id.into(),
            organization_id: "org-1".into(),
            limits: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create {id}: {e}"));
    assert_eq!(r.error_code, 0);
    r.offset
}

/// Every voter's committed image, each through its own WatchMetadata stream, once they are
/// all at the same offset of at least `at_least`.
async fn agreed_image(addrs: &[String], at_least: u64) -> CellImage {
    let cancel = CancellationToken::new();
    let rxs: Vec<_> = addrs
        .iter()
        .map(|a| watch_metadata(client(std::slice::from_ref(a)), cancel.clone()).0)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let images: Vec<Arc<CellImage>> = rxs.iter().map(|r| r.borrow().clone()).collect();
        if images[0].offset >= at_least && images.iter().all(|i| **i == *images[0]) {
            cancel.cancel();
            return (*images[0]).clone();
        }
        assert!(
            Instant::now() < deadline,
            "voters disagree: offsets {:?}",
            images.iter().map(|i| i.offset).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_survives_leader_kill_and_full_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let spec = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut voters: Vec<ControllerProcess> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            ControllerProcess::new(
                i as u64 + 1,
                a.clone(),
                tmp.path(),
                &spec,
                &["--snapshot-every", "50"],
            )
        })
        .collect();
    let addrs: Vec<String> = voters.iter().map(|v| v.addr.clone()).collect();
    for v in &mut voters {
        v.spawn();
    }
    let c = client(&addrs);
    let first_leader = wait_leader(&addrs, None).await;
    create_cluster(&c, "lkc-a").await;

    // SIGKILL the leader; a new one is elected and takes writes.
    let killed_at = Instant::now();
    voters[(first_leader - 1) as usize].kill9();
    let survivors: Vec<String> = voters
        .iter()
        .filter(|v| v.id != first_leader)
        .map(|v| v.addr.clone())
        .collect();
    let new_leader = wait_leader(&survivors, Some(first_leader)).await;
    let offset_b = create_cluster(&c, "lkc-b").await;
    eprintln!(
        "controller failover: voter {first_leader} killed, voter {new_leader} leads; first write acknowledged {:?} after the kill",
        killed_at.elapsed()
    );
    assert_ne!(new_leader, first_leader);
    // Enough writes while it is down that the log it needs is purged behind a snapshot
    // (--snapshot-every 50): it must catch up through InstallSnapshot.
    let mut offset_b = offset_b;
    for i in 0..120 {
        offset_b = create_cluster(&c, &format!("lkc-fill-{i}")).await;
    }

    // The killed voter comes back and catches up; all three agree.
    voters[(first_leader - 1) as usize].spawn();
    let image = agreed_image(&addrs, offset_b).await;
    assert!(image.clusters.contains_key("lkc-a") && image.clusters.contains_key("lkc-b"));
    assert_eq!(image.clusters.len(), 122);
    let restarted = &voters[(first_leader - 1) as usize];
    assert!(
        restarted.data_dir().join("raft/state/snapshot").exists(),
        "the restarted voter caught up through a snapshot"
    );

    // A clean restart of all three keeps everything and takes new writes.
    for v in &mut voters {
        v.stop();
    }
    for v in &mut voters {
        v.spawn();
    }
    wait_leader(&addrs, None).await;
    let offset_c = create_cluster(&c, "lkc-c").await;
    let image = agreed_image(&addrs, offset_c).await;
    assert_eq!(image.clusters.len(), 123);
    for id in ["lkc-a", "lkc-b", "lkc-c"] {
        assert!(
            image.clusters.contains_key(id),
            "{id} lost: {:?}",
            image.clusters.keys()
        );
    }
    for v in &mut voters {
        v.stop();
    }
}
