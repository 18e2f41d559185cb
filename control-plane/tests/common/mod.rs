//! Test harness: a real API server on 127.0.0.1:0 over a fresh database: every test runs on
//! SQLite and on PostgreSQL (`TRIBUTARY_TEST_POSTGRES_URL`, required: a fresh `t_<random>`
//! database per test, created through that URL).

#![allow(dead_code)]

use control_plane::ratelimit::RateLimitConfig;
use control_plane::{serve, ApiConfig, AppState, Store};
use serde_json::{json, Value};
use sqlx::Connection;
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
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
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

pub async fn start(db: &Db) -> Server {
    start_with(db, test_config()).await
}

pub async fn start_with(db: &Db, config: ApiConfig) -> Server {
    let (store, dir) = match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open_sqlite_dir(dir.path())
                .await
                .expect("open SQLite");
            (store, Some(dir))
        }
        Db::Postgres(admin) => {
            let url = fresh_postgres_db(admin).await;
            (
                Store::connect(&url).await.expect("connect PostgreSQL"),
                None,
            )
        }
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        AppState::new(store, config),
        shutdown.clone(),
    ));
    Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        shutdown,
        _dir: dir,
    }
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
