//! Snapshot round trip: build on one state machine, install on another and reopen.

use openraft::{CommittedLeaderId, EntryPayload, Membership};
use proto::cell::v1::{BrokerRecord, LogicalClusterRecord};

use super::*;
use crate::raft::MetadataBatch;

fn rec(r: Record) -> MetadataRecord {
    MetadataRecord { record: Some(r) }
}

#[tokio::test]
async fn snapshot_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let hub = MetadataHub::new(16, 16);
    let mut sm = StateMachine::open(dir.path(), hub.clone()).unwrap();
    let lid = |i| LogId::new(CommittedLeaderId::new(1, 1), i);
    let members = Membership::new(vec![[1u64].into_iter().collect()], None);
    let batch = MetadataBatch::from_records(vec![
        rec(Record::Broker(BrokerRecord {
            broker_id: 7,
            zone: "z1".into(),
            ..Default::default()
        })),
        rec(Record::LogicalCluster(LogicalClusterRecord {
            cluster_id: "lkc-1".into(),
            ..Default::default()
        })),
    ]);
    sm.apply(vec![
        Entry {
            log_id: lid(1),
            payload: EntryPayload::Membership(members),
        },
        Entry {
            log_id: lid(2),
            payload: EntryPayload::Normal(batch),
        },
    ])
    .await
    .unwrap();
    // The registration got its entry's index as epoch.
    assert_eq!(hub.image().brokers[&7].broker_epoch, 2);
    let snap = sm.build_snapshot().await.unwrap();
    assert_eq!(snap.meta.last_log_id, Some(lid(2)));

    let dir2 = tempfile::tempdir().unwrap();
    let hub2 = MetadataHub::new(16, 16);
    let mut other = StateMachine::open(dir2.path(), hub2.clone()).unwrap();
    other
        .install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert_eq!(*hub2.image(), *hub.image());
    let (applied, membership) = other.applied_state().await.unwrap();
    assert_eq!(applied, Some(lid(2)));
    assert_eq!(membership.log_id(), &Some(lid(1)));

    // Reopening from disk gives the same image and applied state.
    drop(other);
    let hub3 = MetadataHub::new(16, 16);
    let mut reopened = StateMachine::open(dir2.path(), hub3.clone()).unwrap();
    assert_eq!(*hub3.image(), *hub.image());
    assert_eq!(reopened.applied_state().await.unwrap().0, Some(lid(2)));
}
