//! Idempotent-producer state for one partition: per producer id, the current epoch and the
//! last few batches' sequence ranges, so that a retried batch is recognised and answered
//! with its original offset, a gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, and an old
//! epoch is fenced. Mirrors Kafka's ProducerStateManager (5 cached batches, as clients keep
//! at most 5 requests in flight).

use std::collections::{HashMap, VecDeque};

use crate::error::{Error, Result};

/// Batches remembered per producer for duplicate detection.
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
}

/// What to do with an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended: answer with the original base offset, append nothing.
    Duplicate { base_offset: i64 },
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

/// The sequence after `seq`, wrapping as Kafka does.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    /// Check a batch from an idempotent producer (`producer_id >= 0`) before appending it.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck> {
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state aged out with the log): accept.
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(Error::InvalidProducerEpoch(format!(
                "producer {producer_id} epoch {epoch} is older than the current epoch {}",
                entry.epoch
            )));
        }
        if epoch > entry.epoch {
            // A bumped epoch starts its sequences over.
            return if first_seq == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(Error::OutOfOrderSequenceNumber(format!(
                    "producer {producer_id} new epoch {epoch} must start at sequence 0, got {first_seq}"
                )))
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                base_offset: b.base_offset,
            });
        }
        let expected = entry
            .batches
            .back()
            .map(|b| next_seq(b.last_seq))
            .unwrap_or(0);
        if entry.batches.is_empty() || first_seq == expected {
            Ok(SequenceCheck::Append)
        } else {
            Err(Error::OutOfOrderSequenceNumber(format!(
                "producer {producer_id} epoch {epoch}: expected sequence {expected}, got {first_seq}"
            )))
        }
    }

    /// Record an appended batch.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: CachedBatch) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, last: i32, off: i64) -> CachedBatch {
        CachedBatch {
            first_seq: first,
            last_seq: last,
            base_offset: off,
        }
    }

    #[test]
    fn in_order_duplicate_gap_and_fencing() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 4).unwrap(), SequenceCheck::Append);
        s.record(7, 0, batch(0, 4, 100));
        assert_eq!(s.check(7, 0, 5, 9).unwrap(), SequenceCheck::Append);
        s.record(7, 0, batch(5, 9, 105));
        // A retry of either cached batch is a duplicate with its original offset.
        assert_eq!(
            s.check(7, 0, 0, 4).unwrap(),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            s.check(7, 0, 5, 9).unwrap(),
            SequenceCheck::Duplicate { base_offset: 105 }
        );
        // A gap is out of order.
        assert!(matches!(
            s.check(7, 0, 11, 12),
            Err(Error::OutOfOrderSequenceNumber(_))
        ));
        // An older epoch is fenced; a newer one must restart at 0.
        s.record(7, 1, batch(0, 0, 110));
        assert!(matches!(
            s.check(7, 0, 10, 10),
            Err(Error::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            s.check(7, 2, 3, 3),
            Err(Error::OutOfOrderSequenceNumber(_))
        ));
        assert_eq!(s.check(7, 2, 0, 0).unwrap(), SequenceCheck::Append);
    }

    #[test]
    fn only_five_batches_are_cached_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(1, 0, batch(i, i, i as i64));
        }
        // Batch 0 and 1 aged out of the cache: no longer recognised as duplicates.
        assert!(s.check(1, 0, 0, 0).is_err());
        assert_eq!(
            s.check(1, 0, 6, 6).unwrap(),
            SequenceCheck::Duplicate { base_offset: 6 }
        );
        s.record(2, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(s.check(2, 0, 0, 3).unwrap(), SequenceCheck::Append);
    }
}
