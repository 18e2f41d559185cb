//! One replicated partition's view of its replicas: this broker's role, the assignment
//! from the cell's metadata (replicas, ISR, epochs), and, on the leader, each follower's
//! progress. Decides the high watermark a leader may expose and the ISR changes it
//! should ask the controller for.
//!
//! Pure: no I/O and no clock of its own (callers pass `now`), so its rules are tested
//! directly. Kafka's rules, simplified where noted:
//! - a follower is caught up when it fetched at or past the leader's log end as it was
//!   at the follower's previous fetch (Kafka's lastCaughtUpTime);
//! - the high watermark is the smallest log end among the leader (its durable end) and
//!   every member of the *maximal* ISR (committed plus any pending addition), so an
//!   in-flight ISR change can never make it unsafe;
//! - a member not caught up for `replica.lag.time.max.ms` is proposed for removal; a
//!   non-member whose log end reached the high watermark and the leader's epoch start is
//!   proposed for addition. One proposal is in flight at a time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::cell::v1::PartitionRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower {
        leader: i32,
    },
    /// No leader is known, or this broker is no longer a replica.
    Offline,
}

#[derive(Clone, Copy, Debug)]
struct FollowerProgress {
    /// The offset the follower asked for last: its log end.
    log_end: i64,
    caught_up_at: Instant,
    /// The leader's log end and the time at the follower's previous fetch.
    prev_fetch_leader_end: i64,
    prev_fetch_at: Instant,
}

/// What an assignment change asks the partition to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// This broker now leads at `epoch`: start the epoch at the log end.
    BecomeLeader {
        epoch: i32,
    },
    /// This broker now follows `leader` at `epoch`.
    BecomeFollower {
        leader: i32,
        epoch: i32,
    },
    /// No replica can lead (or this broker stopped being one).
    BecomeOffline {
        epoch: i32,
    },
    /// Same leader and epoch; ISR or replicas changed.
    Updated,
}

#[derive(Debug)]
pub struct ReplicaSet {
    pub me: i32,
    pub role: Role,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// An ISR sent to the controller and not yet answered.
    pub pending_isr: Option<Vec<i32>>,
    /// Where the current leader epoch started in the log (leader only).
    pub epoch_start_offset: i64,
    followers: HashMap<i32, FollowerProgress>,
}

impl ReplicaSet {
    pub fn new(me: i32) -> ReplicaSet {
        ReplicaSet {
            me,
            role: Role::Offline,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            pending_isr: None,
            epoch_start_offset: 0,
            followers: HashMap::new(),
        }
    }

    /// Take a committed assignment. Older ones (by leader then partition epoch) are
    /// ignored, so the metadata stream and AlterPartition answers can both feed this.
    pub fn apply(&mut self, rec: &PartitionRecord, log_end: i64, now: Instant) -> Transition {
        let newer_leader = rec.leader_epoch > self.leader_epoch;
        let newer_partition =
            rec.leader_epoch == self.leader_epoch && rec.partition_epoch > self.partition_epoch;
        if !newer_leader && !newer_partition {
            return Transition::None;
        }
        self.partition_epoch = rec.partition_epoch;
        self.replicas = rec.replicas.clone();
        self.isr = rec.isr.clone();
        self.pending_isr = None;
        if !newer_leader {
            return Transition::Updated;
        }
        self.leader_epoch = rec.leader_epoch;
        if rec.leader == self.me && self.replicas.contains(&self.me) {
            self.role = Role::Leader;
            self.epoch_start_offset = log_end;
            // Every follower starts with a fresh lag allowance, as in Kafka.
            self.followers = self
                .replicas
                .iter()
                .filter(|&&r| r != self.me)
                .map(|&r| {
                    let p = FollowerProgress {
                        log_end: -1,
                        caught_up_at: now,
                        prev_fetch_leader_end: -1,
                        prev_fetch_at: now,
                    };
                    (r, p)
                })
                .collect();
            Transition::BecomeLeader {
                epoch: rec.leader_epoch,
            }
        } else if rec.leader >= 0 && self.replicas.contains(&self.me) {
            self.role = Role::Follower { leader: rec.leader };
            self.followers.clear();
            Transition::BecomeFollower {
                leader: rec.leader,
                epoch: rec.leader_epoch,
            }
        } else {
            self.role = Role::Offline;
            self.followers.clear();
            Transition::BecomeOffline {
                epoch: rec.leader_epoch,
            }
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The ISR the high watermark must respect: committed plus pending additions.
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let pending = self.pending_isr.iter().flatten().copied();
        self.isr
            .iter()
            .copied()
            .chain(pending.filter(|r| !self.isr.contains(r)))
    }

    /// A follower fetched at `fetch_offset` while the leader's log ended at `leader_end`.
    pub fn record_fetch(&mut self, replica: i32, fetch_offset: i64, leader_end: i64, now: Instant) {
        let Some(p) = self.followers.get_mut(&replica) else {
            return;
        };
        if fetch_offset >= leader_end {
            p.caught_up_at = now;
        } else if p.prev_fetch_leader_end >= 0 && fetch_offset >= p.prev_fetch_leader_end {
            p.caught_up_at = p.caught_up_at.max(p.prev_fetch_at);
        }
        p.log_end = fetch_offset;
        p.prev_fetch_leader_end = leader_end;
        p.prev_fetch_at = now;
    }

    /// The high watermark the leader may expose given its own durable end; `None` while
    /// a member's progress is unknown (just took over) or this broker does not lead.
    pub fn leader_high_watermark(&self, leader_durable_end: i64) -> Option<i64> {
        if !self.is_leader() {
            return None;
        }
        let mut hw = leader_durable_end;
        for r in self.maximal_isr() {
            if r == self.me {
                continue;
            }
            let end = self.followers.get(&r).map_or(-1, |p| p.log_end);
            if end < 0 {
                return None;
            }
            hw = hw.min(end);
        }
        Some(hw)
    }

    /// Number of in-sync replicas (for `min.insync.replicas`).
    pub fn isr_len(&self) -> usize {
        self.isr.len()
    }

    /// The ISR to ask the controller for, if it should change and nothing is in flight.
    pub fn isr_proposal(&self, hw: i64, lag_max: Duration, now: Instant) -> Option<Vec<i32>> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return None;
        }
        let lagging = |r: &i32| {
            self.followers
                .get(r)
                .is_some_and(|p| now.saturating_duration_since(p.caught_up_at) > lag_max)
        };
        let mut next: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| *r == self.me || !lagging(r))
            .collect();
        for (&r, p) in &self.followers {
            let caught_up = p.log_end >= hw && p.log_end >= self.epoch_start_offset;
            if !next.contains(&r) && caught_up && !lagging(&r) && self.replicas.contains(&r) {
                next.push(r);
            }
        }
        // Keep the replicas' order: it is what clients and operators read.
        next.sort_by_key(|r| self.replicas.iter().position(|x| x == r));
        (next != self.isr).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(leader: i32, leader_epoch: i32, partition_epoch: i32, isr: &[i32]) -> PartitionRecord {
        PartitionRecord {
            topic_id: vec![0; 16],
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch,
        }
    }

    #[test]
    fn transitions_follow_the_newest_assignment() {
        let now = Instant::now();
        let mut rs = ReplicaSet::new(1);
        assert_eq!(
            rs.apply(&rec(1, 0, 0, &[1, 2, 3]), 10, now),
            Transition::BecomeLeader { epoch: 0 }
        );
        assert_eq!(rs.epoch_start_offset, 10);
        // A stale record changes nothing.
        assert_eq!(rs.apply(&rec(2, 0, 0, &[1]), 10, now), Transition::None);
        assert_eq!(
            rs.apply(&rec(1, 0, 1, &[1, 2]), 10, now),
            Transition::Updated
        );
        assert_eq!(rs.isr, vec![1, 2]);
        assert_eq!(
            rs.apply(&rec(2, 1, 2, &[2, 3]), 12, now),
            Transition::BecomeFollower {
                leader: 2,
                epoch: 1
            }
        );
        assert_eq!(
            rs.apply(&rec(-1, 2, 3, &[2]), 12, now),
            Transition::BecomeOffline { epoch: 2 }
        );
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_log_end() {
        let now = Instant::now();
        let mut rs = ReplicaSet::new(1);
        rs.apply(&rec(1, 0, 0, &[1, 2, 3]), 0, now);
        assert_eq!(rs.leader_high_watermark(100), None, "followers unknown");
        rs.record_fetch(2, 80, 100, now);
        assert_eq!(rs.leader_high_watermark(100), None, "replica 3 unknown");
        rs.record_fetch(3, 90, 100, now);
        assert_eq!(rs.leader_high_watermark(100), Some(80));
        assert_eq!(rs.leader_high_watermark(70), Some(70), "leader durability");
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_return() {
        let t0 = Instant::now();
        let lag = Duration::from_secs(10);
        let mut rs = ReplicaSet::new(1);
        rs.apply(&rec(1, 0, 0, &[1, 2, 3]), 0, t0);
        rs.record_fetch(2, 100, 100, t0);
        rs.record_fetch(3, 50, 100, t0);
        let t1 = t0 + Duration::from_secs(11);
        rs.record_fetch(2, 200, 200, t1);
        assert_eq!(rs.isr_proposal(100, lag, t1), Some(vec![1, 2]));
        rs.pending_isr = Some(vec![1, 2]);
        assert_eq!(rs.isr_proposal(100, lag, t1), None, "one change in flight");
        rs.apply(&rec(1, 0, 1, &[1, 2]), 200, t1);
        // Replica 3 catches up to the high watermark and the log end: it comes back.
        rs.record_fetch(3, 200, 200, t1);
        assert_eq!(rs.isr_proposal(200, lag, t1), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_pending_addition_counts_for_the_high_watermark() {
        let now = Instant::now();
        let mut rs = ReplicaSet::new(1);
        rs.apply(&rec(1, 0, 0, &[1, 2]), 0, now);
        rs.record_fetch(2, 100, 100, now);
        rs.record_fetch(3, 40, 100, now);
        assert_eq!(rs.leader_high_watermark(100), Some(100));
        rs.pending_isr = Some(vec![1, 2, 3]);
        assert_eq!(rs.leader_high_watermark(100), Some(40));
    }
}
