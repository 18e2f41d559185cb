//! The per-process admin HTTP endpoint (`--metrics-listen ADDR`) of every long-running
//! subcommand (broker, controller, control plane):
//!
//! - `GET /metrics`: every metric recorded through the `metrics` facade, in Prometheus
//!   text format (the names are the contract in `docs/metrics.md`), plus the standard
//!   `process_*` series read from `/proc/self`;
//! - `GET /livez`: 200 while the process runs (the server is up before the role's state
//!   is opened, so a long log recovery is not mistaken for a hung process);
//! - `GET /readyz`: 200 when the role's [`Probe`] says it is ready, else 503 with a JSON
//!   reason (the probe is bounded by [`PROBE_TIMEOUT`]).
//!
//! The Prometheus recorder is installed only in a process that serves this endpoint
//! ([`bind`]); elsewhere the facade's macros are no-ops. The exporter has no listener of
//! its own: [`serve`] renders it on a pre-bound listener until a shutdown token, like
//! every other server in the project.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Readiness of a role: `Ok(())` when ready, else why not (shown in the 503 body).
pub type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Longest a readiness check may take before `/readyz` answers 503.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Histogram buckets (seconds) for every `*_seconds` histogram: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram buckets are drained into their distributions (the exporter leaves
/// this to its caller).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A bound admin listener and the installed recorder.
pub struct Admin {
    listener: TcpListener,
    handle: PrometheusHandle,
}

/// Binds `addr` (none: no admin endpoint, `Ok(None)`) and installs the Prometheus recorder
/// for this process, with `tributary_build_info{role, version}`.
pub async fn bind(addr: Option<SocketAddr>, role: &'static str) -> anyhow::Result<Option<Admin>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for --metrics-listen"))?;
    let handle = install_recorder()?;
    metrics::gauge!(
        "tributary_build_info",
        "role" => role,
        "version" => env!("CARGO_PKG_VERSION"),
    )
    .set(1.0);
    Ok(Some(Admin { listener, handle }))
}

/// Installs the recorder once per process (later calls return the same handle) and
/// describes every metric the crates record.
fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::Mutex<Option<PrometheusHandle>> = std::sync::Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = installed.as_ref() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)?
        .install_recorder()
        .context("cannot install the Prometheus recorder")?;
    metrics::describe_gauge!(
        "tributary_build_info",
        "Always 1; labels: the process role and the version of the binary."
    );
    cells::metrics::describe();
    control_plane::metrics::describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

impl Admin {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves in a task until `shutdown`; failures are logged (metrics must not stop the
    /// process).
    pub fn spawn(self, ready: Probe, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let addr = self.local_addr().ok();
        tracing::info!(addr = ?addr, "admin HTTP (/metrics, /livez, /readyz) listening");
        tokio::spawn(async move {
            if let Err(e) = serve(self.listener, self.handle, ready, shutdown).await {
                tracing::error!(error = %e, "admin HTTP server failed");
            }
        })
    }
}

/// Starts `admin` (if any) with `ready`; returns the task to await after `shutdown`.
pub fn spawn(
    admin: Option<Admin>,
    ready: Probe,
    shutdown: &CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    admin.map(|a| a.spawn(ready, shutdown.clone()))
}

#[derive(Clone)]
struct AdminState {
    handle: PrometheusHandle,
    ready: Probe,
}

/// The admin routes; anything else is 404.
fn router(handle: PrometheusHandle, ready: Probe) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/livez", get(|| async { Json(json!({"status": "live"})) }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { handle, ready })
}

/// Serves the admin routes on an already-bound listener until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    ready: Probe,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
                }
            }
        })
    };
    let served = axum::serve(listener, router(handle, ready))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    upkeep.abort();
    served
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    let mut text = state.handle.render();
    text.push_str(&process_metrics());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let checked = tokio::time::timeout(PROBE_TIMEOUT, (state.ready)()).await;
    match checked {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Ok(Err(reason)) => not_ready(reason),
        Err(_) => not_ready(format!(
            "the readiness check did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

fn not_ready(reason: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not ready", "reason": reason})),
    )
        .into_response()
}

/// A probe from a synchronous check.
pub fn probe(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Probe {
    let check = Arc::new(check);
    Arc::new(move || {
        let r = check();
        Box::pin(async move { r })
    })
}

/// The Prometheus client libraries' standard process series, from `/proc/self` (Linux);
/// empty where it cannot be read.
fn process_metrics() -> String {
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
    {
        if ticks > 0.0 {
            put(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (stat.utime + stat.stime) as f64 / ticks,
            );
            if let Some(boot) = boot_time() {
                put(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since unix epoch in seconds.",
                    boot + stat.starttime as f64 / ticks,
                );
            }
        }
        put(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            stat.vsize as f64,
        );
        put(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            stat.rss as f64 * page,
        );
        put(
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            stat.threads as f64,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        put(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            dir.count() as f64,
        );
    }
    out
}

struct Stat {
    utime: u64,
    stime: u64,
    threads: u64,
    starttime: u64,
    vsize: u64,
    rss: u64,
}

/// Fields of `/proc/self/stat` (proc(5)); the command name may contain spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_stat(s: &str) -> Option<Stat> {
    let rest = s.rsplit_once(')')?.1;
    // rest starts at field 3 (state); field n is at index n - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let at = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: at(14)?,
        stime: at(15)?,
        threads: at(20)?,
        starttime: at(22)?,
        vsize: at(23)?,
        rss: at(24)?,
    })
}

/// The system boot time (`btime` in `/proc/stat`), seconds since the epoch.
fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    1234 987654 321 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.utime, s.stime), (250, 50));
        assert_eq!(s.threads, 7);
        assert_eq!(s.starttime, 1234);
        assert_eq!((s.vsize, s.rss), (987654, 321));
        assert!(parse_stat("garbage").is_none());
    }

    #[tokio::test]
    async fn serves_metrics_liveness_and_readiness() {
        let handle = install_recorder().unwrap();
        metrics::counter!("tributary_test_admin_total").increment(3);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let probe = {
            let ready = ready.clone();
            probe(move || {
                if ready.load(Ordering::Acquire) {
                    Ok(())
                } else {
                    Err("still opening".into())
                }
            })
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, handle, probe, shutdown.clone()));
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("http://{addr}{path}")).send();

        let r = get("/metrics").await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("tributary_test_admin_total 3"), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));

        assert_eq!(get("/livez").await.unwrap().status(), 200);
        let r = get("/readyz").await.unwrap();
        assert_eq!(r.status(), 503);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "still opening");
        ready.store(true, Ordering::Release);
        assert_eq!(get("/readyz").await.unwrap().status(), 200);
        assert_eq!(get("/nope").await.unwrap().status(), 404);

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }
}
