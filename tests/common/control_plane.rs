//! `tributary control-plane` as a real OS process on port 0 (REST, operator and gRPC
//! listeners), over SQLite in a temp dir or a fresh PostgreSQL database, with the cells it
//! may place clusters into; plus the REST calls the tests need.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The environment variable with a PostgreSQL admin URL (as for the control-plane tests).
pub const PG_ENV: &str = "TRIBUTARY_TEST_POSTGRES_URL";

/// Where the control plane keeps its data.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    /// A PostgreSQL admin URL; each process gets a fresh database through it.
    Postgres(String),
}

impl Db {
    /// PostgreSQL from `TRIBUTARY_TEST_POSTGRES_URL`; a missing one is a failure, as in
    /// the control-plane tests (`tests/run-all.sh` starts one).
    pub fn postgres() -> Db {
        let url = std::env::var(PG_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                panic!("set {PG_ENV} to a PostgreSQL admin URL (control-plane/tests/pg.sh start prints one)")
            });
        Db::Postgres(url)
    }
}

/// A fresh `t_<random>` database through the admin URL; returns its URL.
async fn fresh_postgres_db(admin_url: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid_like());
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to the PostgreSQL admin URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let (url, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{base}/{name}{query}")
}

/// 32 hex digits from the clock and the pid (unique enough for test database names).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:08x}", nanos, std::process::id())
}

pub struct ControlPlane {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` of the REST API.
    pub url: String,
    pub http: reqwest::Client,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts a control plane that places clusters into `cells` (`ID=ADDR,...` each).
    pub async fn start(db: &Db, cells: &[String]) -> ControlPlane {
        Self::start_with_args(db, cells, &[]).await
    }

    /// [`ControlPlane::start`] with more `tributary control-plane` flags.
    pub async fn start_with_args(db: &Db, cells: &[String], extra: &[&str]) -> ControlPlane {
        let tmp = tempfile::tempdir().expect("tempdir");
        let port_file = tmp.path().join("port");
        let log = tmp.path().join("control-plane.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.args([
            "control-plane",
            "--listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--port-file")
        .arg(&port_file);
        if let Db::Postgres(admin) = db {
            cmd.args(["--database-url", &fresh_postgres_db(admin).await]);
        }
        for c in cells {
            cmd.args(["--cell", c]);
        }
        cmd.args(extra);
        let child = cmd
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("TRIBUTARY_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(&log).expect("control-plane log"),
            ))
            .spawn()
            .expect("spawn tributary control-plane");
        let mut cp = ControlPlane {
            child: Some(child),
            url: String::new(),
            http: reqwest::Client::new(),
            log,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&port_file) {
                if !addr.trim().is_empty() {
                    cp.url = format!("http://{}", addr.trim());
                    return cp;
                }
            }
            if let Some(status) = cp.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "control plane exited at start-up ({status}):\n{}",
                    cp.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "control plane did not start:\n{}",
                cp.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// One JSON call with a bearer token (or none); returns the status and the body
    /// (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// One call with HTTP Basic `key:secret`.
    pub async fn basic(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        secret: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .basic_auth(key, Some(secret));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Signs up and logs in; returns (token, user id).
    pub async fn account(&self, email: &str) -> (String, String) {
        let (status, up) = self
            .call(
                reqwest::Method::POST,
                "/v1/signup",
                None,
                Some(json!({"email": email, "password": "correct horse", "organization_name": "Acme"})),
            )
            .await;
        assert_eq!(status, 201, "{up}");
        let (status, login) = self
            .call(
                reqwest::Method::POST,
                "/v1/login",
                None,
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        (
            login["token"].as_str().unwrap().to_string(),
            up["user_id"].as_str().unwrap().to_string(),
        )
    }

    /// An environment and a Basic cluster in it, waited for until PROVISIONED (60 s);
    /// returns the cluster id.
    pub async fn provisioned_cluster(&self, token: &str) -> String {
        let (status, env) = self
            .call(
                reqwest::Method::POST,
                "/org/v2/environments",
                Some(token),
                Some(json!({"display_name": "prod"})),
            )
            .await;
        assert_eq!(status, 201, "{env}");
        let (status, cluster) = self
            .call(
                reqwest::Method::POST,
                "/cmk/v2/clusters",
                Some(token),
                Some(json!({"spec": {
                    "display_name": "orders",
                    "availability": "SINGLE_ZONE",
                    "cloud": "AWS",
                    "region": "us-east-1",
                    "config": {"kind": "Basic"},
                    "environment": {"id": env["id"]},
                }})),
            )
            .await;
        assert_eq!(status, 201, "{cluster}");
        let id = cluster["id"].as_str().unwrap().to_string();
        self.wait_provisioned(token, &id).await;
        id
    }

    /// Waits (60 s) until the cluster is PROVISIONED.
    pub async fn wait_provisioned(&self, token: &str, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, c) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/cmk/v2/clusters/{id}"),
                    Some(token),
                    None,
                )
                .await;
            if c["status"]["phase"] == "PROVISIONED" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster {id} never PROVISIONED: {c}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A cluster API key owned by `owner`; returns (key, secret).
    pub async fn cluster_key(&self, token: &str, owner: &str, cluster: &str) -> (String, String) {
        let (status, key) = self
            .call(
                reqwest::Method::POST,
                "/iam/v2/api-keys",
                Some(token),
                Some(json!({"spec": {"owner": {"id": owner}, "resource": {"id": cluster}}})),
            )
            .await;
        assert_eq!(status, 201, "{key}");
        (
            key["id"].as_str().unwrap().to_string(),
            key["spec"]["secret"].as_str().unwrap().to_string(),
        )
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- control plane log tail ---\n{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
