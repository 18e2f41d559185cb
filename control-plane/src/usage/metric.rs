//! The metrics the Metrics API serves: their Confluent names, whether each is a counter or
//! a gauge, and whether it exists per topic.

/// One metric of `io.confluent.kafka.server`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    ReceivedBytes,
    SentBytes,
    RetainedBytes,
    RequestCount,
    ActiveConnectionCount,
    PartitionCount,
}

/// How a metric's per-minute points combine into a coarser bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A delta per minute: a bucket is the sum of its minutes.
    Counter,
    /// A sample per minute: a bucket is its last minute's sample.
    Gauge,
}

/// The prefix of every metric name.
pub const PREFIX: &str = "io.confluent.kafka.server/";

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::ReceivedBytes,
        Metric::SentBytes,
        Metric::RetainedBytes,
        Metric::RequestCount,
        Metric::ActiveConnectionCount,
        Metric::PartitionCount,
    ];

    /// The short name, as stored (`received_bytes`).
    pub fn key(self) -> &'static str {
        match self {
            Metric::ReceivedBytes => "received_bytes",
            Metric::SentBytes => "sent_bytes",
            Metric::RetainedBytes => "retained_bytes",
            Metric::RequestCount => "request_count",
            Metric::ActiveConnectionCount => "active_connection_count",
            Metric::PartitionCount => "partition_count",
        }
    }

    /// The full name (`io.confluent.kafka.server/received_bytes`).
    pub fn name(self) -> String {
        format!("{PREFIX}{}", self.key())
    }

    pub fn parse(name: &str) -> Option<Metric> {
        let key = name.strip_prefix(PREFIX)?;
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::ReceivedBytes | Metric::SentBytes | Metric::RequestCount => Kind::Counter,
            _ => Kind::Gauge,
        }
    }

    /// Whether the metric has a `metric.topic` label (requests and connections are per
    /// cluster only).
    pub fn by_topic(self) -> bool {
        !matches!(self, Metric::RequestCount | Metric::ActiveConnectionCount)
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::ReceivedBytes | Metric::SentBytes | Metric::RetainedBytes => "By",
            _ => "1",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Metric::ReceivedBytes => {
                "The delta count of bytes of the customer's data received from the network. \
                 Each sample is the number of bytes received since the previous data sample."
            }
            Metric::SentBytes => {
                "The delta count of bytes of the customer's data sent over the network. Each \
                 sample is the number of bytes sent since the previous data point."
            }
            Metric::RetainedBytes => {
                "The current count of bytes retained by the cluster, all replicas, sampled \
                 every collection interval (a bucket shows its last sample)."
            }
            Metric::RequestCount => {
                "The delta count of Kafka requests received over the network. Each sample is \
                 the number of requests received since the previous data point."
            }
            Metric::ActiveConnectionCount => {
                "The count of active authenticated connections (a bucket shows its last \
                 sample)."
            }
            Metric::PartitionCount => "The number of partitions (a bucket shows its last sample).",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(&m.name()), Some(m));
        }
        assert_eq!(Metric::parse("received_bytes"), None);
        assert_eq!(Metric::parse("io.confluent.kafka.server/nope"), None);
    }
}
