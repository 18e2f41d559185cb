//! The `loadtest` command line: `loadtest run` drives a workload against a broker and writes a JSON
//! result; `loadtest plot` turns result files into PNG charts. Flags override the YAML workload.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use loadtest::workload::{parse_tenant_flag, Workload};

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "OpenMessaging-Benchmark-style load generator for Kafka-compatible brokers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Produce and consume for a fixed time, report rates, backlog and latency percentiles.
    Run(Box<RunArgs>),
    /// Draw latency-over-time, latency CDF and per-tenant throughput PNGs from result files.
    Plot {
        /// One or more result files written by `loadtest run --out`.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        #[arg(long, default_value = "plots")]
        out_dir: PathBuf,
    },
    /// Create the workload's topics for many tenants (each with its own credentials), a bounded
    /// number at a time, with a progress line: e.g. 1,000 logical clusters before a many-tenants run.
    CreateTopics(CreateTopicsArgs),
    /// Measure the machine: loopback TCP throughput, sequential write with and without fsync in
    /// DIR, and fsync-round latency at 50 MB/s over 8 files.
    Limits {
        /// Directory on the disk the broker's data would use (probe files are removed after).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Seconds per probe.
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Where to write the JSON result.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The disk's acks=-1 latency floor: chunks written to FILES files at RATE, group-commit
    /// rounds back to back, each chunk's wait to the end of the first round covering it.
    CommitFloor {
        /// Directory on the disk the broker's data would use (probe files are removed after).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Files written side by side (partitions).
        #[arg(long, default_value_t = 8)]
        files: usize,
        /// Total write rate in MB/s (10^6 bytes).
        #[arg(long, default_value_t = 50.0)]
        rate_mb_s: f64,
        /// Where to write the JSON result.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
struct CreateTopicsArgs {
    /// Tenants, one per line: `NAME USER PASS` (SASL/PLAIN) or `NAME` (PLAINTEXT); `#` comments.
    #[arg(long)]
    tenants_file: PathBuf,
    #[arg(long, env = "LOADTEST_BOOTSTRAP_SERVERS")]
    bootstrap_servers: String,
    /// Topic names are `{topic_prefix}-{tenant}-{i}`, as `loadtest run` makes them.
    #[arg(long, default_value = "loadtest")]
    topic_prefix: String,
    /// Topics per tenant.
    #[arg(long, default_value_t = 1)]
    topics: u32,
    #[arg(long, default_value_t = 2)]
    partitions: i32,
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// Tenants worked on at once (at most 64).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Extra librdkafka property KEY=VALUE; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    client_config: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    /// Workload YAML (see loadtest/scenarios/); flags below override its values.
    #[arg(long, short = 'w')]
    workload: Option<PathBuf>,
    /// Where to write the JSON result.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the resolved workload (passwords redacted) and exit.
    #[arg(long)]
    print_workload: bool,
    /// No per-second progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Ignore --bootstrap-servers and run against librdkafka's in-process mock cluster (one broker):
    /// a self-test of the tool and its ceiling on this machine. No SASL on the mock.
    #[arg(long)]
    mock_cluster: bool,
    #[arg(long, env = "LOADTEST_BOOTSTRAP_SERVERS")]
    bootstrap_servers: Option<String>,
    #[arg(long)]
    topic_prefix: Option<String>,
    /// Topics per tenant.
    #[arg(long)]
    topics: Option<u32>,
    #[arg(long)]
    partitions: Option<i32>,
    #[arg(long)]
    replication_factor: Option<i32>,
    /// Do not create missing topics (they are provisioned elsewhere).
    #[arg(long)]
    no_create_topics: bool,
    /// Producers per tenant.
    #[arg(long)]
    producers: Option<u32>,
    /// Consumers per tenant (one consumer group per tenant and run).
    #[arg(long)]
    consumers: Option<u32>,
    /// Payload bytes (>= 8: the first 8 carry the send timestamp).
    #[arg(long)]
    record_size: Option<usize>,
    /// Target msgs/s per tenant, 0 = max.
    #[arg(long)]
    rate: Option<u64>,
    /// -1, 0 or 1.
    #[arg(long, allow_hyphen_values = true)]
    acks: Option<i32>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long)]
    compression: Option<String>,
    /// Measured seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Warm-up seconds, excluded from results.
    #[arg(long)]
    warmup: Option<u64>,
    /// Max seconds consumers keep draining after producers stop.
    #[arg(long)]
    drain: Option<u64>,
    #[arg(long)]
    linger_ms: Option<u32>,
    #[arg(long)]
    batch_size: Option<u32>,
    /// Tenant as NAME, NAME:USER:PASS or NAME:USER:PASS:RATE; repeat for several. Replaces the YAML list.
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Extra librdkafka property KEY=VALUE for every client; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    client_config: Vec<String>,
    /// Run COMMAND with `sh -c` SECS seconds into the measured phase (e.g. kill a broker); its
    /// time, exit status and output go into the result's `events`. Repeatable.
    #[arg(long = "exec-at", value_name = "SECS:COMMAND")]
    exec_at: Vec<String>,
    /// Number every record (payload bytes 8..16; record_size >= 16) and, after the run, read every
    /// partition back from the beginning: acknowledged records missing, duplicates, in the result.
    #[arg(long)]
    verify: bool,
}

impl RunArgs {
    fn workload(&self) -> Result<Workload> {
        let mut w = match &self.workload {
            Some(p) => Workload::from_file(p)?,
            None => Workload::default(),
        };
        macro_rules! set {
            ($($field:ident = $flag:ident),* $(,)?) => {
                $(if let Some(v) = &self.$flag { w.$field = v.clone(); })*
            };
        }
        set!(
            bootstrap_servers = bootstrap_servers,
            topic_prefix = topic_prefix,
            topics = topics,
            partitions_per_topic = partitions,
            replication_factor = replication_factor,
            producers = producers,
            consumers = consumers,
            record_size = record_size,
            rate = rate,
            acks = acks,
            compression = compression,
            duration_s = duration,
            warmup_s = warmup,
            drain_s = drain,
            linger_ms = linger_ms,
            batch_size = batch_size,
        );
        if self.no_create_topics {
            w.create_topics = false;
        }
        if !self.tenants.is_empty() {
            w.tenants = self
                .tenants
                .iter()
                .map(|s| parse_tenant_flag(s))
                .collect::<Result<_>>()?;
        }
        for kv in &self.client_config {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("-X {kv:?}: expected KEY=VALUE"))?;
            w.client_config.insert(k.to_string(), v.to_string());
        }
        w.validate()?;
        Ok(w)
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,loadtest=info")),
        )
        .init();
    match Cli::parse().cmd {
        Cmd::Run(args) => {
            let w = args.workload()?;
            if args.print_workload {
                print!("{}", serde_yaml::to_string(&w.redacted())?);
                return Ok(());
            }
            // Kept alive for the whole run when used.
            let mut w = w;
            let _mock = if args.mock_cluster {
                Some(loadtest::mock::start(&mut w)?)
            } else {
                None
            };
            let opts = loadtest::run::RunOptions {
                progress: !args.quiet,
                exec_at: args
                    .exec_at
                    .iter()
                    .map(|s| loadtest::run::parse_exec_at(s))
                    .collect::<Result<_>>()?,
                verify: args.verify,
            };
            let result = loadtest::run::run_with(w, &opts)?;
            if let Some(out) = &args.out {
                result.write(out)?;
                eprintln!("result written to {}", out.display());
            }
            print!("{}", result.summary());
        }
        Cmd::CreateTopics(a) => {
            let text = std::fs::read_to_string(&a.tenants_file)
                .with_context(|| format!("reading {}", a.tenants_file.display()))?;
            let tenants = loadtest::provision::parse_tenants(&text)?;
            let mut w = Workload {
                bootstrap_servers: a.bootstrap_servers,
                topic_prefix: a.topic_prefix,
                topics: a.topics,
                partitions_per_topic: a.partitions,
                replication_factor: a.replication_factor,
                ..Workload::default()
            };
            for kv in &a.client_config {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("-X {kv:?}: expected KEY=VALUE"))?;
                w.client_config.insert(k.to_string(), v.to_string());
            }
            let p = loadtest::provision::create_topics(&w, tenants, a.concurrency, true)?;
            println!(
                "{} tenants: topics created for {}, already there for {}, in {:.1} s ({:.1} tenants/s)",
                p.tenants,
                p.created,
                p.tenants - p.created,
                p.secs,
                p.tenants as f64 / p.secs.max(1e-9)
            );
        }
        Cmd::Limits { dir, secs, out } => {
            let limits = loadtest::limits::measure(&dir, secs)?;
            print!("{}", limits.summary());
            if let Some(out) = out {
                std::fs::write(&out, serde_json::to_vec_pretty(&limits)?)
                    .with_context(|| format!("write {}", out.display()))?;
            }
        }
        Cmd::CommitFloor {
            dir,
            secs,
            files,
            rate_mb_s,
            out,
        } => {
            let floor = loadtest::commit_floor::measure(
                &dir,
                files,
                rate_mb_s * loadtest::stats::MB,
                Duration::from_secs(secs.max(1)),
            )?;
            print!("{}", floor.summary());
            if let Some(out) = out {
                std::fs::write(&out, serde_json::to_vec_pretty(&floor)?)
                    .with_context(|| format!("write {}", out.display()))?;
            }
        }
        Cmd::Plot { results, out_dir } => {
            for p in loadtest::plot::plot_files(&results, &out_dir)? {
                println!("{}", p.display());
            }
        }
    }
    Ok(())
}
