//! `tributary dev` as a process: it starts a cell (controller + 3 brokers) and the control
//! plane, writes endpoints.json, serves rdkafka and kcat at the printed bootstrap, restarts
//! a broker that is SIGKILLed (which rejoins the ISR), serves sign-up and login over REST,
//! exits 0 on SIGTERM with every child gone, and resumes with all records after a restart.
//! Its local CA is in endpoints.json and the banner, every SASL_SSL listener serves a
//! certificate it signed, and a restart keeps it.
//! Also: a taken port and a piece that cannot start are clear errors, not hangs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{
    admin, assigned_consumer, consume_n, create_topic_rf, idempotent_producer, kcat, payload,
};
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Offset;
use serde_json::Value;

const RECORDS: usize = 1000;
const TOPIC: &str = "orders";

/// Ports one stack reserves from its base (`tributary dev --help`).
const PORT_SPAN: u16 = 20;

/// A base port whose PORT_SPAN ports all bind right now (retrying over random bases).
fn free_port_base() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    let mut x = seed | 1;
    for _ in 0..200 {
        // xorshift: a different candidate each round
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Below the kernel's ephemeral range (32768+), so clients do not take them later.
        let base = 20_000 + (x % 600) as u16 * PORT_SPAN;
        let held: Vec<_> = (0..PORT_SPAN)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(PORT_SPAN) {
            return base;
        }
    }
    panic!("no free range of {PORT_SPAN} ports found");
}

/// `tributary dev` as a child process; its output goes to a file printed on failure.
struct Dev {
    child: Option<Child>,
    data_dir: PathBuf,
    out: PathBuf,
    base: u16,
}

impl Dev {
    fn start(data_dir: &Path, base: u16) -> Dev {
        Dev::start_with(data_dir, base, &[])
    }

    fn start_with(data_dir: &Path, base: u16, extra: &[&str]) -> Dev {
        let out = data_dir.with_extension(format!("out-{}", now_ms()));
        let log = std::fs::File::create(&out).expect("output file");
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("dev")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--port-base", &base.to_string()])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn tributary dev");
        Dev {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            out,
            base,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn endpoints_path(&self) -> PathBuf {
        self.data_dir.join("endpoints.json")
    }

    /// Waits (bounded) for endpoints.json and returns it.
    fn wait_endpoints(&mut self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(text) = std::fs::read_to_string(self.endpoints_path()) {
                return serde_json::from_str(&text).expect("endpoints.json is JSON");
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tributary dev exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "no endpoints.json after 180 s:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn endpoints(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.endpoints_path()).unwrap()).unwrap()
    }

    /// SIGTERM and wait (bounded) for the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id() as i32, 15);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tributary dev did not exit within 120 s of SIGTERM:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for the process to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tributary dev did not exit within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tributary dev output (port base {}) ---\n{}",
                self.base,
                self.output()
            );
            for name in [
                "controller-1",
                "broker-1",
                "broker-2",
                "broker-3",
                "control-plane",
            ] {
                let log = self.data_dir.join("logs").join(format!("{name}.log"));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "--- {name} log tail ---\n{}",
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
        }
        if let Some(mut child) = self.child.take() {
            // The pieces get SIGTERM from the kernel when the supervisor dies.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

fn signal(pid: i32, sig: i32) -> i32 {
    unsafe { kill(pid, sig) }
}

fn alive(pid: i64) -> bool {
    // Zombies still answer kill(0); /proc says whether the process is really running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn bootstrap(endpoints: &Value) -> String {
    endpoints["cells"][0]["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kafka"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn broker_pid(endpoints: &Value, id: i64) -> i64 {
    endpoints["cells"][0]["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"].as_i64() == Some(id))
        .and_then(|b| b["pid"].as_i64())
        .expect("broker pid")
}

fn all_pids(endpoints: &Value) -> Vec<i64> {
    endpoints["processes"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["pid"].as_i64().expect("pid"))
        .collect()
}

fn producer(bootstrap: &str) -> FutureProducer {
    idempotent_producer(bootstrap, &[("linger.ms", "5")])
}

fn read_back(bootstrap: &str) -> BTreeSet<String> {
    let consumer: BaseConsumer = assigned_consumer(bootstrap, TOPIC, 3, Offset::Beginning);
    let mut seen = BTreeSet::new();
    let n = consume_n(&consumer, RECORDS, Duration::from_secs(60), |m| {
        seen.insert(String::from_utf8_lossy(payload(m)).to_string());
    });
    assert_eq!(n, RECORDS, "read {n} of {RECORDS} records back");
    seen
}

/// Every partition of TOPIC has 3 replicas in its ISR and a leader.
fn isr_full(p: &FutureProducer) -> bool {
    let Ok(md) = p
        .client()
        .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
    else {
        return false;
    };
    let Some(t) = md.topics().first() else {
        return false;
    };
    t.partitions().len() == 3
        && t.partitions()
            .iter()
            .all(|p| p.isr().len() == 3 && p.leader() >= 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dev_stack_serves_clients_restarts_a_killed_broker_and_resumes_after_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let base = free_port_base();
    let mut dev = Dev::start(&data_dir, base);
    let endpoints = dev.wait_endpoints();
    let bootstrap = bootstrap(&endpoints);
    assert_eq!(
        endpoints["cells"][0]["brokers"][0]["kafka"],
        format!("127.0.0.1:{base}"),
        "broker 1 listens on the base port"
    );
    assert!(endpoints["metrics"].is_array());
    assert_eq!(endpoints["cells"][0]["id"], "cell-1");
    // The local CA: in endpoints.json and the banner, trusted by a TLS client of every
    // broker's SASL_SSL listener (BASE+15..17), and the same after a restart (below).
    let ca_path = endpoints["cells"][0]["ssl_ca_location"]
        .as_str()
        .expect("ssl_ca_location")
        .to_string();
    let ca = std::fs::read_to_string(&ca_path).expect("the CA file");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let tls: Vec<String> = (15..18)
        .map(|i| format!("127.0.0.1:{}", base + i))
        .collect();
    assert_eq!(endpoints["cells"][0]["sasl_ssl_bootstrap"], tls.join(","));
    for addr in &tls {
        common::tls::handshake(addr, Path::new(&ca_path), "127.0.0.1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for("the banner to name the CA", Duration::from_secs(10), || {
        dev.output().contains(&ca_path)
    });
    let grpc = format!("127.0.0.1:{}", base + 13);
    assert_eq!(
        endpoints["grpc"],
        format!("http://{grpc}"),
        "the control plane's gRPC"
    );
    std::net::TcpStream::connect(&grpc).expect("the gRPC API listens");
    let out = dev.output();
    assert!(out.contains(&bootstrap), "the bootstrap is printed:\n{out}");
    assert!(
        out.contains("waiting for 3 brokers to register and become ACTIVE"),
        "start-up says what it waits for:\n{out}"
    );

    // A replicated topic, 1,000 acks=all idempotent records, read back.
    create_topic_rf(&bootstrap, TOPIC, 3, 3, &[]).await;
    let p = producer(&bootstrap);
    let sends: Vec<_> = (0..RECORDS)
        .map(|i| {
            let v = format!("record-{i}");
            let p = p.clone();
            tokio::spawn(async move {
                p.send(
                    FutureRecord::to(TOPIC).key(&v).payload(&v),
                    Duration::from_secs(60),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e.to_string())
            })
        })
        .collect();
    for s in sends {
        s.await.unwrap().expect("acked");
    }
    let want: BTreeSet<String> = (0..RECORDS).map(|i| format!("record-{i}")).collect();
    assert_eq!(read_back(&bootstrap), want);
    wait_for(
        "ISR of 3 on every partition",
        Duration::from_secs(60),
        || isr_full(&p),
    );

    // SIGKILL broker 2: the supervisor restarts it (a new pid in endpoints.json) and it
    // rejoins every ISR.
    let old = broker_pid(&endpoints, 2);
    assert!(alive(old));
    assert_eq!(signal(old as i32, 9), 0);
    let killed = Instant::now();
    wait_for(
        "the supervisor to restart broker 2",
        Duration::from_secs(60),
        || {
            let pid = broker_pid(&dev.endpoints(), 2);
            pid != old && alive(pid)
        },
    );
    let new = broker_pid(&dev.endpoints(), 2);
    // The new process serves clients on broker 2's port: a client that knows only that
    // address gets the cell's metadata (its first answer can only come from there).
    let alone = admin(&format!("127.0.0.1:{}", base + 1));
    wait_for(
        "broker 2 to answer metadata",
        Duration::from_secs(30),
        || match alone
            .inner()
            .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
        {
            Ok(md) => md.brokers().len() == 3 && md.topics()[0].partitions().len() == 3,
            Err(e) => {
                eprintln!("metadata from broker 2: {e}");
                false
            }
        },
    );
    wait_for(
        "broker 2 to rejoin every ISR",
        Duration::from_secs(90),
        || isr_full(&p),
    );
    eprintln!(
        "broker 2 (pid {old}) SIGKILLed; restarted as pid {new}; ISR back to 3 after {:?}",
        killed.elapsed()
    );
    assert!(dev.output().contains("broker-2 was killed by signal 9"));

    // The REST API: sign up and log in.
    let rest = endpoints["rest"].as_str().unwrap().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = http
        .post(format!("{rest}/v1/signup"))
        .json(&serde_json::json!({
            "email": "ada@example.com",
            "password": "correct horse",
            "organization_name": "Analytical"
        }))
        .send()
        .await
        .expect("signup");
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = http
        .post(format!("{rest}/v1/login"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    let session: Value = r.json().await.unwrap();
    let token = session["token"].as_str().expect("a token");
    assert!(!token.is_empty());

    // Every admin endpoint: ready, live, and its metrics (including what just happened:
    // broker 2's ISR places lost and regained, the sign-up).
    check_admin_endpoints(&endpoints, &http).await;

    // kcat: three brokers in the metadata, a produce/consume round trip.
    let listing = kcat(&["-b", &bootstrap, "-L"], None);
    assert!(listing.contains(" 3 brokers:"), "{listing}");
    for (i, port) in (base..base + 3).enumerate() {
        let line = format!("broker {} at 127.0.0.1:{port}", i + 1);
        assert!(listing.contains(&line), "{line} missing from:\n{listing}");
    }
    kcat(
        &[
            "-P",
            "-b",
            &bootstrap,
            "-t",
            "kcat-demo",
            "-K:",
            "-X",
            "acks=all",
        ],
        Some("a:1\nb:2\nc:3\n"),
    );
    let consumed = kcat(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "kcat-demo",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k=%s\n",
        ],
        None,
    );
    let got: BTreeSet<&str> = consumed.lines().collect();
    assert_eq!(got, BTreeSet::from(["a=1", "b=2", "c=3"]), "{consumed}");
    drop(p);

    // SIGTERM: exit 0, every child gone, endpoints.json removed.
    let pids = all_pids(&dev.endpoints());
    assert_eq!(pids.len(), 5, "controller, 3 brokers, control plane");
    let stopping = Instant::now();
    let status = dev.terminate();
    assert!(status.success(), "exit status {status}:\n{}", dev.output());
    eprintln!("tributary dev stopped in {:?}", stopping.elapsed());
    for pid in &pids {
        assert!(
            !alive(*pid),
            "child {pid} still running after the supervisor exited"
        );
    }
    assert!(!dev.endpoints_path().exists());
    let out = dev.output();
    let stopped_at = |name: &str| {
        out.lines()
            .position(|l| l.contains("stopped (") && l.contains(&format!("piece={name} ")))
            .unwrap_or_else(|| panic!("no stop line for {name}:\n{out}"))
    };
    assert!(
        stopped_at("control-plane") < stopped_at("broker-1")
            && stopped_at("broker-3") < stopped_at("controller-1"),
        "stopped in order control plane, brokers, controller:\n{out}"
    );

    // Again on the same data dir: the records, the kcat topic and the user are there.
    let mut dev = Dev::start(&data_dir, base);
    let endpoints = dev.wait_endpoints();
    let bootstrap = self::bootstrap(&endpoints);
    assert_eq!(read_back(&bootstrap), want);
    assert_eq!(
        std::fs::read_to_string(&ca_path).unwrap(),
        ca,
        "the CA clients trust is kept"
    );
    let consumed = kcat(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "kcat-demo",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k=%s\n",
        ],
        None,
    );
    assert_eq!(consumed.lines().count(), 3, "{consumed}");
    let r = http
        .post(format!("{rest}/v1/login"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse"}))
        .send()
        .await
        .expect("login after restart");
    assert_eq!(r.status().as_u16(), 200);
    let status = dev.terminate();
    assert!(status.success(), "exit status {status}:\n{}", dev.output());
}

/// The value of the first series in a Prometheus text `page` that starts with `series`
/// (a name with its labels, as rendered).
fn series_value(page: &str, series: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum over `pages` of every `name{...}` series whose labels include all of `labels`.
fn sum_series(pages: &[String], name: &str, labels: &[&str]) -> f64 {
    pages
        .iter()
        .flat_map(|p| p.lines())
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (set, value) = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            labels
                .iter()
                .all(|want| set.split(',').any(|kv| kv == *want))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Each URL in endpoints.json's `metrics` (brokers 1-3, controller, control plane) answers
/// 200 with the series its piece records, `/livez` answers 200 and `/readyz` turns 200.
async fn check_admin_endpoints(endpoints: &Value, http: &reqwest::Client) {
    let urls: Vec<String> = endpoints["metrics"]
        .as_array()
        .expect("metrics[] in endpoints.json")
        .iter()
        .map(|u| u.as_str().expect("a URL").to_string())
        .collect();
    assert_eq!(
        urls.len(),
        5,
        "brokers 1-3, controller, control plane: {urls:?}"
    );
    let mut pages = Vec::new();
    for url in &urls {
        let base = url.strip_suffix("/metrics").expect("a /metrics URL");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http.get(format!("{base}/readyz")).send().await;
            match r {
                Ok(r) if r.status() == 200 => break,
                other => {
                    let why = match other {
                        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => e.to_string(),
                    };
                    assert!(Instant::now() < deadline, "{base}/readyz never 200: {why}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let live = http.get(format!("{base}/livez")).send().await.unwrap();
        assert_eq!(live.status(), 200, "{base}/livez");
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("process_resident_memory_bytes ") && page.contains("# TYPE "),
            "{url}:\n{page}"
        );
        pages.push(page);
    }
    for (i, role) in ["broker", "broker", "broker", "controller", "control-plane"]
        .iter()
        .enumerate()
    {
        let series = format!("tributary_build_info{{role=\"{role}\",version=");
        assert!(pages[i].contains(&series), "{}: no {series}", urls[i]);
    }
    // The brokers' per-tenant series moved with what the test produced and consumed as
    // `lkc-local` (summed over brokers: broker 2 restarted and started over).
    let brokers = &pages[..3];
    for (name, labels) in [
        (
            "tributary_broker_received_bytes_total",
            &["tenant=\"lkc-local\"", "topic=\"orders\""][..],
        ),
        (
            "tributary_broker_sent_bytes_total",
            &["tenant=\"lkc-local\"", "topic=\"orders\""][..],
        ),
        (
            "tributary_broker_requests_total",
            &["tenant=\"lkc-local\"", "api=\"Produce\""][..],
        ),
        ("tributary_broker_partitions", &["tenant=\"lkc-local\""][..]),
        // Leaders proposed the shrink and expand around broker 2's restart.
        ("tributary_broker_isr_changes_total", &[][..]),
        (
            "tributary_broker_request_latency_seconds_count",
            &["api=\"Fetch\""][..],
        ),
    ] {
        let total = sum_series(brokers, name, labels);
        assert!(total > 0.0, "{name}{labels:?} is {total} over the brokers");
    }
    // The controller's gauges are recomputed every second: poll (bounded) until they
    // show what the test did (3 brokers active again after broker 2's restart).
    let want = [
        ("tributary_controller_active", 1.0),
        ("tributary_controller_raft_leader_id", 1.0),
        ("tributary_controller_raft_term", 1.0),
        ("tributary_controller_raft_last_applied_index", 1.0),
        ("tributary_controller_brokers{state=\"active\"}", 3.0),
        ("tributary_controller_partitions", 3.0),
        ("tributary_controller_metadata_records_committed_total", 1.0),
        (
            "tributary_controller_isr_changes_total{direction=\"shrink\"}",
            1.0,
        ),
        (
            "tributary_controller_isr_changes_total{direction=\"expand\"}",
            1.0,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut controller = pages[3].clone();
    loop {
        let missing: Vec<String> = want
            .iter()
            .filter_map(|(series, at_least)| {
                let v = series_value(&controller, series);
                (!v.is_some_and(|v| v >= *at_least))
                    .then(|| format!("{series} = {v:?}, want >= {at_least}"))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}:\n{}\n{controller}",
            urls[3],
            missing.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        controller = http
            .get(&urls[3])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(
        series_value(&controller, "tributary_controller_offline_partitions"),
        Some(0.0),
        "{controller}"
    );
    let control_plane = &pages[4];
    assert_eq!(
        series_value(
            control_plane,
            "tributary_control_plane_http_requests_total{api=\"rest\",route=\"/v1/signup\",method=\"POST\",status=\"201\"}"
        ),
        Some(1.0),
        "{control_plane}"
    );
    assert!(
        control_plane.contains("tributary_control_plane_http_request_duration_seconds_bucket{"),
        "latency is a histogram:\n{control_plane}"
    );
    assert!(
        series_value(
            control_plane,
            "tributary_control_plane_clusters{phase=\"PROVISIONED\"}"
        )
        .is_some(),
        "{control_plane}"
    );
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let base = free_port_base();
    // Someone else holds broker 2's port.
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    let mut dev = Dev::start(&tmp.path().join("data"), base);
    let status = dev.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let out = dev.output();
    assert!(
        out.contains(&format!("port {} for broker 2 is not free", base + 1))
            && out.contains("--port-base"),
        "{out}"
    );
}

#[test]
fn a_piece_that_cannot_start_is_a_clear_error_naming_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    // The controller's data dir is a file: it cannot open its Raft log.
    std::fs::write(data_dir.join("controller-1"), b"not a directory").unwrap();
    let mut dev = Dev::start(&data_dir, free_port_base());
    let status = dev.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    let out = dev.output();
    let log = data_dir.join("logs").join("controller-1.log");
    assert!(
        out.contains("controller-1 exited with status 1")
            && out.contains(&log.display().to_string()),
        "{out}"
    );
    assert!(!data_dir.join("endpoints.json").exists());
}

/// Run one printed shell line (bounded) and return its stdout; panics on failure.
fn run_printed(line: &str) -> String {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{line}` did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait for sh");
    assert!(
        out.status.success(),
        "`{line}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The banner's kcat lines, as printed.
fn printed_kcat_lines(output: &str) -> (String, String) {
    let find = |needle: &str| {
        output
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` line in:\n{output}"))
            .trim()
            .to_string()
    };
    (find("| kcat -P "), find("kcat -C "))
}

#[test]
fn demo_prints_kcat_commands_that_work_as_printed_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let base = free_port_base();
    let mut dev = Dev::start_with(&data, base, &["--demo"]);
    dev.wait_endpoints();
    wait_for("the demo tenant", Duration::from_secs(120), || {
        dev.endpoints().get("demo").is_some()
    });
    let (produce, consume) = printed_kcat_lines(&dev.output());
    assert!(produce.contains("sasl.username="), "{produce}");
    run_printed(&produce);
    let read = run_printed(&consume);
    assert!(read.contains("hello, tributary"), "consumed: {read:?}");
    let key = dev.endpoints()["demo"]["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(dev.terminate().success());

    // Restarted with --demo: the same tenant and key (demo.json), and its data is still there.
    let mut dev = Dev::start_with(&data, base, &["--demo"]);
    dev.wait_endpoints();
    wait_for("the demo tenant again", Duration::from_secs(120), || {
        dev.endpoints().get("demo").is_some()
    });
    assert_eq!(
        dev.endpoints()["demo"]["api_key"].as_str(),
        Some(key.as_str())
    );
    let (_, consume_again) = printed_kcat_lines(&dev.output());
    assert_eq!(consume_again, consume);
    let read = run_printed(&consume_again);
    assert!(read.contains("hello, tributary"), "after restart: {read:?}");
    assert!(dev.terminate().success());
}
