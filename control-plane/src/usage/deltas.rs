//! Cumulative counters to deltas, per broker incarnation, with restarts detected.
//!
//! A broker's counters count from 0 since its process started. The collector keeps the
//! last value it saw of each series per (cell, broker) with the broker's incarnation, and
//! turns every new report into deltas:
//! - same incarnation, value grew: the difference;
//! - same incarnation, value smaller (the broker forgot the topic and it came back, or a
//!   counter was reset): a restart of that series, its whole value;
//! - a new series of a known incarnation (a new topic): its whole value;
//! - a new incarnation of a known broker (a restart): every series' whole value;
//! - a broker never seen while [`Baselines::seen_cell`] says the cell has answered before
//!   (a new broker): its whole value; before the cell's first answer (the control plane just
//!   started): nothing, only the baseline, since an earlier control plane may have counted it.
//!
//! A series missing from one report (a new controller leader before the broker's next
//! report, or a large broker reporting in turns) keeps its baseline. Soft state: a
//! restarted control plane starts from new baselines, losing at most one interval of usage
//! and never counting any twice.

use std::collections::{HashMap, HashSet};

use super::metric::Metric;

/// One cumulative series of one broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub cluster_id: String,
    /// Empty for per-cluster metrics.
    pub topic: String,
    pub metric: Metric,
}

struct Broker {
    incarnation: String,
    values: HashMap<Series, u64>,
    /// The collector pass that last saw it (to forget brokers gone for good).
    pass: u64,
}

/// Brokers not seen for this many passes are forgotten (at the default interval, a day).
const FORGET_AFTER_PASSES: u64 = 24 * 60;

#[derive(Default)]
pub struct Baselines {
    brokers: HashMap<(String, i32), Broker>,
    cells: HashSet<String>,
    pass: u64,
}

impl Baselines {
    /// Starts a collector pass.
    pub fn begin_pass(&mut self) {
        self.pass += 1;
        let pass = self.pass;
        self.brokers
            .retain(|_, b| pass.saturating_sub(b.pass) < FORGET_AFTER_PASSES);
    }

    /// Marks `cell` as having answered once (see the module docs).
    pub fn seen_cell(&mut self, cell: &str) {
        self.cells.insert(cell.to_string());
    }

    /// The deltas of one broker's report of cumulative counter `values`.
    pub fn deltas(
        &mut self,
        cell: &str,
        broker_id: i32,
        incarnation: &str,
        values: impl IntoIterator<Item = (Series, u64)>,
    ) -> Vec<(Series, u64)> {
        let key = (cell.to_string(), broker_id);
        let known_cell = self.cells.contains(cell);
        let pass = self.pass;
        let (broker, whole) = match self.brokers.get_mut(&key) {
            Some(b) if b.incarnation == incarnation => (b, true),
            Some(b) => {
                b.incarnation = incarnation.to_string();
                b.values.clear();
                (b, true)
            }
            None => (
                self.brokers.entry(key).or_insert_with(|| Broker {
                    incarnation: incarnation.to_string(),
                    values: HashMap::new(),
                    pass,
                }),
                known_cell,
            ),
        };
        broker.pass = pass;
        let mut out = Vec::new();
        for (series, value) in values {
            let delta = match broker.values.get(&series) {
                Some(&prev) if value >= prev => value - prev,
                Some(_) => value,
                None if whole => value,
                None => 0,
            };
            broker.values.insert(series.clone(), value);
            if delta > 0 {
                out.push((series, delta));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(topic: &str) -> Series {
        Series {
            cluster_id: "lkc-a".into(),
            topic: topic.into(),
            metric: Metric::ReceivedBytes,
        }
    }

    fn run(b: &mut Baselines, broker: i32, inc: &str, v: &[(&str, u64)]) -> Vec<(String, u64)> {
        let vals = v.iter().map(|(t, n)| (s(t), *n)).collect::<Vec<_>>();
        b.deltas("cell-1", broker, inc, vals)
            .into_iter()
            .map(|(s, d)| (s.topic, d))
            .collect()
    }

    #[test]
    fn first_sight_after_start_is_only_a_baseline() {
        let mut b = Baselines::default();
        b.begin_pass();
        assert!(run(&mut b, 1, "i1", &[("x", 100)]).is_empty());
        b.seen_cell("cell-1");
        b.begin_pass();
        assert_eq!(run(&mut b, 1, "i1", &[("x", 130)]), vec![("x".into(), 30)]);
        // Unchanged: no delta.
        assert!(run(&mut b, 1, "i1", &[("x", 130)]).is_empty());
    }

    #[test]
    fn restarts_and_new_series_count_whole() {
        let mut b = Baselines::default();
        b.begin_pass();
        run(&mut b, 1, "i1", &[("x", 100)]);
        b.seen_cell("cell-1");
        // A new topic of a known incarnation: its whole value.
        assert_eq!(
            run(&mut b, 1, "i1", &[("x", 100), ("y", 5)]),
            vec![("y".into(), 5)]
        );
        // A smaller value: that series restarted.
        assert_eq!(run(&mut b, 1, "i1", &[("x", 40)]), vec![("x".into(), 40)]);
        // A new incarnation: everything counts whole, even a larger value.
        assert_eq!(
            run(&mut b, 1, "i2", &[("x", 70), ("y", 9)]),
            vec![("x".into(), 70), ("y".into(), 9)]
        );
        // A new broker once the cell answered before: whole.
        assert_eq!(run(&mut b, 2, "j1", &[("x", 8)]), vec![("x".into(), 8)]);
        // A series missing from a report keeps its baseline.
        assert!(run(&mut b, 2, "j1", &[]).is_empty());
        assert_eq!(run(&mut b, 2, "j1", &[("x", 10)]), vec![("x".into(), 2)]);
    }

    #[test]
    fn forgets_brokers_gone_for_long() {
        let mut b = Baselines::default();
        b.seen_cell("cell-1");
        b.begin_pass();
        run(&mut b, 1, "i1", &[("x", 1)]);
        for _ in 0..FORGET_AFTER_PASSES {
            b.begin_pass();
        }
        assert!(b.brokers.is_empty());
    }
}
