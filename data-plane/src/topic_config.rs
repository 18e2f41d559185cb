//! Topic configs: which ones exist, how they are validated, and how overrides plus broker
//! defaults become the [`LogConfig`] a partition obeys. Unknown or invalid configs are
//! rejected with INVALID_CONFIG and a message that says what is allowed.

use std::collections::BTreeMap;

use crate::config::{LogConfig, TimestampType};
use crate::error::{Error, Result};

/// One supported topic config.
pub struct ConfigDef {
    pub name: &'static str,
    pub doc: &'static str,
    kind: Kind,
    current: fn(&LogConfig) -> String,
}

enum Kind {
    Long { min: i64 },
    Enum(&'static [&'static str]),
}

pub const DEFS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        doc: "Only `delete` is supported: old segments are deleted by retention.",
        kind: Kind::Enum(&["delete"]),
        current: |_| "delete".to_string(),
    },
    ConfigDef {
        name: "retention.ms",
        doc: "How long to keep data, in ms; -1 keeps it forever.",
        kind: Kind::Long { min: -1 },
        current: |c| c.retention_ms.to_string(),
    },
    ConfigDef {
        name: "retention.bytes",
        doc: "Most bytes a partition keeps before deleting old segments; -1 for no limit.",
        kind: Kind::Long { min: -1 },
        current: |c| c.retention_bytes.to_string(),
    },
    ConfigDef {
        name: "segment.bytes",
        doc: "Size at which the active segment is rolled.",
        kind: Kind::Long { min: 1024 },
        current: |c| c.segment_bytes.to_string(),
    },
    ConfigDef {
        name: "segment.ms",
        doc: "Age at which the active segment is rolled, in ms.",
        kind: Kind::Long { min: 1 },
        current: |c| c.segment_ms.to_string(),
    },
    ConfigDef {
        name: "max.message.bytes",
        doc: "Largest record batch accepted, in bytes.",
        kind: Kind::Long { min: 0 },
        current: |c| c.max_message_bytes.to_string(),
    },
    ConfigDef {
        name: "min.insync.replicas",
        doc: "In-sync replicas an acks=all produce needs; fewer answers NOT_ENOUGH_REPLICAS.",
        kind: Kind::Long { min: 1 },
        current: |c| c.min_insync_replicas.to_string(),
    },
    ConfigDef {
        name: "message.timestamp.type",
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's time.",
        kind: Kind::Enum(&["CreateTime", "LogAppendTime"]),
        current: |c| match c.timestamp_type {
            TimestampType::CreateTime => "CreateTime".to_string(),
            TimestampType::LogAppendTime => "LogAppendTime".to_string(),
        },
    },
];

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    DEFS.iter().find(|d| d.name == name)
}

fn supported_names() -> String {
    DEFS.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}

/// Check one config name and value.
pub fn validate(name: &str, value: Option<&str>) -> Result<()> {
    let def = find(name).ok_or_else(|| {
        Error::InvalidConfig(format!(
            "unknown topic config `{name}`; supported: {}",
            supported_names()
        ))
    })?;
    let value = value.ok_or_else(|| Error::InvalidConfig(format!("`{name}` needs a value")))?;
    match def.kind {
        Kind::Long { min } => match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(v) => Err(Error::InvalidConfig(format!(
                "`{name}`={v} is below the minimum {min}"
            ))),
            Err(_) => Err(Error::InvalidConfig(format!(
                "`{name}` must be an integer, got `{value}`"
            ))),
        },
        Kind::Enum(allowed) => {
            // List-valued configs (cleanup.policy) arrive comma-separated.
            for item in value.split(',').map(str::trim) {
                if !allowed.contains(&item) {
                    return Err(Error::InvalidConfig(format!(
                        "`{name}`=`{value}` is not supported; allowed: {}",
                        allowed.join(", ")
                    )));
                }
            }
            Ok(())
        }
    }
}

/// Validate a whole set of overrides.
pub fn validate_all<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<()> {
    for (name, value) in configs {
        validate(name, value)?;
    }
    Ok(())
}

/// Broker defaults with the topic's (already validated) overrides applied.
pub fn log_config(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut c = defaults.clone();
    for (name, value) in overrides {
        let long = value.trim().parse::<i64>().ok();
        match (name.as_str(), long) {
            ("retention.ms", Some(v)) => c.retention_ms = v,
            ("retention.bytes", Some(v)) => c.retention_bytes = v,
            ("segment.bytes", Some(v)) => c.segment_bytes = v.max(1024) as u64,
            ("segment.ms", Some(v)) => c.segment_ms = v.max(1) as u64,
            ("max.message.bytes", Some(v)) => c.max_message_bytes = v.max(0) as u64,
            ("min.insync.replicas", Some(v)) => c.min_insync_replicas = v.clamp(1, 1024) as u32,
            ("message.timestamp.type", _) => {
                c.timestamp_type = if value == "LogAppendTime" {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                }
            }
            _ => {}
        }
    }
    c
}

/// One row of DescribeConfigs.
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub is_default: bool,
    pub doc: &'static str,
}

/// Every supported config with its effective value.
pub fn describe(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let effective = log_config(defaults, overrides);
    DEFS.iter()
        .map(|d| ConfigEntry {
            name: d.name,
            value: overrides
                .get(d.name)
                .cloned()
                .unwrap_or_else(|| (d.current)(&effective)),
            is_default: !overrides.contains_key(d.name),
            doc: d.doc,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names_and_values() {
        assert!(validate("retention.ms", Some("1000")).is_ok());
        assert!(validate("retention.ms", Some("-1")).is_ok());
        assert!(validate("retention.ms", Some("-2")).is_err());
        assert!(validate("retention.ms", Some("soon")).is_err());
        assert!(validate("cleanup.policy", Some("compact")).is_err());
        assert!(validate("message.timestamp.type", Some("LogAppendTime")).is_ok());
        let err = validate("no.such.config", Some("1")).unwrap_err();
        assert!(err.to_string().contains("supported:"), "{err}");
        assert_eq!(
            err.kafka_error(),
            kafka_protocol::ResponseError::InvalidConfig
        );
    }

    #[test]
    fn overrides_apply_and_describe_marks_defaults() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "4096".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let c = log_config(&LogConfig::default(), &o);
        assert_eq!(c.segment_bytes, 4096);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        let rows = describe(&LogConfig::default(), &o);
        let seg = rows.iter().find(|r| r.name == "segment.bytes").unwrap();
        assert_eq!((seg.value.as_str(), seg.is_default), ("4096", false));
        let ret = rows.iter().find(|r| r.name == "retention.ms").unwrap();
        assert!(ret.is_default);
    }
}
