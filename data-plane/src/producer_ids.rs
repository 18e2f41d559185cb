//! Durable producer-id allocation for InitProducerId: ids are handed out from blocks whose
//! upper bound is persisted before any id in the block is used, so an id is never reused
//! after a crash (the unused rest of a block is simply skipped).

use std::path::PathBuf;
use std::sync::Mutex;

use crate::fsutil::write_atomic;

const BLOCK: i64 = 1000;

pub struct ProducerIdAllocator {
    path: PathBuf,
    /// Added to every id: in a cell, the broker id in the top bits keeps ids unique
    /// across brokers without asking the controller.
    base: i64,
    /// (next id to hand out, end of the persisted block, exclusive)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    pub fn open(path: PathBuf) -> std::io::Result<Self> {
        let persisted = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            path,
            base: 0,
            state: Mutex::new((persisted, persisted)),
        })
    }

    /// The allocator of broker `node_id` in a cell: ids are `node_id << 51` plus a counter.
    /// A broker whose data was wiped starts its counter at the wall clock in ms, above
    /// anything it handed out before unless it averaged over 1,000 ids a second.
    pub fn open_in_cell(path: PathBuf, node_id: i32) -> std::io::Result<Self> {
        let fresh = !path.exists();
        let mut a = Self::open(path)?;
        a.base = (node_id.clamp(0, 4095) as i64) << 51;
        if fresh {
            let now = crate::broker::now_ms().max(0);
            *a.state.get_mut().unwrap_or_else(|e| e.into_inner()) = (now, now);
        }
        Ok(a)
    }

    pub fn allocate(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 >= state.1 {
            let end = state.0 + BLOCK;
            write_atomic(&self.path, end.to_string().as_bytes())?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(self.base + id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer-ids");
        let a = ProducerIdAllocator::open(path.clone()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(path).unwrap();
        assert!(b.allocate().unwrap() >= BLOCK);
    }
}
