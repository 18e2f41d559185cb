//! Test harness: a real API server (REST and gRPC, each on its own 127.0.0.1:0 listener)
//! over a fresh database: every test runs on
//! SQLite and on PostgreSQL (`TRIBUTARY_TEST_POSTGRES_URL`, required: a fresh `t_<random>`
//! database per test, created through that URL).

#![allow(dead_code)]

use control_plane::ratelimit::RateLimitConfig;
use control_plane::{serve, ApiConfig, AppState, Store};
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const PG_ENV: &str = "TRIBUTARY_TEST_POSTGRES_URL";

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

pub fn postgres_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())
}

/// Creates a fresh database through the admin URL and returns the URL pointing at it.
async fn fresh_postgres_db(admin_url: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to TRIBUTARY_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    conn.close().await.ok();
    let (without_query, query) = match admin_url.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    let base = match without_query[scheme_end..].find('/') {
        Some(i) => &without_query[..scheme_end + i],
        None => without_query,
    };
    format!("{base}/{name}{query}")
}

pub struct Server {
    pub base: String,
    /// The gRPC face's URL (`http://127.0.0.1:PORT`).
    pub grpc: String,
    pub http: reqwest::Client,
    /// The database URL, so another server can start on the same data.
    pub db_url: String,
    shutdown: CancellationToken,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A configuration whose rate limit stays out of the way of ordinary tests.
pub fn test_config() -> ApiConfig {
    ApiConfig {
        auth_rate_limit: RateLimitConfig {
            burst: 1000,
            per_second: 1000.0,
            max_clients: 100,
        },
        ..ApiConfig::default()
    }
}

/// `127.0.0.1:PORT` where nothing listens (a port bound and released).
pub async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("local addr");
    drop(l);
    addr.to_string()
}

/// A configuration with one cell whose controller address is a closed port, so
/// clusters stay PROVISIONING (retrying) for `timeout` and then go FAILED.
pub async fn unreachable_cell_config(timeout: Duration) -> ApiConfig {
    let mut config = test_config();
    config.cells = vec![format!("cell-1={}", closed_port().await).parse().unwrap()];
    config.provisioning.timeout = timeout;
    config.provisioning.min_backoff = Duration::from_millis(50);
    config.provisioning.max_backoff = Duration::from_millis(200);
    config.provisioning.tick = Duration::from_millis(50);
    config
}

/// An API server (without the reconciler) and the operator API beside it over the same
/// state and a fresh database; returns the server and the operator API's base URL.
pub async fn start_with_operator(
    db: &Db,
    config: ApiConfig,
    operator: control_plane::operator::OperatorConfig,
) -> (Server, String) {
    let (url, dir) = fresh_database(db).await;
    let store = Store::connect(&url).await.expect("open the database");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let op_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let op_addr = op_listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let state = AppState::new(store, config);
    let grpc = serve_grpc(&state, &shutdown).await;
    tokio::spawn(control_plane::operator::serve(
        op_listener,
        state.clone(),
        operator,
        shutdown.clone(),
    ));
    tokio::spawn(serve(listener, state, shutdown.clone()));
    let server = Server {
        base: format!("http://{addr}"),
        grpc,
        http: reqwest::Client::new(),
        db_url: url,
        shutdown,
        _dir: dir,
    };
    (server, format!("http://{op_addr}"))
}

/// Serves the gRPC face over `state` on 127.0.0.1:0; returns its URL.
async fn serve_grpc(state: &AppState, shutdown: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(control_plane::grpc::serve(
        listener,
        state.clone(),
        shutdown.clone(),
    ));
    format!("http://{addr}")
}

pub async fn start(db: &Db) -> Server {
    start_with(db, test_config()).await
}

/// A server with its reconciler over a fresh database.
pub async fn start_with(db: &Db, config: ApiConfig) -> Server {
    let (url, dir) = fresh_database(db).await;
    start_at(url, dir, config, true).await
}

/// A server without the reconciler over a fresh database (as if the reconciler had
/// crashed); start one later with [`Server::sibling`].
pub async fn start_api_only(db: &Db, config: ApiConfig) -> Server {
    let (url, dir) = fresh_database(db).await;
    start_at(url, dir, config, false).await
}

async fn fresh_database(db: &Db) -> (String, Option<std::sync::Arc<tempfile::TempDir>>) {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("control-plane.db").display()
            );
            (url, Some(std::sync::Arc::new(dir)))
        }
        Db::Postgres(admin) => (fresh_postgres_db(admin).await, None),
    }
}

/// A server (and, with `reconciler`, the provisioning reconciler) over the database at
/// `url`.
pub async fn start_at(
    url: String,
    dir: Option<std::sync::Arc<tempfile::TempDir>>,
    config: ApiConfig,
    reconciler: bool,
) -> Server {
    let store = Store::connect(&url).await.expect("open the database");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    let state = AppState::new(store, config);
    let grpc = serve_grpc(&state, &shutdown).await;
    if reconciler {
        tokio::spawn(control_plane::reconciler::run(
            state.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(serve(listener, state, shutdown.clone()));
    Server {
        base: format!("http://{addr}"),
        grpc,
        http: reqwest::Client::new(),
        db_url: url,
        shutdown,
        _dir: dir,
    }
}

impl Server {
    /// Another server over the same database (the first keeps running unless dropped).
    pub async fn sibling(&self, config: ApiConfig, reconciler: bool) -> Server {
        start_at(self.db_url.clone(), self._dir.clone(), config, reconciler).await
    }
}

/// A signed-up, logged-in user.
pub struct Account {
    pub token: String,
    pub org: String,
    pub user: String,
}

/// Follows `metadata.next` from `first`; returns each page's size and every id seen.
pub async fn walk_pages(s: &Server, first: &str, token: &str) -> (Vec<usize>, Vec<String>) {
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(url) = next.take() {
        let res = s.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let page: Value = res.json().await.unwrap();
        let data = page["data"].as_array().expect("data[]");
        sizes.push(data.len());
        ids.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        next = page["metadata"]
            .get("next")
            .map(|n| n.as_str().unwrap().to_string());
        assert!(sizes.len() <= 50, "too many pages");
    }
    (sizes, ids)
}

impl Server {
    /// GET `url` with a bearer token and decode the JSON body (whatever the status).
    pub async fn get_json(&self, url: &str, token: &str) -> Value {
        self.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON body")
    }

    /// DELETE `url` with a bearer token.
    pub async fn delete(&self, url: &str, token: &str) -> reqwest::Response {
        self.http
            .delete(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn signup(&self, email: &str, password: &str, org: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/signup"))
            .json(&json!({"email": email, "password": password, "organization_name": org}))
            .send()
            .await
            .expect("signup request")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/v1/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// Signs up a new user with its own organisation and returns (token, org id).
    pub async fn new_account(&self, email: &str) -> (String, String) {
        let res = self.signup(email, "correct horse", "Acme").await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        let org = body["organization_id"].as_str().unwrap().to_string();
        let res = self.login(email, "correct horse").await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        (body["token"].as_str().unwrap().to_string(), org)
    }

    /// POST `body` as JSON to `path` with a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// PATCH `body` as JSON to `path` with a bearer token.
    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    /// Signs up and logs in; returns the token, organisation and user id.
    pub async fn account(&self, email: &str) -> Account {
        let res = self.signup(email, "correct horse", "Acme").await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        let res = self.login(email, "correct horse").await;
        assert_eq!(res.status(), 200);
        let login: Value = res.json().await.unwrap();
        Account {
            token: login["token"].as_str().unwrap().to_string(),
            org: body["organization_id"].as_str().unwrap().to_string(),
            user: body["user_id"].as_str().unwrap().to_string(),
        }
    }

    /// Creates a service account (201 expected).
    pub async fn create_sa(&self, token: &str, name: &str) -> Value {
        let res = self
            .post(
                "/iam/v2/service-accounts",
                token,
                &json!({"display_name": name, "description": "for tests"}),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// Creates a cluster of `kind` (Dedicated gets 2 CKUs) in `env_id` (201 expected).
    pub async fn create_cluster(&self, token: &str, env_id: &str, kind: &str) -> Value {
        let mut config = json!({"kind": kind});
        if kind == "Dedicated" {
            config["cku"] = json!(2);
        }
        let res = self
            .post(
                "/cmk/v2/clusters",
                token,
                &json!({"spec": {
                    "display_name": "orders",
                    "availability": "SINGLE_ZONE",
                    "cloud": "AWS",
                    "region": "us-east-1",
                    "config": config,
                    "environment": {"id": env_id},
                }}),
            )
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// Creates an API key owned by `owner`, bound to cluster `resource` or (None) a
    /// Cloud API key (201 expected).
    pub async fn create_key(&self, token: &str, owner: &str, resource: Option<&str>) -> Value {
        let mut spec = json!({"display_name": "key", "owner": {"id": owner}});
        if let Some(r) = resource {
            spec["resource"] = json!({"id": r});
        }
        let res = self
            .post("/iam/v2/api-keys", token, &json!({"spec": spec}))
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// GET `path` with HTTP Basic `key:secret`.
    pub async fn get_basic(&self, path: &str, key: &str, secret: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .basic_auth(key, Some(secret))
            .send()
            .await
            .expect("GET")
    }

    pub async fn create_env(&self, token: &str, name: &str) -> Value {
        let res = self
            .http
            .post(self.url("/org/v2/environments"))
            .bearer_auth(token)
            .json(&json!({"display_name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }
}

/// Asserts the error envelope with this status and code; returns the detail.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(res.status().as_u16(), status);
    let body: Value = res.json().await.expect("error body is JSON");
    let errors = body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["status"], status.to_string(), "{body}");
    assert_eq!(errors[0]["code"], code, "{body}");
    let detail = errors[0]["detail"].as_str().expect("detail").to_string();
    assert!(!detail.is_empty());
    detail
}

/// Declares each listed `async fn name(db: Db)` as a test on SQLite and, when
/// `TRIBUTARY_TEST_POSTGRES_URL` is set, on PostgreSQL (skipped with a note otherwise).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    // A missing PostgreSQL is a failure, not a silent pass: the README's
                    // test command (tests/run-all.sh) starts one with tests/pg.sh.
                    let url = $crate::common::postgres_url().unwrap_or_else(|| {
                        panic!(
                            "set {} to a PostgreSQL admin URL (control-plane/tests/pg.sh start \
                             prints one); tests/run-all.sh does this for you",
                            $crate::common::PG_ENV
                        )
                    });
                    super::$name($crate::common::Db::Postgres(url)).await
                }
            )*
        }
    };
}
