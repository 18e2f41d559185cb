//! The workload spec: what a run does, read from a small YAML file (OpenMessaging-Benchmark spirit) and/or
//! command-line overrides, validated before any client is created.
//!
//! Owns: the [`Workload`] and [`Tenant`] types, YAML parsing with unknown fields rejected, tenant
//! credentials taken from the environment, `--tenant` flag parsing, and the derived per-producer rates and
//! topic names. Nothing here talks to the network.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

/// Smallest record: the first 8 bytes carry the producer's send timestamp for end-to-end latency.
pub const MIN_RECORD_SIZE: usize = 8;
/// Largest record we generate (librdkafka's default `message.max.bytes` is 1 MB).
pub const MAX_RECORD_SIZE: usize = 1_000_000;
/// Bounds on client counts, so a typo cannot spawn thousands of threads.
pub const MAX_CLIENTS_PER_TENANT: u32 = 64;
pub const MAX_TENANTS: usize = 256;
pub const MAX_TOPICS: u32 = 1024;
/// Longest run we accept (a day); loops are bounded by it.
pub const MAX_DURATION_S: u64 = 86_400;

/// A whole run. Field names are the YAML keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Free-form name, echoed in results and plot legends.
    pub name: String,
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Topic names are `{topic_prefix}-{tenant}-{i}`.
    pub topic_prefix: String,
    /// Topics per tenant.
    pub topics: u32,
    pub partitions_per_topic: i32,
    /// Replication factor used when the tool creates missing topics.
    pub replication_factor: i32,
    /// Create missing topics with the AdminClient (CreateTopics). Turn off when topics are provisioned
    /// elsewhere (a control plane) or the broker has no CreateTopics.
    pub create_topics: bool,
    /// Producers per tenant (each a librdkafka client with its own poll thread).
    pub producers: u32,
    /// Consumers per tenant, all in one consumer group per tenant and run.
    pub consumers: u32,
    /// Payload size in bytes (>= 8).
    pub record_size: usize,
    /// Target publish rate per tenant in msgs/s, 0 = as fast as possible. A tenant's own `rate` wins.
    pub rate: u64,
    /// -1 (all), 0 or 1.
    pub acks: i32,
    /// none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// Measured time in seconds, after warm-up.
    pub duration_s: u64,
    /// Seconds of load before measuring starts; excluded from the results.
    pub warmup_s: u64,
    /// After producers stop, consumers keep reading at most this long to drain the backlog.
    pub drain_s: u64,
    /// librdkafka `linger.ms`.
    pub linger_ms: u32,
    /// librdkafka `batch.size` in bytes.
    pub batch_size: u32,
    /// librdkafka `queue.buffering.max.kbytes`: bounds each producer's in-flight bytes.
    pub max_buffer_kbytes: u32,
    /// Extra librdkafka properties for every client (e.g. `socket.nagle.disable: "true"`).
    pub client_config: BTreeMap<String, String>,
    /// Tenants; empty means one anonymous tenant over PLAINTEXT.
    pub tenants: Vec<Tenant>,
}

/// One tenant: its own clients, credentials and optionally its own rate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Tenant {
    pub name: String,
    /// SASL/PLAIN username; with a password it switches the tenant's clients to SASL_PLAINTEXT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Never echoed into results (see [`Workload::redacted`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Read the username from this environment variable when `username` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    /// Read the password from this environment variable when `password` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// msgs/s for this tenant; overrides the workload `rate`. 0 = max.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "adhoc".into(),
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic_prefix: "loadtest".into(),
            topics: 1,
            partitions_per_topic: 8,
            replication_factor: 1,
            create_topics: true,
            producers: 1,
            consumers: 1,
            record_size: 1024,
            rate: 0,
            acks: 1,
            compression: "none".into(),
            duration_s: 60,
            warmup_s: 5,
            drain_s: 5,
            linger_ms: 5,
            batch_size: 1_000_000,
            max_buffer_kbytes: 65_536,
            client_config: BTreeMap::new(),
            tenants: Vec::new(),
        }
    }
}

/// Credentials resolved for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Tenant {
    /// Username and password, from the spec or the named environment variables; `None` means PLAINTEXT.
    /// A username without a password (or the reverse) is an error rather than a silent PLAINTEXT run.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        let user = resolve(&self.username, &self.username_env)?;
        let pass = resolve(&self.password, &self.password_env)?;
        match (user, pass) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
            _ => bail!(
                "tenant {:?}: give both a SASL username and password (or neither for PLAINTEXT)",
                self.name
            ),
        }
    }
}

fn resolve(value: &Option<String>, env: &Option<String>) -> Result<Option<String>> {
    if let Some(v) = value {
        return Ok(Some(v.clone()));
    }
    match env {
        None => Ok(None),
        Some(var) => match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                bail!("environment variable {var} is not set (named by a tenant's *_env field)")
            }
        },
    }
}

/// Parses `NAME[:USER:PASS[:RATE]]` from `--tenant`.
pub fn parse_tenant_flag(s: &str) -> Result<Tenant> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut t = Tenant {
        name: parts[0].to_string(),
        ..Tenant::default()
    };
    match parts.len() {
        1 => {}
        3 | 4 => {
            t.username = Some(parts[1].to_string());
            t.password = Some(parts[2].to_string());
            if let Some(r) = parts.get(3) {
                t.rate = Some(
                    r.parse()
                        .with_context(|| format!("--tenant {s:?}: bad rate {r:?}"))?,
                );
            }
        }
        _ => bail!("--tenant {s:?}: expected NAME or NAME:USER:PASS or NAME:USER:PASS:RATE"),
    }
    Ok(t)
}

impl Workload {
    /// Parses YAML text; unknown keys are rejected so a misspelt setting is not silently ignored.
    pub fn from_yaml(text: &str) -> Result<Workload> {
        let w: Workload = serde_yaml::from_str(text).context("parsing workload YAML")?;
        Ok(w)
    }

    pub fn from_file(path: &Path) -> Result<Workload> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Workload::from_yaml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Tenants to run: the configured list, or one tenant named `default` without credentials.
    pub fn effective_tenants(&self) -> Vec<Tenant> {
        if self.tenants.is_empty() {
            vec![Tenant {
                name: "default".into(),
                ..Tenant::default()
            }]
        } else {
            self.tenants.clone()
        }
    }

    /// Topic names for one tenant.
    pub fn topic_names(&self, tenant: &str) -> Vec<String> {
        (0..self.topics)
            .map(|i| format!("{}-{}-{}", self.topic_prefix, tenant, i))
            .collect()
    }

    /// Target msgs/s for a tenant (0 = unlimited).
    pub fn tenant_rate(&self, t: &Tenant) -> u64 {
        t.rate.unwrap_or(self.rate)
    }

    /// Target msgs/s for each of a tenant's producers: the tenant rate split evenly (0 = unlimited).
    pub fn producer_rate(&self, t: &Tenant) -> f64 {
        let rate = self.tenant_rate(t);
        if rate == 0 || self.producers == 0 {
            0.0
        } else {
            rate as f64 / self.producers as f64
        }
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_s)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_s)
    }

    /// Checks every bound; call before creating clients.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.bootstrap_servers.trim().is_empty(),
            "bootstrap_servers is empty"
        );
        ensure!(
            (MIN_RECORD_SIZE..=MAX_RECORD_SIZE).contains(&self.record_size),
            "record_size {} outside {MIN_RECORD_SIZE}..={MAX_RECORD_SIZE} (the first 8 bytes carry the send timestamp)",
            self.record_size
        );
        ensure!(
            (1..=MAX_TOPICS).contains(&self.topics),
            "topics must be 1..={MAX_TOPICS}"
        );
        ensure!(
            (1..=10_000).contains(&self.partitions_per_topic),
            "partitions_per_topic must be 1..=10000"
        );
        ensure!(
            self.replication_factor >= 1,
            "replication_factor must be >= 1"
        );
        ensure!(
            self.producers <= MAX_CLIENTS_PER_TENANT && self.consumers <= MAX_CLIENTS_PER_TENANT,
            "producers and consumers per tenant must be <= {MAX_CLIENTS_PER_TENANT}"
        );
        ensure!(self.producers >= 1, "need at least one producer per tenant");
        ensure!(matches!(self.acks, -1..=1), "acks must be -1, 0 or 1");
        ensure!(
            matches!(
                self.compression.as_str(),
                "none" | "gzip" | "snappy" | "lz4" | "zstd"
            ),
            "compression must be none, gzip, snappy, lz4 or zstd (got {:?})",
            self.compression
        );
        ensure!(
            self.duration_s >= 1 && self.duration_s <= MAX_DURATION_S,
            "duration_s must be 1..={MAX_DURATION_S}"
        );
        ensure!(self.warmup_s <= MAX_DURATION_S, "warmup_s too large");
        ensure!(self.drain_s <= 600, "drain_s must be <= 600");
        ensure!(
            self.max_buffer_kbytes >= 1,
            "max_buffer_kbytes must be >= 1"
        );
        let tenants = self.effective_tenants();
        ensure!(
            tenants.len() <= MAX_TENANTS,
            "at most {MAX_TENANTS} tenants"
        );
        let mut seen = std::collections::BTreeSet::new();
        for t in &tenants {
            ensure!(
                !t.name.is_empty()
                    && t.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
                "tenant name {:?} must be non-empty [A-Za-z0-9._-] (it becomes part of topic names)",
                t.name
            );
            ensure!(
                seen.insert(t.name.clone()),
                "tenant {:?} listed twice",
                t.name
            );
            t.credentials()?;
        }
        Ok(())
    }

    /// A copy safe to write into result files: passwords removed.
    pub fn redacted(&self) -> Workload {
        let mut w = self.clone();
        for t in &mut w.tenants {
            if t.password.is_some() {
                t.password = Some("<redacted>".into());
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Workload::default().validate().unwrap();
    }

    #[test]
    fn parses_yaml_with_tenants() {
        let w = Workload::from_yaml(
            r#"
name: t
bootstrap_servers: "127.0.0.1:19092"
partitions_per_topic: 4
record_size: 100
rate: 1000
acks: -1
compression: zstd
duration_s: 3
warmup_s: 1
client_config:
  socket.nagle.disable: "true"
tenants:
  - name: a
    username: ua
    password: pa
    rate: 5000
  - name: b
"#,
        )
        .unwrap();
        w.validate().unwrap();
        assert_eq!(w.partitions_per_topic, 4);
        assert_eq!(w.acks, -1);
        assert_eq!(w.client_config["socket.nagle.disable"], "true");
        assert_eq!(w.tenant_rate(&w.tenants[0]), 5000);
        assert_eq!(w.tenant_rate(&w.tenants[1]), 1000);
        assert_eq!(
            w.tenants[0].credentials().unwrap(),
            Some(Credentials {
                username: "ua".into(),
                password: "pa".into()
            })
        );
        assert_eq!(w.tenants[1].credentials().unwrap(), None);
        // Unset keys keep their defaults.
        assert_eq!(w.linger_ms, Workload::default().linger_ms);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(Workload::from_yaml("recrod_size: 10").is_err());
        let bad = |f: fn(&mut Workload)| {
            let mut w = Workload::default();
            f(&mut w);
            w.validate().is_err()
        };
        assert!(bad(|w| w.record_size = 7));
        assert!(bad(|w| w.acks = 2));
        assert!(bad(|w| w.compression = "brotli".into()));
        assert!(bad(|w| w.producers = 1000));
        assert!(bad(|w| w.duration_s = 0));
        assert!(bad(|w| w.tenants = vec![parse_tenant_flag("a b").unwrap()]));
        assert!(bad(|w| w.tenants = vec![
            parse_tenant_flag("a").unwrap(),
            parse_tenant_flag("a").unwrap()
        ]));
        assert!(bad(|w| w.tenants = vec![Tenant {
            name: "a".into(),
            username: Some("u".into()),
            ..Tenant::default()
        }]));
    }

    #[test]
    fn tenant_flag_and_env_credentials() {
        let t = parse_tenant_flag("acme:u:p:2500").unwrap();
        assert_eq!(t.rate, Some(2500));
        assert_eq!(t.credentials().unwrap().unwrap().username, "u");
        assert!(parse_tenant_flag("acme:u").is_err());
        assert!(parse_tenant_flag("acme:u:p:fast").is_err());

        std::env::set_var("LT_TEST_USER_X", "envuser");
        std::env::set_var("LT_TEST_PASS_X", "envpass");
        let t = Tenant {
            name: "x".into(),
            username_env: Some("LT_TEST_USER_X".into()),
            password_env: Some("LT_TEST_PASS_X".into()),
            ..Tenant::default()
        };
        assert_eq!(t.credentials().unwrap().unwrap().password, "envpass");
        let missing = Tenant {
            name: "y".into(),
            username_env: Some("LT_TEST_DEFINITELY_UNSET".into()),
            password_env: Some("LT_TEST_DEFINITELY_UNSET".into()),
            ..Tenant::default()
        };
        assert!(missing.credentials().is_err());
    }

    #[test]
    fn shipped_scenarios_parse_and_validate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let w = Workload::from_file(&path).unwrap();
            for t in &w.tenants {
                for var in [&t.username_env, &t.password_env].into_iter().flatten() {
                    std::env::set_var(var, "from-env");
                }
            }
            w.validate()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            names.push(w.name.clone());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "cell-acksall",
                "failover",
                "fixed-rate-latency",
                "many-tenants",
                "max-throughput",
                "noisy-neighbour",
                "quota-cell"
            ]
        );
        let fixed = Workload::from_file(&dir.join("fixed-rate-latency.yaml")).unwrap();
        let mb_s = fixed.rate as f64 * fixed.record_size as f64 / 1e6;
        assert!((mb_s - 50.0).abs() < 0.01, "{mb_s}");
        assert_eq!(fixed.acks, -1);
    }

    #[test]
    fn derived_values() {
        let mut w = Workload {
            producers: 4,
            rate: 1000,
            topics: 2,
            ..Workload::default()
        };
        assert_eq!(w.producer_rate(&w.effective_tenants()[0]), 250.0);
        assert_eq!(w.topic_names("t"), vec!["loadtest-t-0", "loadtest-t-1"]);
        w.rate = 0;
        assert_eq!(w.producer_rate(&w.effective_tenants()[0]), 0.0);
        w.tenants = vec![parse_tenant_flag("a:u:secret").unwrap()];
        let r = w.redacted();
        assert_eq!(r.tenants[0].password.as_deref(), Some("<redacted>"));
    }
}
