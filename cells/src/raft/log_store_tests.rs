//! Log store recovery, truncation and purge, on real files.

use std::io::Write;

use openraft::{CommittedLeaderId, EntryPayload};

use super::*;
use crate::raft::MetadataBatch;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(MetadataBatch {
            encoded: vec![index as u8; 10],
        }),
    }
}

fn indexes(store: &LogStore) -> Vec<u64> {
    store.lock().entries.keys().copied().collect()
}

fn append(store: &LogStore, range: std::ops::RangeInclusive<u64>) {
    store
        .lock()
        .append(range.map(|i| entry(1, i)).collect())
        .unwrap();
}

#[test]
fn reopen_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1 << 20).unwrap();
    append(&store, 1..=5);
    drop(store);
    let seg = dir.path().join(format!("{:020}.seg", 1));
    let len = std::fs::metadata(&seg).unwrap().len();
    // A half-written sixth frame.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&frame::encode(b"{\"half")[..9]).unwrap();
    drop(f);
    let store = LogStore::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3, 4, 5]);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    append(&store, 6..=6);
    drop(store);
    let store = LogStore::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn truncate_across_segments_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Tiny segments: one entry each.
    let store = LogStore::open(dir.path(), 1).unwrap();
    append(&store, 1..=6);
    assert_eq!(store.lock().segments.len(), 6);
    store.lock().truncate(4).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3]);
    store.lock().append(vec![entry(2, 4)]).unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), 1).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3, 4]);
    assert_eq!(store.lock().entries[&4].entry.log_id.leader_id.term, 2);
}

#[test]
fn purge_deletes_old_segments_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1).unwrap();
    append(&store, 1..=5);
    let purged = store.lock().entries[&3].entry.log_id;
    store.lock().purge(purged).unwrap();
    assert_eq!(indexes(&store), vec![4, 5]);
    assert_eq!(
        store.lock().segments.keys().copied().collect::<Vec<_>>(),
        vec![4, 5]
    );
    drop(store);
    let store = LogStore::open(dir.path(), 1).unwrap();
    assert_eq!(indexes(&store), vec![4, 5]);
    assert_eq!(store.lock().last_purged, Some(purged));
}

#[test]
fn vote_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1 << 20).unwrap();
    let vote = Vote::new(3, 2);
    store.lock().save_vote(&vote).unwrap();
    drop(store);
    let store = LogStore::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(store.lock().vote, Some(vote));
}

#[test]
fn corruption_in_an_older_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), 1).unwrap();
    append(&store, 1..=3);
    drop(store);
    let seg = dir.path().join(format!("{:020}.seg", 1));
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    assert!(LogStore::open(dir.path(), 1).is_err());
}
