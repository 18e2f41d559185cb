//! The REST API against real servers on 127.0.0.1:0, on SQLite and (when configured)
//! PostgreSQL.

mod common;

use common::{assert_error, start, start_with, test_config, Db};
use control_plane::ratelimit::RateLimitConfig;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

on_every_backend!(
    happy_path,
    signup_validation,
    login_failures,
    auth_failures,
    expired_token,
    malformed_requests,
    cross_organisation_isolation,
    pagination,
    rate_limit,
);

async fn happy_path(db: Db) {
    let s = start(&db).await;
    let res = s
        .signup("Ada@Example.com", "correct horse", "Analytical")
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert!(body["user_id"].as_str().unwrap().starts_with("u-"));
    let org = body["organization_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(org).is_ok(), "{org}");

    // Email is case-insensitive.
    let res = s.login("ada@example.com", "correct horse").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));

    let env = s.create_env(&token, "  prod ").await;
    let id = env["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("env-"), "{id}");
    assert_eq!(env["api_version"], "org/v2");
    assert_eq!(env["kind"], "Environment");
    assert_eq!(env["display_name"], "prod");
    assert_eq!(
        env["metadata"]["self"],
        s.url(&format!("/org/v2/environments/{id}"))
    );
    assert_eq!(
        env["metadata"]["resource_name"],
        format!("crn://tributary.cloud/organization={org}/environment={id}")
    );
    assert!(env["metadata"]["created_at"].is_string());
    assert!(env["metadata"]["updated_at"].is_string());

    let url = s.url(&format!("/org/v2/environments/{id}"));
    let got: Value = s.get_json(&url, &token).await;
    assert_eq!(got, env);

    let res = s
        .http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"display_name": "production"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["display_name"], "production");
    assert_eq!(
        patched["metadata"]["created_at"],
        env["metadata"]["created_at"]
    );

    let list: Value = s.get_json(&s.url("/org/v2/environments"), &token).await;
    assert_eq!(list["kind"], "EnvironmentList");
    assert_eq!(list["api_version"], "org/v2");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["display_name"], "production");
    assert!(list["metadata"].get("next").is_none());

    let res = s.delete(&url, &token).await;
    assert_eq!(res.status(), 204);
    let res = s.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_error(res, 404, "not_found").await;
    let res = s.delete(&url, &token).await;
    assert_error(res, 404, "not_found").await;
}

async fn signup_validation(db: Db) {
    let s = start(&db).await;
    let cases = [
        ("not-an-email", "long enough", "Org"),
        ("a@b", "long enough", "Org"),
        ("a@example.com", "short", "Org"),
        ("a@example.com", "long enough", "   "),
    ];
    for (email, password, org) in cases {
        let res = s.signup(email, password, org).await;
        let detail = assert_error(res, 400, "invalid_argument").await;
        assert!(!detail.contains("internal"), "{detail}");
    }
    let res = s.signup("a@example.com", "short", "Org").await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("at least 8"), "{detail}");

    assert_eq!(
        s.signup("a@example.com", "long enough", "Org")
            .await
            .status(),
        201
    );
    let res = s.signup("A@EXAMPLE.com", "other password", "Org 2").await;
    let detail = assert_error(res, 409, "conflict").await;
    assert!(detail.contains("already exists"), "{detail}");
}

async fn login_failures(db: Db) {
    let s = start(&db).await;
    s.new_account("bob@example.com").await;
    let wrong_password = s.login("bob@example.com", "not the password").await;
    let d1 = assert_error(wrong_password, 401, "unauthenticated").await;
    let unknown = s.login("nobody@example.com", "correct horse").await;
    let d2 = assert_error(unknown, 401, "unauthenticated").await;
    assert_eq!(
        d1, d2,
        "unknown email and wrong password must look the same"
    );
}

async fn auth_failures(db: Db) {
    let s = start(&db).await;
    let url = s.url("/org/v2/environments");
    let res = s.http.get(&url).send().await.unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("Bearer"), "{detail}");
    let res = s
        .http
        .get(&url)
        .bearer_auth("trb_not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    let res = s
        .http
        .get(&url)
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    let res = s
        .http
        .post(&url)
        .json(&json!({"display_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    let res = s
        .http
        .delete(s.url("/org/v2/environments/env-abc123"))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
}

async fn expired_token(db: Db) {
    let config = control_plane::ApiConfig {
        session_ttl: Duration::ZERO,
        ..test_config()
    };
    let s = start_with(&db, config).await;
    let (token, _) = s.new_account("eve@example.com").await;
    let res = s
        .http
        .get(s.url("/org/v2/environments"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("expired"), "{detail}");
}

async fn malformed_requests(db: Db) {
    let s = start(&db).await;
    let res = s
        .http
        .post(s.url("/v1/signup"))
        .json(&json!({"email": "a@example.com", "password": "long enough", "organization_name": "O", "admin": true}))
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("admin"), "{detail}");
    let res = s
        .http
        .post(s.url("/v1/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    let res = s
        .http
        .post(s.url("/v1/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;

    let (token, _) = s.new_account("m@example.com").await;
    let res = s
        .http
        .post(s.url("/org/v2/environments"))
        .bearer_auth(&token)
        .json(&json!({"display_name": "x", "stream_governance": "ADVANCED"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    let res = s
        .http
        .post(s.url("/org/v2/environments"))
        .bearer_auth(&token)
        .json(&json!({"display_name": ""}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    let res = s.http.get(s.url("/no/such/route")).send().await.unwrap();
    assert_error(res, 404, "not_found").await;
    let res = s
        .http
        .put(s.url("/org/v2/environments"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(res, 405, "method_not_allowed").await;
}

async fn cross_organisation_isolation(db: Db) {
    let s = start(&db).await;
    let (alice, _) = s.new_account("alice@example.com").await;
    let (mallory, _) = s.new_account("mallory@example.com").await;
    let env = s.create_env(&alice, "alice-prod").await;
    let own = s.create_env(&mallory, "mallory-dev").await;
    let url = s.url(&format!(
        "/org/v2/environments/{}",
        env["id"].as_str().unwrap()
    ));

    let res = s.http.get(&url).bearer_auth(&mallory).send().await.unwrap();
    let detail = assert_error(res, 404, "not_found").await;
    assert!(!detail.contains("alice"), "{detail}");
    let res = s
        .http
        .patch(&url)
        .bearer_auth(&mallory)
        .json(&json!({"display_name": "pwned"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
    let res = s.delete(&url, &mallory).await;
    assert_error(res, 404, "not_found").await;

    let list: Value = s.get_json(&s.url("/org/v2/environments"), &mallory).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![own["id"].as_str().unwrap()]);

    // Alice's environment is untouched.
    let got: Value = s.get_json(&url, &alice).await;
    assert_eq!(got["display_name"], "alice-prod");
}

async fn pagination(db: Db) {
    let s = start(&db).await;
    let (token, _) = s.new_account("pager@example.com").await;
    let mut created = HashSet::new();
    for i in 0..25 {
        let env = s.create_env(&token, &format!("env {i}")).await;
        created.insert(env["id"].as_str().unwrap().to_string());
    }
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    let mut next = Some(s.url("/org/v2/environments"));
    while let Some(url) = next.take() {
        let res = s.http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        sizes.push(data.len());
        for env in data {
            assert!(
                seen.insert(env["id"].as_str().unwrap().to_string()),
                "duplicate {env}"
            );
        }
        assert!(page["metadata"]["first"]
            .as_str()
            .unwrap()
            .starts_with(&s.base));
        next = page["metadata"]
            .get("next")
            .map(|n| n.as_str().unwrap().to_string());
        if let Some(n) = &next {
            assert!(n.starts_with(&s.url("/org/v2/environments?")), "{n}");
        }
        assert!(sizes.len() <= 3, "too many pages");
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(seen, created);

    let page: Value = s
        .get_json(&s.url("/org/v2/environments?page_size=100"), &token)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 25);
    assert!(page["metadata"].get("next").is_none());

    for bad in [
        "page_size=0",
        "page_size=101",
        "page_size=ten",
        "page_token=garbage",
    ] {
        let res = s
            .http
            .get(s.url(&format!("/org/v2/environments?{bad}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
    }
}

async fn rate_limit(db: Db) {
    let config = control_plane::ApiConfig {
        auth_rate_limit: RateLimitConfig {
            burst: 3,
            per_second: 0.001,
            max_clients: 10,
        },
        ..test_config()
    };
    let s = start_with(&db, config).await;
    for _ in 0..3 {
        let res = s.login("nobody@example.com", "whatever123").await;
        assert_eq!(res.status(), 401);
    }
    let res = s.signup("new@example.com", "long enough", "Org").await;
    let detail = assert_error(res, 429, "rate_limited").await;
    assert!(detail.contains("retry"), "{detail}");
    let res = s.login("nobody@example.com", "whatever123").await;
    assert_error(res, 429, "rate_limited").await;
}

#[tokio::test]
async fn sqlite_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = control_plane::Store::open_sqlite_dir(dir.path())
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(dir.path().join("control-plane.db").exists());
    drop(store);
    // Migrations run again on an existing database without complaint.
    control_plane::Store::open_sqlite_dir(dir.path())
        .await
        .unwrap();
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = control_plane::Store::open_sqlite_dir(dir.path())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(control_plane::serve(
        listener,
        control_plane::AppState::new(store, test_config()),
        shutdown.clone(),
    ));
    let res = reqwest::get(format!("http://{addr}/org/v2/environments"))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve stops within 5 s of cancellation")
        .unwrap()
        .unwrap();
}
