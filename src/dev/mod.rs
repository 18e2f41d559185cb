//! `tributary dev`: the whole service on one machine, each piece its own OS process
//! (this executable again, with a subcommand), supervised:
//!
//! 1. one controller voter of cell `cell-1` (`tributary controller`),
//! 2. three brokers of that cell in zones a, b, c (`tributary broker --controllers`), with
//!    SASL_SSL listeners whose certificate comes from a local CA made at first start
//!    ([`tls`], kept in `DATA_DIR/tls/`),
//! 3. the `lkc-local` logical cluster their PLAINTEXT listeners serve (created idempotently),
//! 4. the control plane on SQLite (`tributary control-plane --cell cell-1=...`).
//!
//! It waits for each step, writes `DATA_DIR/endpoints.json` atomically, restarts a piece
//! that exits (bounded backoff), and on SIGINT/SIGTERM stops the control plane, the brokers
//! (controlled shutdown) and the controller, in that order, each bounded.

mod demo;
mod status;
mod supervisor;
mod tls;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cells::client::{ClientOptions, ControllerClient};
use clap::Args;
use proto::cell::v1::{BrokerState, CreateLogicalClusterRequest, GetCellLoadRequest};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::info;

use status::Status;
use supervisor::{Event, Handle, Piece, Shared};

/// The cell the dev stack runs.
const CELL_ID: &str = "cell-1";
/// The logical cluster the brokers' unauthenticated listeners serve.
const TENANT: &str = "lkc-local";
/// Brokers and their zones.
const BROKERS: [(i32, &str); 3] = [(1, "zone-a"), (2, "zone-b"), (3, "zone-c")];
/// Ports a stack reserves from `--port-base` (the unused ones are kept for later pieces).
const PORT_SPAN: u16 = 20;
/// Offsets of the admin HTTP listeners (`--metrics-listen`: /metrics, /livez, /readyz):
/// brokers 1..3, the controller, the control plane.
const METRICS_PORTS: [(&str, u16); 5] = [
    ("broker-1", 6),
    ("broker-2", 7),
    ("broker-3", 8),
    ("controller-1", 9),
    ("control-plane", 14),
];

const PORT_HELP: &str = "\
Ports, from --port-base (BASE, default 9092), all on 127.0.0.1:
  BASE+0 .. BASE+2   Kafka listeners of brokers 1, 2, 3 (9092, 9093, 9094)
  BASE+3             controller gRPC: the cell API (9095)
  BASE+4             control plane REST API (9096)
  BASE+5             control plane operator API (9097)
  BASE+6 .. BASE+8   metrics of brokers 1, 2, 3: /metrics, /livez, /readyz (9098 .. 9100)
  BASE+9             metrics of the controller (9101)
  BASE+10 .. BASE+12 SASL_PLAINTEXT listeners of brokers 1, 2, 3 (9102, 9103, 9104)
  BASE+13            control plane gRPC API (9105)
  BASE+14            metrics of the control plane (9106)
  BASE+15 .. BASE+17 SASL_SSL listeners of brokers 1, 2, 3 (9107, 9108, 9109)
  BASE+18 .. BASE+19 reserved
Two stacks side by side need bases at least 20 apart, e.g. --port-base 19092.

Files under DATA_DIR: controller-1/, broker-{1,2,3}/, control-plane/ (SQLite),
logs/<piece>.log (each process's output), tls/ (the local CA: ca.pem is what SASL_SSL
clients trust; made at first start, then reused), endpoints.json (written once everything
is ready, removed on a clean exit).";

#[derive(Args)]
#[command(after_long_help = PORT_HELP)]
pub struct DevArgs {
    /// Directory for every piece's data, logs and endpoints.json.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// First port of the stack; broker 1 listens on it (see the port layout below).
    #[arg(long, default_value_t = 9092)]
    port_base: u16,
    /// How long to wait for each start-up step before giving up, in seconds.
    #[arg(long, default_value_t = 120)]
    start_timeout_secs: u64,
    /// Also sign up a demo user, create a cluster and an API key through the REST API (kept
    /// in DATA_DIR/demo.json and reused), and print kcat commands that use them.
    #[arg(long)]
    demo: bool,
    /// Override one plan limit of the control plane, `KIND.FIELD=VALUE` (e.g.
    /// `Standard.ingress_bytes_per_sec=10000000`), passed on as `control-plane --plan-limit`;
    /// repeatable. Clusters created through the REST API get their kind's limits.
    #[arg(long = "plan-limit", value_name = "KIND.FIELD=VALUE")]
    plan_limits: Vec<String>,
}

/// Where each piece listens.
struct Layout {
    brokers: Vec<SocketAddr>,
    /// The brokers' SASL_PLAINTEXT listeners (tenants with API keys).
    sasl: Vec<SocketAddr>,
    /// The brokers' SASL_SSL listeners (the same over TLS).
    sasl_ssl: Vec<SocketAddr>,
    controller: SocketAddr,
    rest: SocketAddr,
    operator: SocketAddr,
    /// The control plane's gRPC face.
    grpc: SocketAddr,
    /// Each piece's admin HTTP listener.
    metrics: BTreeMap<&'static str, SocketAddr>,
}

impl Layout {
    fn new(base: u16) -> anyhow::Result<Layout> {
        if base.checked_add(PORT_SPAN - 1).is_none() || base == 0 {
            bail!(
                "--port-base {base}: the stack needs ports {base}..{base}+{}; pick a base between 1 and {}",
                PORT_SPAN - 1,
                u16::MAX - (PORT_SPAN - 1)
            );
        }
        let at = |offset: u16| SocketAddr::from(([127, 0, 0, 1], base + offset));
        Ok(Layout {
            brokers: (0..BROKERS.len() as u16).map(at).collect(),
            sasl: (0..BROKERS.len() as u16).map(|i| at(10 + i)).collect(),
            sasl_ssl: (0..BROKERS.len() as u16).map(|i| at(15 + i)).collect(),
            controller: at(3),
            rest: at(4),
            operator: at(5),
            grpc: at(13),
            metrics: METRICS_PORTS
                .iter()
                .map(|(piece, offset)| (*piece, at(*offset)))
                .collect(),
        })
    }

    /// `--metrics-listen ADDR` for `piece`.
    fn metrics_args(&self, piece: &str) -> Vec<String> {
        vec!["--metrics-listen".into(), self.metrics[piece].to_string()]
    }

    /// The Prometheus URLs, in piece order (brokers, controller, control plane).
    fn metrics_urls(&self) -> Vec<String> {
        METRICS_PORTS
            .iter()
            .map(|(piece, _)| format!("http://{}/metrics", self.metrics[piece]))
            .collect()
    }

    /// Every port with what it is for.
    fn ports(&self) -> Vec<(String, SocketAddr)> {
        let mut v: Vec<(String, SocketAddr)> = BROKERS
            .iter()
            .zip(&self.brokers)
            .map(|((id, _), a)| (format!("broker {id}"), *a))
            .collect();
        v.extend(
            BROKERS
                .iter()
                .zip(&self.sasl)
                .map(|((id, _), a)| (format!("broker {id} (SASL)"), *a)),
        );
        v.extend(
            BROKERS
                .iter()
                .zip(&self.sasl_ssl)
                .map(|((id, _), a)| (format!("broker {id} (SASL_SSL)"), *a)),
        );
        v.push(("the controller".into(), self.controller));
        v.push(("the control plane".into(), self.rest));
        v.push(("the operator API".into(), self.operator));
        v.push(("the control plane's gRPC API".into(), self.grpc));
        for (piece, _) in METRICS_PORTS {
            v.push((format!("the metrics of {piece}"), self.metrics[piece]));
        }
        v
    }
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let layout = Layout::new(args.port_base)?;
    // A bad override is an error here, not a control plane that cannot start.
    let mut plans = control_plane::plans::Plans::default();
    for spec in &args.plan_limits {
        plans
            .apply_override(spec)
            .with_context(|| format!("--plan-limit {spec}"))?;
    }
    let data_dir = absolute(&args.data_dir)?;
    let logs = data_dir.join("logs");
    let run_dir = data_dir.join("run");
    for dir in [&data_dir, &logs, &run_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let _lock = lock_data_dir(&data_dir)?;
    let certs = tls::ensure(&data_dir.join(tls::DIR))?;
    let endpoints_path = data_dir.join("endpoints.json");
    match std::fs::remove_file(&endpoints_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context("cannot remove the old endpoints.json"),
    }
    for (what, addr) in layout.ports() {
        if let Err(e) = TcpListener::bind(addr) {
            bail!(
                "port {} for {what} is not free ({e}): is another tributary dev running? \
                 Stop it, or move this stack with --port-base (it uses {}..{})",
                addr.port(),
                args.port_base,
                args.port_base + PORT_SPAN - 1
            );
        }
    }

    let (events_tx, events) = mpsc::unbounded_channel();
    let shared = Shared::new(events_tx);
    let mut stack = Stack {
        data_dir: data_dir.clone(),
        logs,
        run_dir,
        layout,
        certs,
        shared,
        events,
        handles: Vec::new(),
        status: Status::new(),
        step_timeout: Duration::from_secs(args.start_timeout_secs.max(1)),
        plan_limits: args.plan_limits.clone(),
    };
    // One signal listener for the whole run: a Ctrl-C while starting stops what started.
    let signal = crate::wait_for_signal();
    tokio::pin!(signal);
    let started = tokio::select! {
        r = stack.start() => r,
        _ = &mut signal => Err(anyhow::anyhow!("interrupted while starting")),
    };
    let mut endpoints = match started {
        Ok(endpoints) => endpoints,
        Err(e) => {
            stack.status.done();
            eprintln!("tributary dev: {e:#}");
            eprintln!("stopping what was started...");
            stack.stop_all().await;
            std::process::exit(1);
        }
    };
    stack.shared.set_supervising();
    write_endpoints(&endpoints_path, &endpoints)?;
    print_banner(&endpoints, &endpoints_path, &data_dir);
    let mut interrupted = false;
    if args.demo {
        let rest = endpoints["rest"].as_str().unwrap_or_default().to_string();
        let made = tokio::select! {
            r = demo::ensure(&rest, &data_dir) => Some(r),
            _ = &mut signal => None,
        };
        match made {
            None => interrupted = true,
            Some(Ok(d)) => {
                for line in demo::banner(&d, &data_dir) {
                    println!("{line}");
                }
                endpoints["demo"] = json!({
                    "cluster": d.cluster,
                    "bootstrap": d.bootstrap,
                    "security_protocol": d.security_protocol,
                    "api_key": d.api_key,
                });
                write_endpoints(&endpoints_path, &endpoints)?;
            }
            Some(Err(e)) => {
                eprintln!("tributary dev: --demo failed: {e:#} (the stack keeps running)")
            }
        }
    }

    // Until a signal: keep endpoints.json's pids current as pieces restart.
    loop {
        if interrupted {
            break;
        }
        tokio::select! {
            _ = &mut signal => break,
            ev = stack.events.recv() => match ev {
                Some(Event::Started { name, pid }) => {
                    if endpoints["processes"][&name]["pid"].as_u64() != Some(u64::from(pid)) {
                        info!(piece = %name, pid, "restarted; endpoints.json updated");
                        set_pid(&mut endpoints, &name, pid);
                        write_endpoints(&endpoints_path, &endpoints)?;
                    }
                }
                Some(Event::StartFailed { .. }) => {}
                None => break,
            },
        }
    }
    eprintln!("tributary dev: stopping (control plane, brokers, controller)...");
    stack.stop_all().await;
    let _ = std::fs::remove_file(&endpoints_path);
    eprintln!(
        "tributary dev: stopped; data kept in {}",
        data_dir.display()
    );
    Ok(())
}

/// The pieces being supervised and the start-up sequence.
struct Stack {
    data_dir: PathBuf,
    logs: PathBuf,
    run_dir: PathBuf,
    layout: Layout,
    certs: tls::DevCerts,
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<Event>,
    handles: Vec<Handle>,
    status: Status,
    step_timeout: Duration,
    /// `--plan-limit` overrides for the control plane.
    plan_limits: Vec<String>,
}

impl Stack {
    fn piece(&self, name: &str, args: Vec<String>, stop_timeout: Duration) -> Piece {
        let port_file = self.run_dir.join(format!("{name}.port"));
        let mut argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        argv.push("--data-dir".into());
        argv.push(self.data_dir.join(name).into_os_string());
        argv.push("--port-file".into());
        argv.push(port_file.clone().into_os_string());
        Piece {
            name: name.to_string(),
            args: argv,
            port_file,
            log: self.logs.join(format!("{name}.log")),
            stop_timeout,
        }
    }

    fn log_of(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Starts everything in order and returns the endpoints document.
    async fn start(&mut self) -> anyhow::Result<Value> {
        let controller = self.layout.controller.to_string();
        let name = "controller-1";
        self.status
            .say(&format!("starting {name} (cell {CELL_ID}) on {controller}"));
        let piece = self.piece(
            name,
            vec![
                "controller".into(),
                "--node-id".into(),
                "1".into(),
                "--listen".into(),
                controller.clone(),
                "--voters".into(),
                format!("1={controller}"),
                "--cell-id".into(),
                CELL_ID.into(),
            ]
            .into_iter()
            .chain(self.layout.metrics_args(name))
            .collect(),
            Duration::from_secs(15),
        );
        self.handles
            .push(supervisor::start(piece, self.shared.clone()));
        self.wait_port_file(name).await?;

        let client = ControllerClient::new(
            std::slice::from_ref(&controller),
            ClientOptions {
                call_timeout: Duration::from_secs(2),
                max_attempts: 1,
                ..Default::default()
            },
        )?;
        self.wait_until(
            "the controller to elect itself leader (GetCellLoad)",
            &["controller-1"],
            || {
                let client = client.clone();
                async move {
                    client
                        .get_cell_load(GetCellLoadRequest {})
                        .await
                        .ok()
                        .map(|_| ())
                }
            },
        )
        .await?;

        for (i, (id, zone)) in BROKERS.iter().enumerate() {
            let name = format!("broker-{id}");
            let listen = self.layout.brokers[i].to_string();
            let sasl = self.layout.sasl[i].to_string();
            let sasl_ssl = self.layout.sasl_ssl[i].to_string();
            self.status
                .say(&format!("starting {name} ({zone}) on {listen}"));
            let piece = self.piece(
                &name,
                vec![
                    "broker".into(),
                    "--node-id".into(),
                    id.to_string(),
                    "--listen".into(),
                    listen,
                    "--sasl-listen".into(),
                    sasl,
                    "--sasl-ssl-listen".into(),
                    sasl_ssl,
                    "--tls-cert".into(),
                    self.certs.cert.display().to_string(),
                    "--tls-key".into(),
                    self.certs.key.display().to_string(),
                    "--controllers".into(),
                    controller.clone(),
                    "--zone".into(),
                    zone.to_string(),
                    "--tenant".into(),
                    TENANT.into(),
                ]
                .into_iter()
                .chain(self.layout.metrics_args(&name))
                .collect(),
                // Controlled shutdown is bounded at 10 s inside the broker.
                Duration::from_secs(30),
            );
            self.handles
                .push(supervisor::start(piece, self.shared.clone()));
        }
        for (id, _) in BROKERS {
            self.wait_port_file(&format!("broker-{id}")).await?;
        }
        let broker_names: Vec<String> = BROKERS
            .iter()
            .map(|(id, _)| format!("broker-{id}"))
            .collect();
        let names: Vec<&str> = broker_names.iter().map(String::as_str).collect();
        let want = BROKERS.len();
        self.wait_until(
            &format!("{want} brokers to register and become ACTIVE"),
            &names,
            || {
                let client = client.clone();
                async move {
                    let load = client.get_cell_load(GetCellLoadRequest {}).await.ok()?;
                    let active = load
                        .brokers
                        .iter()
                        .filter(|b| b.state == BrokerState::Active as i32)
                        .count();
                    (active >= want).then_some(())
                }
            },
        )
        .await?;

        self.status
            .say(&format!("creating logical cluster {TENANT} in {CELL_ID}"));
        self.wait_until(
            &format!("the controller to create {TENANT}"),
            &["controller-1"],
            || {
                let client = client.clone();
                async move {
                    let r = client
                        .create_logical_cluster(CreateLogicalClusterRequest {
                            cluster_id: TENANT.into(),
                            organization_id: "org-dev".into(),
                            limits: None,
                        })
                        .await
                        .ok()?;
                    (r.error_code == 0).then_some(())
                }
            },
        )
        .await?;

        let rest = self.layout.rest;
        let name = "control-plane";
        self.status
            .say(&format!("starting the control plane on http://{rest}"));
        let piece = self.piece(
            name,
            vec![
                "control-plane".into(),
                "--listen".into(),
                rest.to_string(),
                "--public-url".into(),
                format!("http://{rest}"),
                "--cell".into(),
                format!("{CELL_ID}={controller}"),
                "--operator-listen".into(),
                self.layout.operator.to_string(),
                "--grpc-listen".into(),
                self.layout.grpc.to_string(),
            ]
            .into_iter()
            .chain(
                self.plan_limits
                    .iter()
                    .flat_map(|l| ["--plan-limit".to_string(), l.clone()]),
            )
            .chain(self.layout.metrics_args(name))
            .collect(),
            Duration::from_secs(15),
        );
        self.handles
            .push(supervisor::start(piece, self.shared.clone()));
        self.wait_port_file(name).await?;
        self.wait_until(
            "the control plane to answer HTTP",
            &["control-plane"],
            || async move { http_answers(rest).await.then_some(()) },
        )
        .await?;
        self.status.done();
        self.drain_events()?;
        Ok(self.endpoints())
    }

    /// Fails if a piece exited during start-up; records pids otherwise.
    fn drain_events(&mut self) -> anyhow::Result<()> {
        while let Ok(ev) = self.events.try_recv() {
            if let Event::StartFailed { name, why } = ev {
                bail!("{}", self.failure(&name, &why));
            }
        }
        Ok(())
    }

    fn failure(&self, name: &str, why: &str) -> String {
        let log = self.log_of(name);
        let tail = log_tail(&log, 8);
        format!(
            "{name} {why} while the stack was starting; read {}{}",
            log.display(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        )
    }

    async fn wait_port_file(&mut self, name: &str) -> anyhow::Result<()> {
        let path = self.run_dir.join(format!("{name}.port"));
        self.wait_until(&format!("{name} to listen"), &[name], || {
            let path = path.clone();
            async move {
                let s = std::fs::read_to_string(&path).ok()?;
                (!s.trim().is_empty()).then_some(())
            }
        })
        .await
    }

    /// Polls `check` until it succeeds, a piece fails, or the step times out (naming the
    /// logs of `pieces`).
    async fn wait_until<F, Fut>(
        &mut self,
        what: &str,
        pieces: &[&str],
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<()>>,
    {
        let start = Instant::now();
        loop {
            self.drain_events()?;
            self.status.waiting(what, start.elapsed());
            if check().await.is_some() {
                return Ok(());
            }
            if start.elapsed() >= self.step_timeout {
                let logs: Vec<String> = pieces
                    .iter()
                    .map(|p| self.log_of(p).display().to_string())
                    .collect();
                bail!(
                    "gave up after {}s waiting for {what}; read {}",
                    self.step_timeout.as_secs(),
                    logs.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn endpoints(&self) -> Value {
        let controller = self.layout.controller.to_string();
        let brokers: Vec<Value> = BROKERS
            .iter()
            .zip(self.layout.brokers.iter().zip(&self.layout.sasl))
            .zip(&self.layout.sasl_ssl)
            .map(|(((id, zone), (addr, sasl)), sasl_ssl)| {
                let name = format!("broker-{id}");
                json!({
                    "id": id,
                    "zone": zone,
                    "kafka": addr.to_string(),
                    "sasl": sasl.to_string(),
                    "sasl_ssl": sasl_ssl.to_string(),
                    "pid": self.shared.pid(&name),
                    "log": self.log_of(&name),
                })
            })
            .collect();
        let bootstrap: Vec<String> = self.layout.brokers.iter().map(|a| a.to_string()).collect();
        let sasl_bootstrap: Vec<String> = self.layout.sasl.iter().map(|a| a.to_string()).collect();
        let sasl_ssl_bootstrap: Vec<String> =
            self.layout.sasl_ssl.iter().map(|a| a.to_string()).collect();
        let processes: BTreeMap<&str, Value> = self
            .handles
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    json!({"pid": self.shared.pid(&h.name), "log": self.log_of(&h.name)}),
                )
            })
            .collect();
        json!({
            "rest": format!("http://{}", self.layout.rest),
            "operator": format!("http://{}", self.layout.operator),
            "grpc": format!("http://{}", self.layout.grpc),
            "cells": [{
                "id": CELL_ID,
                "controllers": [controller],
                "logical_cluster": TENANT,
                "bootstrap": bootstrap.join(","),
                "sasl_bootstrap": sasl_bootstrap.join(","),
                "sasl_ssl_bootstrap": sasl_ssl_bootstrap.join(","),
                "ssl_ca_location": self.certs.ca,
                "brokers": brokers,
            }],
            "metrics": self.layout.metrics_urls(),
            "supervisor_pid": std::process::id(),
            "processes": processes,
            "data_dir": self.data_dir,
        })
    }

    /// Control plane, then brokers (in parallel: each does a controlled shutdown), then
    /// the controller; each bounded by its piece's stop timeout.
    async fn stop_all(&mut self) {
        let handles = std::mem::take(&mut self.handles);
        let (mut cp, mut brokers, mut controllers) = (Vec::new(), Vec::new(), Vec::new());
        for h in handles {
            if h.name == "control-plane" {
                cp.push(h);
            } else if h.name.starts_with("broker-") {
                brokers.push(h);
            } else {
                controllers.push(h);
            }
        }
        for group in [cp, brokers, controllers] {
            for h in &group {
                h.cancel();
            }
            for h in group {
                h.join().await;
            }
        }
    }
}

/// True if something answers an HTTP request on `addr` (any status).
async fn http_answers(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.ok()?;
        buf.starts_with(b"HTTP/1.").then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

fn set_pid(endpoints: &mut Value, name: &str, pid: u32) {
    if let Some(p) = endpoints["processes"].get_mut(name) {
        p["pid"] = json!(pid);
    }
    if let Some(id) = name
        .strip_prefix("broker-")
        .and_then(|s| s.parse::<i64>().ok())
    {
        if let Some(brokers) = endpoints["cells"][0]["brokers"].as_array_mut() {
            for b in brokers {
                if b["id"].as_i64() == Some(id) {
                    b["pid"] = json!(pid);
                }
            }
        }
    }
}

fn write_endpoints(path: &Path, endpoints: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(endpoints)?;
    text.push(b'\n');
    data_plane::fsutil::write_atomic(path, &text)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_banner(endpoints: &Value, path: &Path, data_dir: &Path) {
    let cell = &endpoints["cells"][0];
    let bootstrap = cell["bootstrap"].as_str().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Tributary dev stack is up (data in {})",
        data_dir.display()
    );
    let _ = writeln!(
        out,
        "  Kafka bootstrap   {bootstrap}   (logical cluster {TENANT}, PLAINTEXT)"
    );
    let _ = writeln!(
        out,
        "  SASL bootstrap    {}   (SASL_PLAINTEXT, API key and secret of a cluster)",
        cell["sasl_bootstrap"].as_str().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  TLS bootstrap     {}   (SASL_SSL, the same key and secret)",
        cell["sasl_ssl_bootstrap"].as_str().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  CA certificate    {}   (ssl.ca.location for SASL_SSL clients)",
        cell["ssl_ca_location"].as_str().unwrap_or_default()
    );
    if let Some(brokers) = cell["brokers"].as_array() {
        for b in brokers {
            let _ = writeln!(
                out,
                "    broker {}  {}  {}  pid {}",
                b["id"],
                b["kafka"].as_str().unwrap_or_default(),
                b["zone"].as_str().unwrap_or_default(),
                b["pid"]
            );
        }
    }
    let _ = writeln!(
        out,
        "  REST API          {}",
        endpoints["rest"].as_str().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  gRPC API          {}",
        endpoints["grpc"].as_str().unwrap_or_default()
    );
    // Brokers 1-3, controller, control plane: the first address whole, then ports.
    let ports: Vec<&str> = endpoints["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|u| u.strip_prefix("http://")?.strip_suffix("/metrics"))
        .collect();
    if let [b1, b2, b3, controller, cp] = ports[..] {
        let _ = writeln!(
            out,
            "  metrics (HTTP)    {b1} {} {} brokers, {} controller, {} control plane \
             (/metrics, /livez, /readyz)",
            port_of(b2),
            port_of(b3),
            port_of(controller),
            port_of(cp)
        );
    }
    let _ = writeln!(
        out,
        "  cell API (gRPC)   {}",
        cell["controllers"][0].as_str().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  logs              {}",
        data_dir.join("logs").display()
    );
    let _ = writeln!(out, "  endpoints         {}", path.display());
    let _ = writeln!(out, "Try: kcat -b {bootstrap} -L");
    let _ = writeln!(
        out,
        "Ctrl-C stops everything; running it again resumes with all data."
    );
    let _ = out.flush();
}

/// `PORT` of `HOST:PORT`.
fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap_or(addr)
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `p` made absolute (without `.` components), so pieces and endpoints.json name real paths.
fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect())
}

/// An exclusive `flock` on `DATA_DIR/dev.lock`, held while the stack runs: two stacks on
/// one data dir would corrupt each other.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("dev.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock(2) on a descriptor we own for the call's duration.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "{} is in use by another tributary dev{}; stop it first or pass another --data-dir",
            dir.display(),
            if holder.trim().is_empty() {
                String::new()
            } else {
                format!(" (pid {})", holder.trim())
            }
        );
    }
    file.set_len(0)?;
    (&file).write_all(std::process::id().to_string().as_bytes())?;
    Ok(file)
}
