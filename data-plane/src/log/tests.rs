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

/// Small segments, and no zeros ahead so file lengths are exactly the data (the recovery
/// tests cut and flip bytes by file length); [`prealloc_cfg`] turns zeroing ahead on.
pub(super) fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        preallocate_bytes: 0,
        ..LogConfig::default()
    }
}

fn prealloc_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        preallocate_bytes: 8 * 1024,
        ..cfg()
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
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
    let last = make_batch(1, 39, Compression::None, 20).len() as u64; // batch 39 has 1 + 39 % 3 records
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

/// Tiny deterministic PRNG for the corruption tests.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn recovery_survives_random_byte_flips_in_tail() {
    let (image, ends) = crash_image(40);
    let file = active_log_file(image.path());
    let full = std::fs::metadata(&file).unwrap().len();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..200 {
        let d = tempfile::tempdir().unwrap();
        copy_dir(image.path(), d.path());
        let path = d.path().join(file.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        let tail = 400.min(full);
        for _ in 0..1 + xorshift(&mut rng) % 3 {
            let at = (full - tail + xorshift(&mut rng) % tail) as usize;
            bytes[at] ^= 1 << (xorshift(&mut rng) % 8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let end = check_recovered(d.path(), &ends);
        assert!(end <= ends[39]);
    }
}

#[test]
fn recovery_rebuilds_missing_and_garbage_indexes() {
    let (image, ends) = crash_image(60);
    assert!(segment_count(image.path()) > 1);
    let log = PartitionLog::open(image.path(), cfg()).unwrap();
    let want_ts = log.offset_for_timestamp(30).unwrap();
    drop(log);
    let mut first = true;
    for e in std::fs::read_dir(image.path()).unwrap() {
        let p = e.unwrap().path();
        let ext = p
            .extension()
            .map(|x| x.to_string_lossy().to_string())
            .unwrap_or_default();
        if ext == "index" || ext == "timeindex" {
            if first {
                std::fs::write(&p, b"garbage garbage garbage!").unwrap();
                first = false;
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
    let end = check_recovered(image.path(), &ends);
    assert_eq!(end, ends[59]);
    let log = PartitionLog::open(image.path(), cfg()).unwrap();
    assert_eq!(log.offset_for_timestamp(30).unwrap(), want_ts);
    assert!(want_ts.is_some());
}

#[test]
fn read_honours_max_bytes_kip74_and_max_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(
        dir.path(),
        LogConfig {
            segment_bytes: 1 << 20,
            ..cfg()
        },
    )
    .unwrap();
    let b = make_batch(2, 0, Compression::None, 100);
    for _ in 0..10 {
        append(&mut log, &b, 0, 1);
    }
    let size = b.len();
    // KIP-74: one whole batch even if larger than max_bytes.
    assert_eq!(
        batches_of(&log.read(0, 1, i64::MAX).unwrap().records),
        vec![(0, 2)]
    );
    assert_eq!(log.read(0, 0, i64::MAX).unwrap().records.len(), size);
    // Exactly as many whole batches as fit.
    assert_eq!(
        batches_of(&log.read(3, 2 * size, i64::MAX).unwrap().records),
        vec![(2, 2), (4, 2)]
    );
    assert_eq!(
        log.read(3, 3 * size - 1, i64::MAX).unwrap().records.len(),
        2 * size
    );
    // High watermark.
    assert_eq!(
        batches_of(&log.read(0, 1 << 20, 6).unwrap().records),
        vec![(0, 2), (2, 2), (4, 2)]
    );
    assert_eq!(
        batches_of(&log.read(0, 1 << 20, 5).unwrap().records),
        vec![(0, 2), (2, 2), (4, 2)]
    );
    assert!(log.read(6, 1 << 20, 6).unwrap().records.is_empty());
    // Bounds.
    let r = log.read(20, 100, i64::MAX).unwrap();
    assert!(r.records.is_empty());
    assert_eq!((r.log_start_offset, r.log_end_offset), (0, 20));
    assert!(matches!(
        log.read(21, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(4).unwrap();
    assert!(matches!(
        log.read(3, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let e: crate::error::Error = log.read(3, 100, i64::MAX).unwrap_err().into();
    assert_eq!(
        e.kafka_error(),
        kafka_protocol::ResponseError::OffsetOutOfRange
    );
}

#[test]
fn offset_for_timestamp_is_exact_for_every_codec() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
        // Batch i holds 4 records stamped 100*i + {0,1,2,3}; record offset 4i+j.
        for i in 0..50 {
            append(&mut log, &make_batch(4, 100 * i, compression, 30), 0, 1);
        }
        for ts in [0, 1, 3, 4, 50, 99, 100, 101, 2503, 4903, 4904] {
            let i = ts / 100;
            let j = ts % 100;
            let want = if j <= 3 {
                Some((4 * i + j, ts))
            } else if i + 1 < 50 {
                Some((4 * (i + 1), 100 * (i + 1)))
            } else {
                None
            };
            assert_eq!(
                log.offset_for_timestamp(ts).unwrap(),
                want,
                "{compression:?} ts {ts}"
            );
        }
        // Records below the log start are not answers.
        log.delete_records_before(6).unwrap();
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((6, 102)));
    }
}

#[test]
fn offset_for_timestamp_rejects_hostile_counts_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    // A CRC-valid batch that claims 2^31-1 records.
    let mut b = make_batch(1, 10, Compression::None, 5);
    let n = i32::MAX;
    b[batch::RECORD_COUNT..batch::RECORD_COUNT + 4].copy_from_slice(&n.to_be_bytes());
    b[batch::LAST_OFFSET_DELTA..batch::LAST_OFFSET_DELTA + 4]
        .copy_from_slice(&(n - 1).to_be_bytes());
    let crc = crc32c::crc32c(&b[batch::ATTRIBUTES..]);
    b[batch::CRC..batch::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    let headers = parse_batches(&b, 1 << 20).unwrap();
    log.append(&b, &headers, 0, 1).unwrap();
    assert!(matches!(
        log.offset_for_timestamp(10),
        Err(LogError::Corrupt(_))
    ));
}

#[test]
fn log_append_time_rewrites_timestamp_with_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..cfg()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let info = append(
        &mut log,
        &make_batch(3, 5, Compression::Gzip, 10),
        0,
        777_000,
    );
    assert_eq!(info.log_append_time, 777_000);
    let r = log.read(0, 1 << 20, i64::MAX).unwrap();
    let mut b = r.records.clone();
    let infos = RecordBatchDecoder::decode_batch_info(&mut b).unwrap();
    assert_eq!(infos[0].timestamp_type, KTs::LogAppend);
    assert_eq!(batch::i64_at(&r.records, batch::MAX_TIMESTAMP), 777_000);
    assert_eq!(
        log.offset_for_timestamp(777_000).unwrap(),
        Some((0, 777_000))
    );
    assert_eq!(log.offset_for_timestamp(777_001).unwrap(), None);
}

#[test]
fn retention_by_time_and_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1000,
        segment_ms: 500,
        ..cfg()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    // Old data (timestamps ~0), then new data (timestamps ~10_000).
    for i in 0..40 {
        append(&mut log, &make_batch(2, i, Compression::None, 50), 0, 100);
    }
    let old_end = log.log_end_offset();
    for i in 0..40 {
        append(
            &mut log,
            &make_batch(2, 10_000 + i, Compression::None, 50),
            0,
            100,
        );
    }
    let end = log.log_end_offset();
    let deleted = log.enforce_retention(10_500).unwrap();
    assert!(deleted > 0);
    assert!(log.log_start_offset() > 0 && log.log_start_offset() <= old_end);
    check_contiguous(&log);
    assert_eq!(log.log_end_offset(), end);
    // Everything ages out eventually; the segment.ms roll makes the active segment deletable.
    log.enforce_retention(100_000).unwrap();
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end);
    assert!(log.read(end, 100, i64::MAX).unwrap().records.is_empty());
    let info = append(
        &mut log,
        &make_batch(1, 5, Compression::None, 5),
        0,
        100_001,
    );
    assert_eq!(info.base_offset, end);

    // Size: keep at most ~4 KiB of closed segments.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: -1,
        retention_bytes: 4096,
        ..cfg()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..100 {
        append(&mut log, &make_batch(2, i, Compression::None, 50), 0, 100);
    }
    assert!(log.size_bytes() > 8192);
    assert!(log.enforce_retention(200).unwrap() > 0);
    assert!(log.size_bytes() <= 4096 + 2048, "{}", log.size_bytes());
    check_contiguous(&log);
    let start = log.log_start_offset();
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn delete_records_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    for i in 0..60 {
        append(&mut log, &make_batch(3, i, Compression::None, 40), 0, 1);
    }
    let before = segment_count(dir.path());
    assert_eq!(log.delete_records_before(100).unwrap(), 100);
    assert_eq!(log.delete_records_before(50).unwrap(), 100);
    assert!(segment_count(dir.path()) < before);
    assert!(matches!(
        log.delete_records_before(1000),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.log_start_offset(), 100);
    // Reading from log start returns the batch containing it (99..=101).
    assert_eq!(
        batches_of(&log.read(100, 1, i64::MAX).unwrap().records),
        vec![(99, 3)]
    );
    check_contiguous(&log);
}

#[test]
fn epoch_cache_persists_and_answers_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for_epoch(0), None);
    let b = make_batch(2, 0, Compression::None, 10);
    append(&mut log, &b, 1, 1); // epoch 1: 0..2
    append(&mut log, &b, 1, 1);
    append(&mut log, &b, 3, 1); // epoch 3: 4..6
    append(&mut log, &b, 5, 1); // epoch 5: 6..
    drop(log);
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 8)));
    assert_eq!(log.end_offset_for_epoch(4), Some((3, 6)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 6)));
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 0)));
    assert_eq!(log.end_offset_for_epoch(6), None);
    // Truncation drops epochs that start at or after the new end.
    log.truncate_to(5).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.latest_epoch(), Some(1));
    drop(log);
    let log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
}

#[test]
fn truncate_to_within_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    for i in 0..100 {
        append(&mut log, &make_batch(2, i, Compression::None, 40), 0, 1);
    }
    let segs = segment_count(dir.path());
    log.truncate_to(201).unwrap(); // beyond end: no-op
    assert_eq!(log.log_end_offset(), 200);
    log.truncate_to(151).unwrap(); // mid-batch: the whole batch 150..=151 goes
    assert_eq!(log.log_end_offset(), 150);
    log.truncate_to(40).unwrap(); // across segments
    assert_eq!(log.log_end_offset(), 40);
    assert!(segment_count(dir.path()) < segs);
    check_contiguous(&log);
    assert_eq!(log.offset_for_timestamp(25).unwrap(), None);
    assert_eq!(
        append(&mut log, &make_batch(2, 0, Compression::None, 40), 0, 1).base_offset,
        40
    );
    drop(log);
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.log_end_offset(), 42);
    check_contiguous(&log);
    log.truncate_to(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(
        append(&mut log, &make_batch(1, 0, Compression::None, 1), 0, 1).base_offset,
        0
    );
    log.delete_records_before(1).unwrap();
    assert!(matches!(
        log.truncate_to(0),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn flush_jobs_cover_appends_and_delete_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = PartitionLog::open(&path, cfg()).unwrap();
    assert!(log.flush_job().is_none());
    append(&mut log, &make_batch(3, 0, Compression::None, 10), 0, 1);
    let job = log.flush_job().unwrap();
    assert_eq!(job.end_offset, 3);
    append(&mut log, &make_batch(3, 0, Compression::None, 10), 0, 1);
    job.run().unwrap();
    log.mark_flushed(job.end_offset);
    assert_eq!(log.flushed_offset(), 3);
    let job = log.flush_job().unwrap();
    job.run().unwrap();
    log.mark_flushed(job.end_offset);
    assert!(log.flush_job().is_none());
    log.truncate_to(2).unwrap();
    assert_eq!(log.flushed_offset(), 0);
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn parse_batches_validates_framing_magic_crc_counts_and_size() {
    let a = make_batch(3, 0, Compression::None, 10);
    let b = make_batch(2, 0, Compression::Zstd, 10);
    let both = [a.clone(), b.clone()].concat();
    let hs = parse_batches(&both, 1 << 20).unwrap();
    assert_eq!(hs.len(), 2);
    assert_eq!(
        (
            hs[0].position,
            hs[0].size,
            hs[0].record_count,
            hs[0].last_offset_delta
        ),
        (0, a.len(), 3, 2)
    );
    assert_eq!(
        (hs[1].position, hs[1].compression),
        (a.len(), Compression::Zstd)
    );
    assert!(matches!(
        parse_batches(&both, a.len() - 1),
        Err(LogError::TooLarge(_))
    ));
    assert!(matches!(parse_batches(&[], 100), Err(LogError::Corrupt(_))));
    assert!(matches!(
        parse_batches(&both[..both.len() - 1], 1 << 20),
        Err(LogError::Corrupt(_))
    ));
    let mut bad = a.clone();
    bad[batch::MAGIC] = 1;
    assert!(matches!(
        parse_batches(&bad, 1 << 20),
        Err(LogError::UnsupportedForMessageFormat(_))
    ));
    let mut bad = a.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(matches!(
        parse_batches(&bad, 1 << 20),
        Err(LogError::Corrupt(_))
    ));
    let mut bad = a.clone();
    bad[batch::LAST_OFFSET_DELTA + 3] = 7;
    assert!(matches!(
        parse_batches(&bad, 1 << 20),
        Err(LogError::Corrupt(_))
    ));
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parse_batches_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_batches(&bytes, 1 << 20);
        }

        #[test]
        fn parse_batches_never_panics_on_mutated_batches(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut bytes = [make_batch(3, 0, Compression::None, 10), make_batch(2, 0, Compression::Gzip, 10)].concat();
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            if let Ok(hs) = parse_batches(&bytes, 1 << 20) {
                // Whatever passes must be framed inside the buffer and appendable.
                for h in &hs {
                    prop_assert!(h.position + h.size <= bytes.len());
                }
                let dir = tempfile::tempdir().unwrap();
                let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
                log.append(&bytes, &hs, 0, 1).unwrap();
                let _ = log.offset_for_timestamp(0);
            }
        }
    }
}

#[test]
fn offset_for_timestamp_rejects_hostile_header_count_without_aborting() {
    // One record with null key and value whose header count claims 2^30 headers.
    let mut rec = vec![0u8, 0, 0, 1, 1]; // attributes, ts delta, offset delta, key -1, value -1
    let mut n: u64 = 1 << 31; // zig-zag of 2^30
    while n >= 0x80 {
        rec.push((n as u8) | 0x80);
        n >>= 7;
    }
    rec.push(n as u8);
    let mut records = vec![(rec.len() as u8) << 1]; // zig-zag record length
    records.extend_from_slice(&rec);
    let mut b = make_batch(1, 10, Compression::None, 0);
    b.truncate(batch::HEADER_SIZE);
    b.extend_from_slice(&records);
    let len = (b.len() - batch::LOG_OVERHEAD) as i32;
    b[batch::LENGTH..batch::LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[batch::ATTRIBUTES..]);
    b[batch::CRC..batch::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    let headers = parse_batches(&b, 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), cfg()).unwrap();
    log.append(&b, &headers, 0, 1).unwrap();
    match log.offset_for_timestamp(10) {
        Err(LogError::Corrupt(m)) => assert!(m.contains("header count"), "{m}"),
        other => panic!("expected a corrupt batch, got {other:?}"),
    }
}

#[test]
fn append_rolls_by_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 100,
        segment_bytes: 1 << 20,
        ..cfg()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let b = make_batch(1, 0, Compression::None, 1);
    append(&mut log, &b, 0, 1_000);
    append(&mut log, &b, 0, 1_050);
    assert_eq!(segment_count(dir.path()), 1);
    append(&mut log, &b, 0, 1_100);
    assert_eq!(segment_count(dir.path()), 2);
    check_contiguous(&log);
}

#[test]
fn zeros_ahead_are_never_served_and_are_cut_at_seal_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), prealloc_cfg()).unwrap();
    for i in 0..10 {
        append(&mut log, &make_batch(3, i, Compression::None, 100), 0, 1);
    }
    let active = log.active();
    let data = active.size;
    assert!(
        file_len(&active.path) >= data + 8 * 1024,
        "{} bytes of data, file of {}",
        data,
        file_len(&active.path)
    );
    check_contiguous(&log);
    let end = log.log_end_offset();
    // A crash: the file still holds the zeros; recovery cuts them and keeps every batch.
    drop(log);
    let mut log = PartitionLog::open(dir.path(), prealloc_cfg()).unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(file_len(&log.active().path), log.active().size);
    check_contiguous(&log);
    // Fill past a roll: every closed segment is exactly its batches.
    while segment_count(dir.path()) < 3 {
        append(&mut log, &make_batch(5, 9, Compression::None, 900), 0, 1);
    }
    let active_base = log.active().base_offset;
    for seg in log
        .segments
        .values()
        .filter(|s| s.base_offset != active_base)
    {
        assert_eq!(file_len(&seg.path), seg.size, "{}", seg.path.display());
    }
    assert!(file_len(&log.active().path) > log.active().size);
    check_contiguous(&log);
}

#[test]
fn recovery_never_resurrects_a_batch_beyond_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), prealloc_cfg()).unwrap();
    let batch = make_batch(1, 5, Compression::None, 50);
    for _ in 0..3 {
        append(&mut log, &batch, 0, 1);
    }
    let path = log.active().path.clone();
    drop(log);
    // Corrupt the second batch's last byte: recovery keeps only the first. The third, intact
    // batch (offset 2) still lies beyond the cut unless the file is cut there.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[2 * batch.len() - 1] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let mut log = PartitionLog::open(dir.path(), prealloc_cfg()).unwrap();
    assert_eq!(log.log_end_offset(), 1);
    // A new batch of the same size at offset 1 ends exactly where the old third batch began.
    append(&mut log, &batch, 1, 2);
    drop(log);
    let log = PartitionLog::open(dir.path(), prealloc_cfg()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        2,
        "the old batch at offset 2 came back"
    );
    check_contiguous(&log);
}
