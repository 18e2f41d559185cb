//! Record batch bytes: validating a produce request's `records` ([`parse_batches`]), the fixed
//! v2 header fields the log reads and rewrites (offsets, epochs, LogAppendTime), and the one place
//! records are decoded: finding a record by timestamp inside a single batch, with bounded
//! decompression.
//!
//! Batches are stored exactly as received; the log only patches fields outside the CRC (base
//! offset, partition leader epoch), except for LogAppendTime topics, which also rewrite the
//! attributes and max timestamp and therefore recompute the CRC-32C.

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::LogError;

// Fixed offsets of the v2 record batch header (see the Kafka protocol docs).
pub(crate) const BASE_OFFSET: usize = 0;
pub(crate) const LENGTH: usize = 8;
pub(crate) const LEADER_EPOCH: usize = 12;
pub(crate) const MAGIC: usize = 16;
pub(crate) const CRC: usize = 17;
pub(crate) const ATTRIBUTES: usize = 21;
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
pub(crate) const BASE_TIMESTAMP: usize = 27;
pub(crate) const MAX_TIMESTAMP: usize = 35;
pub(crate) const PRODUCER_ID: usize = 43;
pub(crate) const PRODUCER_EPOCH: usize = 51;
pub(crate) const BASE_SEQUENCE: usize = 53;
pub(crate) const RECORD_COUNT: usize = 57;
/// Size of the whole v2 header; a valid batch is at least this long.
pub(crate) const HEADER_SIZE: usize = 61;
/// Base offset + length: the prefix that the `length` field does not count.
pub(crate) const LOG_OVERHEAD: usize = 12;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Largest decompressed batch [`find_record_at_or_after`] will materialise.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Header facts of one v2 record batch inside a produce request's `records` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchHeader {
    /// Byte offset of the batch within the buffer it was parsed from.
    pub position: usize,
    /// Whole batch, including the 12-byte base offset + length prefix.
    pub size: usize,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub is_transactional: bool,
    pub is_control: bool,
    pub compression: Compression,
}

pub(crate) fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Validate a produce request's records: framing (every length bounded against the buffer
/// before it is used), magic == 2, CRC-32C, `record_count >= 1`, `last_offset_delta ==
/// record_count - 1`, each batch at most `max_batch_bytes`. Never panics on any input and never
/// allocates from wire lengths (the result grows by one entry per batch actually present).
pub fn parse_batches(records: &[u8], max_batch_bytes: usize) -> Result<Vec<BatchHeader>, LogError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    if records.is_empty() {
        return Err(LogError::Corrupt("empty record set".into()));
    }
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < LOG_OVERHEAD {
            return Err(LogError::Corrupt(format!(
                "truncated batch prefix at byte {pos}"
            )));
        }
        let length = i32_at(rest, LENGTH);
        if length < 0 {
            return Err(LogError::Corrupt(format!(
                "negative batch length {length} at byte {pos}"
            )));
        }
        // Checked before the magic byte so an oversized batch reports TooLarge even if truncated.
        let size = LOG_OVERHEAD + length as usize;
        if size > max_batch_bytes {
            return Err(LogError::TooLarge(format!(
                "batch of {size} bytes exceeds max.message.bytes {max_batch_bytes}"
            )));
        }
        if size < HEADER_SIZE {
            return Err(LogError::Corrupt(format!(
                "batch of {size} bytes is shorter than its header"
            )));
        }
        if rest.len() > MAGIC && rest[MAGIC] != 2 {
            return Err(LogError::UnsupportedForMessageFormat(format!(
                "record batch magic {} (only v2 is supported)",
                rest[MAGIC] as i8
            )));
        }
        if size > rest.len() {
            return Err(LogError::Corrupt(format!(
                "batch at byte {pos} claims {size} bytes, {} remain",
                rest.len()
            )));
        }
        let header = check_batch(&rest[..size], pos)?;
        out.push(header);
        pos += size;
    }
    Ok(out)
}

/// Verify one complete, size-bounded batch (`b.len()` equals its framed size) and read its header.
/// Used both for produce validation and for log recovery.
pub(crate) fn check_batch(b: &[u8], position: usize) -> Result<BatchHeader, LogError> {
    debug_assert!(b.len() >= HEADER_SIZE);
    if b[MAGIC] != 2 {
        return Err(LogError::UnsupportedForMessageFormat(format!(
            "record batch magic {}",
            b[MAGIC] as i8
        )));
    }
    // decode_batch_info checks the CRC-32C and the compression codec. It only ever sees one
    // complete batch, so its internal length handling is already bounded by us.
    let mut buf: &[u8] = b;
    let infos = RecordBatchDecoder::decode_batch_info(&mut buf)
        .map_err(|e| LogError::Corrupt(format!("batch at byte {position}: {e}")))?;
    let info = match infos.as_slice() {
        [one] => one,
        _ => {
            return Err(LogError::Corrupt(format!(
                "batch at byte {position}: bad framing"
            )))
        }
    };
    let last_offset_delta = i32_at(b, LAST_OFFSET_DELTA);
    if info.record_count < 1 || last_offset_delta != info.record_count - 1 {
        return Err(LogError::Corrupt(format!(
            "batch at byte {position}: record count {} with last offset delta {last_offset_delta}",
            info.record_count
        )));
    }
    let attributes = i16_at(b, ATTRIBUTES);
    Ok(BatchHeader {
        position,
        size: b.len(),
        last_offset_delta,
        record_count: info.record_count,
        base_timestamp: i64_at(b, BASE_TIMESTAMP),
        max_timestamp: i64_at(b, MAX_TIMESTAMP),
        producer_id: i64_at(b, PRODUCER_ID),
        producer_epoch: i16_at(b, PRODUCER_EPOCH),
        base_sequence: i32_at(b, BASE_SEQUENCE),
        is_transactional: attributes & TRANSACTIONAL_BIT != 0,
        is_control: attributes & CONTROL_BIT != 0,
        compression: info.compression,
    })
}

/// Assign the batch's base offset and partition leader epoch (both outside the CRC).
pub(crate) fn stamp_offset_and_epoch(b: &mut [u8], base_offset: i64, leader_epoch: i32) {
    b[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    b[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// LogAppendTime: mark the timestamp type, set max timestamp to `now_ms`, recompute the CRC-32C
/// (which covers attributes to the end of the batch).
pub(crate) fn stamp_log_append_time(b: &mut [u8], now_ms: i64) {
    let attributes = i16_at(b, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    b[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES..]);
    b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

pub(crate) fn is_log_append_time(b: &[u8]) -> bool {
    i16_at(b, ATTRIBUTES) & TIMESTAMP_TYPE_BIT != 0
}

/// The exact (offset, timestamp) of the first record in `batch` (one whole stored batch) with
/// `timestamp >= ts` and `offset >= min_offset`. Decodes only this batch, with decompression
/// capped at [`MAX_DECOMPRESSED_BYTES`] and counts sanity-checked before the decoder sees them.
pub(crate) fn find_record_at_or_after(
    batch: &[u8],
    ts: i64,
    min_offset: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    if batch.len() < HEADER_SIZE {
        return Err(LogError::Corrupt("short batch".into()));
    }
    let base_offset = i64_at(batch, BASE_OFFSET);
    if is_log_append_time(batch) {
        // Every record's timestamp is the batch's max timestamp.
        let max_ts = i64_at(batch, MAX_TIMESTAMP);
        let last = base_offset + i32_at(batch, LAST_OFFSET_DELTA) as i64;
        return Ok(
            (max_ts >= ts && last >= min_offset).then(|| (base_offset.max(min_offset), max_ts))
        );
    }
    let record_count = i32_at(batch, RECORD_COUNT);
    let mut buf = Bytes::copy_from_slice(batch);
    let decompress = |raw: &mut Bytes, c: Compression| -> anyhow::Result<Bytes> {
        let plain = decompress_bounded(raw, c, MAX_DECOMPRESSED_BYTES)?;
        guard_record_counts(&plain, record_count)?;
        Ok(plain)
    };
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(decompress))
        .map_err(|e| LogError::Corrupt(format!("batch at offset {base_offset}: {e}")))?;
    Ok(set
        .records
        .iter()
        .find(|r| r.timestamp >= ts && r.offset >= min_offset)
        .map(|r| (r.offset, r.timestamp)))
}

/// Decompress a batch's records section, failing instead of growing past `cap` bytes.
fn decompress_bounded(raw: &Bytes, c: Compression, cap: usize) -> anyhow::Result<Bytes> {
    fn read_capped(r: impl Read, cap: usize) -> anyhow::Result<Bytes> {
        let mut out = Vec::new();
        r.take(cap as u64 + 1).read_to_end(&mut out)?;
        anyhow::ensure!(out.len() <= cap, "decompressed batch exceeds {cap} bytes");
        Ok(out.into())
    }
    match c {
        Compression::None => Ok(raw.clone()),
        Compression::Gzip => read_capped(flate2::read::GzDecoder::new(&raw[..]), cap),
        Compression::Zstd => read_capped(zstd::stream::read::Decoder::new(&raw[..])?, cap),
        Compression::Lz4 => read_capped(lz4::Decoder::new(&raw[..])?, cap),
        Compression::Snappy => snappy_bounded(raw, cap),
    }
}

/// Kafka's snappy: xerial-framed blocks (16-byte magic, then u32 length + raw block), or raw
/// snappy without the magic. Lengths are checked against the input and the cap before allocating.
fn snappy_bounded(raw: &[u8], cap: usize) -> anyhow::Result<Bytes> {
    const MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
    let mut dec = snap::raw::Decoder::new();
    let mut block = |input: &[u8], out: &mut Vec<u8>| -> anyhow::Result<()> {
        let n = snap::raw::decompress_len(input)?;
        anyhow::ensure!(
            out.len() + n <= cap,
            "decompressed batch exceeds {cap} bytes"
        );
        let start = out.len();
        out.resize(start + n, 0);
        let written = dec.decompress(input, &mut out[start..])?;
        out.truncate(start + written);
        Ok(())
    };
    let mut out = Vec::new();
    if raw.len() < MAGIC.len() || raw[..MAGIC.len()] != MAGIC[..] {
        block(raw, &mut out)?;
        return Ok(out.into());
    }
    let mut rest = &raw[MAGIC.len()..];
    while !rest.is_empty() {
        anyhow::ensure!(rest.len() >= 4, "truncated snappy block length");
        let n = u32::from_be_bytes(rest[..4].try_into()?) as usize;
        anyhow::ensure!(n <= rest.len() - 4, "snappy block overruns the batch");
        block(&rest[4..4 + n], &mut out)?;
        rest = &rest[4 + n..];
    }
    Ok(out.into())
}

/// The kafka-protocol record decoder reserves `record_count` records and `IndexMap::with_capacity`
/// of each record's header count straight from the wire, so a CRC-valid but hostile batch could
/// abort the process. This walks only the length varints (it builds nothing) and rejects counts
/// that the bytes cannot possibly hold. It is a bounds check, not a decoder.
fn guard_record_counts(plain: &[u8], record_count: i32) -> anyhow::Result<()> {
    // Smallest record: length, attributes, ts delta, offset delta, key len, value len, header count.
    anyhow::ensure!(
        record_count >= 0 && (record_count as usize) <= plain.len() / 7,
        "record count {record_count} does not fit in {} bytes",
        plain.len()
    );
    let mut rest = plain;
    for _ in 0..record_count {
        let len = varint(&mut rest)?;
        anyhow::ensure!(
            len >= 0 && len as usize <= rest.len(),
            "record length {len} out of bounds"
        );
        let (mut rec, tail) = rest.split_at(len as usize);
        rest = tail;
        anyhow::ensure!(!rec.is_empty(), "empty record");
        rec = &rec[1..]; // attributes
        varint(&mut rec)?; // timestamp delta
        varint(&mut rec)?; // offset delta
        for _ in 0..2 {
            // key, value: -1 means null
            let n = varint(&mut rec)?;
            anyhow::ensure!(
                n >= -1 && n <= rec.len() as i64,
                "record field length {n} out of bounds"
            );
            rec = &rec[n.max(0) as usize..];
        }
        let headers = varint(&mut rec)?;
        // Each header is at least two varints (key length, value length).
        anyhow::ensure!(
            headers >= 0 && headers as usize <= rec.len() / 2,
            "header count {headers} out of bounds"
        );
    }
    Ok(())
}

/// A zig-zag varint/varlong (up to 10 bytes), advancing `b`.
fn varint(b: &mut &[u8]) -> anyhow::Result<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = b
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("truncated varint"))?;
        *b = rest;
        value |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    anyhow::bail!("varint too long")
}
