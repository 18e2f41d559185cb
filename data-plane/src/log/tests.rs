//! Tests for the partition log: round trips, limits, timestamps, retention, epochs, truncation
//! and crash recovery. Batches are built with kafka-protocol's encoder, as a client would.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType as KTs,
};

use super::*;

/// One v2 batch of `n` records with timestamps `ts0, ts0+1, ...` and `value_len`-byte values.
pub(super) fn make_batch(
    n: usize,
    ts0: i64,
    compression: Compression,
    value_len: usize,
) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTs::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: ts0 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

pub(super) fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

pub(super) fn append(log: &mut PartitionLog, bytes: &[u8], epoch: i32, now: i64) -> AppendInfo {
    let headers = parse_batches(bytes, 1 << 20).unwrap();
    log.append(bytes, &headers, epoch, now).unwrap()
}

/// (base offset, record count) of every batch in `records`, checking each CRC.
pub(super) fn batches_of(records: &[u8]) -> Vec<(i64, i32)> {
    let mut b = Bytes::copy_from_slice(records);
    RecordBatchDecoder::decode_batch_info(&mut b)
        .unwrap()
        .iter()
        .map(|i| (i.min_offset, i.record_count))
        .collect()
}

fn segment_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

/// Read everything from log start and check offsets are contiguous up to the end.
pub(super) fn check_contiguous(log: &PartitionLog) {
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20, i64::MAX).unwrap();
        let batches = batches_of(&r.records);
        assert!(!batches.is_empty(), "no batch at {next}");
        for (base, count) in batches {
            assert!(
                base <= next && next < base + count as i64 || base == next,
                "gap at {next}: {base}"
            );
            next = base + count as i64;
        }
    }
    assert_eq!(next, log.log_end_offset());
}

#[test]
fn append_read_round_trip_across_rolls_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    let mut expected = Vec::new();
    for i in 0..200 {
        let n = 1 + i % 5;
        let info = append(
            &mut log,
            &make_batch(n, 1000 + i as i64, Compression::None, 10 + i % 40),
            0,
            5000,
        );
        assert_eq!(info.base_offset, log.log_end_offset() - n as i64);
        assert_eq!(info.last_offset, log.log_end_offset() - 1);
        assert_eq!(info.log_append_time, -1);
        expected.push((info.base_offset, n as i32));
    }
    assert!(segment_count(dir.path()) > 10);
    for _round in 0..2 {
        // Every offset reads back starting with the batch that holds it.
        for &(base, n) in &expected {
            for o in base..base + n as i64 {
                let r = log.read(o, 1, i64::MAX).unwrap();
                assert_eq!(batches_of(&r.records), vec![(base, n)]);
            }
        }
        check_contiguous(&log);
        let end = log.log_end_offset();
        drop(log);
        log = PartitionLog::open(dir.path(), cfg()).unwrap();
        assert_eq!(log.log_end_offset(), end);
    }
    // Appends continue after reopen.
    let info = append(&mut log, &make_batch(3, 1, Compression::None, 5), 0, 6000);
    assert_eq!(
        info.base_offset,
        expected.last().map(|(b, n)| b + *n as i64).unwrap()
    );
    check_contiguous(&log);
}

/// Copy a partition directory (to replay one crash image many times).
fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

fn active_log_file(dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

/// Reopen a damaged copy and check it serves exactly an intact prefix, then takes appends.
fn check_recovered(dir: &Path, batch_ends: &[i64]) -> i64 {
    let mut log = PartitionLog::open(dir, cfg()).unwrap();
    let end = log.log_end_offset();
    assert!(
        end == 0 || batch_ends.contains(&end),
        "log end {end} is not a batch boundary"
    );
    check_contiguous(&log);
    let info = append(&mut log, &make_batch(2, 7, Compression::None, 3), 1, 9);
    assert_eq!(info.base_offset, end);
    check_contiguous(&log);
    drop(log);
    let log = PartitionLog::open(dir, cfg()).unwrap();
    assert_eq!(log.log_end_offset(), end + 2);
    end
}

/// A log of `n` batches that ends mid-segment; returns (dir, batch end offsets).
fn crash_image(n: usize) -> (tempfile::TempDir, Vec<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    let mut ends = Vec::new();
    for i in 0..n {
        let info = append(
            &mut log,
            &make_batch(1 + i % 3, i as i64, Compression::None, 20),
            0,
            1,
        );
        ends.push(info.last_offset + 1);
    }
    (dir, ends)
}

#[test]
fn recovery_chops_last_batch_at_every_length() {
    let (image, ends) = crash_image(40);
    let file = active_log_file(image.path());
    let full = std::fs::metadata(&file).unwrap().len();
    let last = make_batch(1 + 39 % 3, 39, Compression::None, 20).len() as u64;
    for len in (full - last)..full {
        let d = tempfile::tempdir().unwrap();
        copy_dir(image.path(), d.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.path().join(file.file_name().unwrap()))
            .unwrap();
        f.set_len(len).unwrap();
        let end = check_recovered(d.path(), &ends);
        assert_eq!(end, ends[38], "cut at {len}");
    }
}
