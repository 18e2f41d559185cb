//! Authentication and organisation scoping across every service-account, API-key and
//! cluster route, on SQLite and PostgreSQL.

mod common;

use common::{assert_error, start_with, unreachable_cell_config, Db, Server};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

on_every_backend!(auth_failures_on_every_route, cross_organisation_isolation);

/// One organisation's resources: an environment, a service account, a Cloud API key, a
/// cluster and a cluster key.
struct Fixture {
    token: String,
    user: String,
    env: String,
    sa: String,
    cloud_key: (String, String),
    cluster: String,
    cluster_key: (String, String),
}

async fn fixture(s: &Server, email: &str) -> Fixture {
    let a = s.account(email).await;
    let env = s.create_env(&a.token, "prod").await;
    let env = env["id"].as_str().unwrap().to_string();
    let sa = s.create_sa(&a.token, "robot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key_pair = |k: Value| {
        (
            k["id"].as_str().unwrap().to_string(),
            k["spec"]["secret"].as_str().unwrap().to_string(),
        )
    };
    let cloud_key = key_pair(s.create_key(&a.token, &sa, None).await);
    let cluster = s.create_cluster(&a.token, &env, "Standard").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cluster_key = key_pair(s.create_key(&a.token, &a.user, Some(&cluster)).await);
    Fixture {
        token: a.token,
        user: a.user,
        env,
        sa,
        cloud_key,
        cluster,
        cluster_key,
    }
}

/// Every route of the three resources with a valid body, for `f`'s resources.
fn routes(f: &Fixture) -> Vec<(Method, String, Option<Value>)> {
    let sa = format!("/iam/v2/service-accounts/{}", f.sa);
    let key = format!("/iam/v2/api-keys/{}", f.cloud_key.0);
    let cluster = format!("/cmk/v2/clusters/{}", f.cluster);
    vec![
        (Method::GET, "/iam/v2/service-accounts".into(), None),
        (
            Method::POST,
            "/iam/v2/service-accounts".into(),
            Some(json!({"display_name": "new"})),
        ),
        (Method::GET, sa.clone(), None),
        (
            Method::PATCH,
            sa.clone(),
            Some(json!({"display_name": "renamed"})),
        ),
        (Method::DELETE, sa, None),
        (Method::GET, "/iam/v2/api-keys".into(), None),
        (
            Method::POST,
            "/iam/v2/api-keys".into(),
            Some(json!({"spec": {"owner": {"id": f.user}}})),
        ),
        (Method::GET, key.clone(), None),
        (
            Method::PATCH,
            key.clone(),
            Some(json!({"spec": {"display_name": "renamed"}})),
        ),
        (Method::DELETE, key, None),
        (
            Method::GET,
            format!("/cmk/v2/clusters?environment={}", f.env),
            None,
        ),
        (
            Method::POST,
            "/cmk/v2/clusters".into(),
            Some(json!({"spec": {
                "display_name": "x", "availability": "SINGLE_ZONE", "cloud": "AWS",
                "region": "us-east-1", "config": {"kind": "Basic"}, "environment": {"id": f.env},
            }})),
        ),
        (Method::GET, cluster.clone(), None),
        (
            Method::PATCH,
            cluster.clone(),
            Some(json!({"spec": {"display_name": "renamed"}})),
        ),
        (Method::DELETE, cluster, None),
    ]
}

/// The list routes without a query string.
const COLLECTIONS: [&str; 2] = ["/iam/v2/service-accounts", "/iam/v2/api-keys"];

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
enum Auth<'a> {
    Nothing,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

async fn send(
    s: &Server,
    method: &Method,
    path: &str,
    body: &Option<Value>,
    auth: Auth<'_>,
) -> reqwest::Response {
    let mut req = s.http.request(method.clone(), s.url(path));
    req = match auth {
        Auth::Nothing => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Basic(k, secret) => req.basic_auth(k, Some(secret)),
    };
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.expect("request")
}

async fn auth_failures_on_every_route(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let f = fixture(&s, "authz@example.com").await;
    let bad_basic = Auth::Basic(&f.cloud_key.0, "not-the-secret");
    let cluster_key = Auth::Basic(&f.cluster_key.0, &f.cluster_key.1);
    for (method, path, body) in routes(&f) {
        for auth in [
            Auth::Nothing,
            Auth::Bearer("trb_forged"),
            bad_basic,
            cluster_key,
        ] {
            let res = send(&s, &method, &path, &body, auth).await;
            let detail = assert_error(res, 401, "unauthenticated").await;
            if matches!(auth, Auth::Basic(k, _) if k == f.cluster_key.0) {
                assert!(
                    detail.contains("cluster API key"),
                    "{method} {path}: {detail}"
                );
            }
        }
    }
    // Nothing was changed by any of those: every route still answers the owner.
    let ok = Auth::Basic(&f.cloud_key.0, &f.cloud_key.1);
    for (method, path, body) in routes(&f).into_iter().filter(|r| r.0 == Method::GET) {
        let res = send(&s, &method, &path, &body, ok).await;
        assert_eq!(res.status(), 200, "{path}");
    }
    let sa = s
        .get_json(
            &s.url(&format!("/iam/v2/service-accounts/{}", f.sa)),
            &f.token,
        )
        .await;
    assert_eq!(sa["display_name"], "robot");
}

async fn cross_organisation_isolation(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let alice = fixture(&s, "alice@example.com").await;
    let mallory = fixture(&s, "mallory@example.com").await;
    let as_mallory = [
        Auth::Bearer(&mallory.token),
        Auth::Basic(&mallory.cloud_key.0, &mallory.cloud_key.1),
    ];
    for auth in as_mallory {
        for (method, path, body) in routes(&alice) {
            if method == Method::POST {
                continue; // creating in one's own organisation is allowed
            }
            let res = send(&s, &method, &path, &body, auth).await;
            if path.contains('?') {
                // Alice's environment does not exist for Mallory.
                assert_error(res, 404, "not_found").await;
            } else if method == Method::GET && !COLLECTIONS.contains(&path.as_str()) {
                let detail = assert_error(res, 404, "not_found").await;
                assert!(!detail.contains("alice"), "{detail}");
            } else if matches!(method, Method::PATCH | Method::DELETE) {
                assert_error(res, 404, "not_found").await;
            } else {
                // A list: only Mallory's own.
                assert_eq!(res.status(), 200, "{path}");
                let list: Value = res.json().await.unwrap();
                for item in list["data"].as_array().unwrap() {
                    let id = item["id"].as_str().unwrap();
                    assert!(
                        [&alice.sa, &alice.cloud_key.0, &alice.cluster_key.0]
                            .iter()
                            .all(|a| *a != id),
                        "{path} shows Alice's {id}"
                    );
                }
            }
        }
        // Mallory cannot reference Alice's resources either.
        let res = send(
            &s,
            &Method::POST,
            "/iam/v2/api-keys",
            &Some(
                json!({"spec": {"owner": {"id": mallory.user}, "resource": {"id": alice.cluster}}}),
            ),
            auth,
        )
        .await;
        assert_error(res, 404, "not_found").await;
        let res = send(
            &s,
            &Method::GET,
            &format!("/iam/v2/api-keys?spec.owner={}", alice.sa),
            &None,
            auth,
        )
        .await;
        let list: Value = res.json().await.unwrap();
        assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    }
    // Alice's resources are untouched.
    for (method, path, body) in routes(&alice).into_iter().filter(|r| r.0 == Method::GET) {
        let res = send(&s, &method, &path, &body, Auth::Bearer(&alice.token)).await;
        assert_eq!(res.status(), 200, "{path}");
        let got: Value = res.json().await.unwrap();
        assert!(!got.to_string().contains("renamed"), "{got}");
    }
    let keys = s.get_json(&s.url("/iam/v2/api-keys"), &alice.token).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
}
