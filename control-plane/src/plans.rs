//! Plans: the limits of each cluster kind (Basic, Standard, Enterprise, Dedicated per CKU),
//! their defaults, overrides from config, and the mapping to proto `ClusterLimits`.
//!
//! The store keeps plans versioned (`plans` table): a cluster records the version it was
//! created or last resized with, so changing the configured limits never changes the
//! limits of a running cluster behind its back.

use crate::error::{Error, Result};
use proto::cell::v1::ClusterLimits;
use std::fmt;
use std::str::FromStr;

/// The kinds of cluster, as Confluent Cloud names them in `spec.config.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClusterKind {
    Basic,
    Standard,
    Enterprise,
    Dedicated,
}

impl ClusterKind {
    pub const ALL: [ClusterKind; 4] = [
        ClusterKind::Basic,
        ClusterKind::Standard,
        ClusterKind::Enterprise,
        ClusterKind::Dedicated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Basic => "Basic",
            ClusterKind::Standard => "Standard",
            ClusterKind::Enterprise => "Enterprise",
            ClusterKind::Dedicated => "Dedicated",
        }
    }
}

impl fmt::Display for ClusterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClusterKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<ClusterKind> {
        ClusterKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "cluster kind {s:?} is not known; use Basic, Standard, Enterprise or Dedicated"
                ))
            })
    }
}

/// One plan's limits, in the units of proto `ClusterLimits` (bytes, counts, per second);
/// 0 means no limit. For Dedicated they are per CKU (see [`PlanLimits::for_cku`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanLimits {
    pub ingress_bytes_per_sec: u64,
    pub egress_bytes_per_sec: u64,
    pub max_partitions: u32,
    pub max_connections: u32,
    pub connection_attempts_per_sec: u32,
    pub requests_per_sec: u32,
    pub max_message_bytes: u32,
    pub partition_mutations_per_5min: u32,
    /// Request handling time across the cell, percent of one second per second.
    pub request_time_percent: u32,
    /// The largest request a client may send.
    pub max_request_bytes: u32,
}

const MB: u64 = 1_000_000;
/// Confluent's "8 MB" and "20 MB" message limits are binary megabytes.
const MIB: u32 = 1 << 20;

impl PlanLimits {
    /// The documented Confluent Cloud figures (`../shared/notes/kora-and-confluent-cloud.md`,
    /// one snapshot). Where the notes give none, the choice is ours and marked so.
    pub fn default_for(kind: ClusterKind) -> PlanLimits {
        let basic = PlanLimits {
            ingress_bytes_per_sec: 250 * MB,
            egress_bytes_per_sec: 750 * MB,
            max_partitions: 4_096,
            max_connections: 1_000,
            connection_attempts_per_sec: 80,
            requests_per_sec: 15_000,
            max_message_bytes: 8 * MIB,
            // The notes give 250 to 5,000 per 5 minutes across kinds; Basic takes the low end.
            partition_mutations_per_5min: 250,
            // Ours (the notes give none): two cores' worth of request handling across the
            // cell, and requests up to twice the largest message.
            request_time_percent: 200,
            max_request_bytes: 16 * MIB,
        };
        match kind {
            ClusterKind::Basic => basic,
            // Standard has Basic's documented figures; ours: twice the mutation rate.
            ClusterKind::Standard => PlanLimits {
                partition_mutations_per_5min: 500,
                ..basic
            },
            // Bandwidth, partitions and connections are documented; the rest is ours
            // (Standard's figures, a higher mutation rate).
            ClusterKind::Enterprise => PlanLimits {
                ingress_bytes_per_sec: 600 * MB,
                egress_bytes_per_sec: 1_800 * MB,
                max_partitions: 30_000,
                max_connections: 45_000,
                partition_mutations_per_5min: 1_000,
                request_time_percent: 800,
                ..basic
            },
            // Per CKU. The notes say only "scales in CKUs"; these are Confluent's published
            // per-CKU guidelines as we know them, and are overridable like every figure.
            ClusterKind::Dedicated => PlanLimits {
                ingress_bytes_per_sec: 60 * MB,
                egress_bytes_per_sec: 180 * MB,
                max_partitions: 4_500,
                max_connections: 18_000,
                connection_attempts_per_sec: 500,
                requests_per_sec: 15_000,
                max_message_bytes: 20 * MIB,
                partition_mutations_per_5min: 5_000,
                request_time_percent: 200,
                max_request_bytes: 64 * MIB,
            },
        }
    }

    /// A Dedicated cluster's limits for `cku` CKUs: throughput, partitions, connections and
    /// request rates scale with CKUs; message size and partition mutations are per cluster.
    pub fn for_cku(self, cku: u32) -> PlanLimits {
        let n = cku.max(1);
        PlanLimits {
            ingress_bytes_per_sec: self.ingress_bytes_per_sec.saturating_mul(u64::from(n)),
            egress_bytes_per_sec: self.egress_bytes_per_sec.saturating_mul(u64::from(n)),
            max_partitions: self.max_partitions.saturating_mul(n),
            max_connections: self.max_connections.saturating_mul(n),
            connection_attempts_per_sec: self.connection_attempts_per_sec.saturating_mul(n),
            requests_per_sec: self.requests_per_sec.saturating_mul(n),
            request_time_percent: self.request_time_percent.saturating_mul(n),
            ..self
        }
    }

    pub fn to_proto(self) -> ClusterLimits {
        ClusterLimits {
            ingress_bytes_per_sec: self.ingress_bytes_per_sec,
            egress_bytes_per_sec: self.egress_bytes_per_sec,
            max_partitions: self.max_partitions,
            max_connections: self.max_connections,
            connection_attempts_per_sec: self.connection_attempts_per_sec,
            requests_per_sec: self.requests_per_sec,
            max_message_bytes: self.max_message_bytes,
            partition_mutations_per_5min: self.partition_mutations_per_5min,
            request_time_percent: self.request_time_percent,
            max_request_bytes: self.max_request_bytes,
        }
    }

    /// Sets one field by its proto name.
    fn set(&mut self, field: &str, value: u64) -> Result<()> {
        let small = || {
            u32::try_from(value).map_err(|_| {
                Error::InvalidArgument(format!(
                    "{field}={value} is too large; at most {}",
                    u32::MAX
                ))
            })
        };
        match field {
            "ingress_bytes_per_sec" => self.ingress_bytes_per_sec = value,
            "egress_bytes_per_sec" => self.egress_bytes_per_sec = value,
            "max_partitions" => self.max_partitions = small()?,
            "max_connections" => self.max_connections = small()?,
            "connection_attempts_per_sec" => self.connection_attempts_per_sec = small()?,
            "requests_per_sec" => self.requests_per_sec = small()?,
            "max_message_bytes" => self.max_message_bytes = small()?,
            "partition_mutations_per_5min" => self.partition_mutations_per_5min = small()?,
            "request_time_percent" => self.request_time_percent = small()?,
            "max_request_bytes" => self.max_request_bytes = small()?,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown plan limit {field:?}; use one of {}",
                    LIMIT_FIELDS.join(", ")
                )))
            }
        }
        Ok(())
    }
}

/// The limit names accepted in overrides (those of proto `ClusterLimits`).
pub const LIMIT_FIELDS: [&str; 10] = [
    "ingress_bytes_per_sec",
    "egress_bytes_per_sec",
    "max_partitions",
    "max_connections",
    "connection_attempts_per_sec",
    "requests_per_sec",
    "max_message_bytes",
    "partition_mutations_per_5min",
    "request_time_percent",
    "max_request_bytes",
];

/// The configured limits of every kind: the defaults with any overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plans {
    limits: [PlanLimits; 4],
}

impl Default for Plans {
    fn default() -> Self {
        Plans {
            limits: ClusterKind::ALL.map(PlanLimits::default_for),
        }
    }
}

impl Plans {
    pub fn get(&self, kind: ClusterKind) -> PlanLimits {
        self.limits[kind as usize]
    }

    /// Applies an override written `KIND.FIELD=VALUE`, e.g. `Basic.max_partitions=100`
    /// (Dedicated values are per CKU).
    pub fn apply_override(&mut self, spec: &str) -> Result<()> {
        let bad = || {
            Error::InvalidArgument(format!(
                "plan override {spec:?} must be KIND.FIELD=VALUE, e.g. Basic.max_partitions=100"
            ))
        };
        let (key, value) = spec.split_once('=').ok_or_else(bad)?;
        let (kind, field) = key.trim().split_once('.').ok_or_else(bad)?;
        let kind: ClusterKind = kind.parse()?;
        let value: u64 = value.trim().parse().map_err(|_| bad())?;
        self.limits[kind as usize].set(field, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_figures() {
        let p = Plans::default();
        let basic = p.get(ClusterKind::Basic);
        assert_eq!(basic.ingress_bytes_per_sec, 250_000_000);
        assert_eq!(basic.egress_bytes_per_sec, 750_000_000);
        assert_eq!(basic.max_partitions, 4_096);
        assert_eq!(basic.max_connections, 1_000);
        assert_eq!(basic.connection_attempts_per_sec, 80);
        assert_eq!(basic.requests_per_sec, 15_000);
        assert_eq!(basic.max_message_bytes, 8 * 1024 * 1024);
        let ent = p.get(ClusterKind::Enterprise);
        assert_eq!(
            (ent.ingress_bytes_per_sec, ent.egress_bytes_per_sec),
            (600_000_000, 1_800_000_000)
        );
        assert_eq!((ent.max_partitions, ent.max_connections), (30_000, 45_000));
        for kind in ClusterKind::ALL {
            let m = p.get(kind).partition_mutations_per_5min;
            assert!((250..=5_000).contains(&m), "{kind}: {m}");
        }
    }

    #[test]
    fn dedicated_scales_with_cku() {
        let per = Plans::default().get(ClusterKind::Dedicated);
        let two = per.for_cku(2);
        assert_eq!(two.ingress_bytes_per_sec, 2 * per.ingress_bytes_per_sec);
        assert_eq!(two.max_partitions, 2 * per.max_partitions);
        assert_eq!(two.max_message_bytes, per.max_message_bytes);
        assert_eq!(
            two.partition_mutations_per_5min,
            per.partition_mutations_per_5min
        );
        assert_eq!(two.request_time_percent, 2 * per.request_time_percent);
        assert_eq!(two.max_request_bytes, per.max_request_bytes);
        let proto = two.to_proto();
        assert_eq!(proto.max_connections, two.max_connections);
        assert_eq!(proto.request_time_percent, two.request_time_percent);
        assert_eq!(proto.max_request_bytes, two.max_request_bytes);
    }

    #[test]
    fn overrides() {
        let mut p = Plans::default();
        p.apply_override("Basic.max_partitions=100").unwrap();
        assert_eq!(p.get(ClusterKind::Basic).max_partitions, 100);
        assert_eq!(p.get(ClusterKind::Standard).max_partitions, 4_096);
        p.apply_override("Dedicated.ingress_bytes_per_sec = 99")
            .unwrap();
        assert_eq!(p.get(ClusterKind::Dedicated).ingress_bytes_per_sec, 99);
        for bad in [
            "Basic.max_partitions",
            "max_partitions=1",
            "Tiny.max_partitions=1",
            "Basic.partitions=1",
            "Basic.max_partitions=-1",
            "Basic.max_partitions=99999999999",
        ] {
            assert!(p.apply_override(bad).is_err(), "{bad}");
        }
    }
}
