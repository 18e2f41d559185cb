//! Three `tributary controller` OS processes form a cell's quorum: create a logical cluster,
//! SIGKILL the Raft leader, see a new leader take writes (and report how long that took),
//! write enough that the killed voter must catch up from a snapshot, restart it, check all
//! three report the same committed image over
//! WatchMetadata, then restart all three and find everything still there.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cells::client::{watch_metadata, ClientOptions, ControllerClient};
use cells::image::CellImage;
use proto::cell::v1::CreateLogicalClusterRequest;
use tokio_util::sync::CancellationToken;

struct Voter {
    id: u64,
    addr: String,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Voter {
    // The child is stopped or killed by the test (`kill9`, `stop`) or on drop.
    #[allow(clippy::zombie_processes)]
    fn spawn(&mut self, voters: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args([
                "controller",
                "--node-id",
                &self.id.to_string(),
                "--listen",
                &self.addr,
            ])
            .arg("--data-dir")
            .arg(&self.dir)
            .args([
                "--voters",
                voters,
                "--cell-id",
                "cell-proc",
                "--snapshot-every",
                "50",
            ])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn tributary controller");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            assert!(
                common::sigterm_and_wait(&mut c),
                "voter {} did not stop on SIGTERM",
                self.id
            );
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Voter {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- voter {} log tail ---\n{}", self.id, self.log_tail());
        }
        self.kill9();
    }
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

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
    let mut voters: Vec<Voter> = (1..=3)
        .map(|id| Voter {
            id,
            addr: free_port(),
            dir: tmp.path().join(format!("c{id}")),
            log: tmp.path().join(format!("c{id}.log")),
            child: None,
        })
        .collect();
    let spec = voters
        .iter()
        .map(|v| format!("{}={}", v.id, v.addr))
        .collect::<Vec<_>>()
        .join(",");
    let addrs: Vec<String> = voters.iter().map(|v| v.addr.clone()).collect();
    for v in &mut voters {
        v.spawn(&spec);
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
    voters[(first_leader - 1) as usize].spawn(&spec);
    let image = agreed_image(&addrs, offset_b).await;
    assert!(image.clusters.contains_key("lkc-a") && image.clusters.contains_key("lkc-b"));
    assert_eq!(image.clusters.len(), 122);
    let restarted = &voters[(first_leader - 1) as usize];
    assert!(
        restarted.dir.join("raft/state/snapshot").exists(),
        "the restarted voter caught up through a snapshot"
    );

    // A clean restart of all three keeps everything and takes new writes.
    for v in &mut voters {
        v.stop();
    }
    for v in &mut voters {
        v.spawn(&spec);
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
