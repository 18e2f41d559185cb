//! Rebuilding idempotent-producer state from the stored batches, so that a retried batch
//! is still recognised as a duplicate after a broker restart or crash. Only batch headers
//! are read (61 bytes each, positional reads); record data is never touched.

use super::batch::{self, HEADER_SIZE};
use super::segment::loc_from_header;
use super::{LogError, PartitionLog};
use crate::producer_state::{CachedBatch, ProducerStates};

/// Segments scanned from the end: the producer cache keeps only recent batches, and older
/// producers are accepted as unknown (as Kafka does once their state expires).
const SEGMENTS_SCANNED: usize = 2;

impl PartitionLog {
    /// The effective config of this log.
    pub fn config(&self) -> &crate::config::LogConfig {
        &self.config
    }

    /// Producer state as recorded by the newest segments' idempotent batches.
    pub fn rebuild_producer_state(&self) -> Result<ProducerStates, LogError> {
        let mut states = ProducerStates::default();
        let skip = self.segments.len().saturating_sub(SEGMENTS_SCANNED);
        for seg in self.segments.values().skip(skip) {
            let mut pos = 0u64;
            let mut header = [0u8; HEADER_SIZE];
            while pos + HEADER_SIZE as u64 <= seg.size {
                std::os::unix::fs::FileExt::read_exact_at(&*seg.file, &mut header, pos)?;
                let loc = loc_from_header(&header, pos);
                if loc.size < HEADER_SIZE as u64 {
                    // Recovery already cut torn tails; a bad length here means stop scanning.
                    break;
                }
                let producer_id = batch::i64_at(&header, batch::PRODUCER_ID);
                if producer_id >= 0 && loc.base_offset >= self.log_start {
                    let first_seq = batch::i32_at(&header, batch::BASE_SEQUENCE);
                    let delta = batch::i32_at(&header, batch::LAST_OFFSET_DELTA);
                    states.record(
                        producer_id,
                        batch::i16_at(&header, batch::PRODUCER_EPOCH),
                        CachedBatch {
                            first_seq,
                            last_seq: first_seq.wrapping_add(delta),
                            base_offset: loc.base_offset,
                        },
                    );
                }
                pos += loc.size;
            }
        }
        Ok(states)
    }
}
