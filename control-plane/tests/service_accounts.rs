//! `/iam/v2/service-accounts` against real servers, on SQLite and PostgreSQL.

mod common;

use common::{assert_error, start, walk_pages, Db};
use serde_json::{json, Value};
use std::collections::HashSet;

on_every_backend!(happy_path, validation, pagination);

async fn happy_path(db: Db) {
    let s = start(&db).await;
    let a = s.account("sa-owner@example.com").await;
    let sa = s.create_sa(&a.token, "  ingest ").await;
    let id = sa["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sa-") && id.len() == 9, "{id}");
    assert_eq!(sa["api_version"], "iam/v2");
    assert_eq!(sa["kind"], "ServiceAccount");
    assert_eq!(sa["display_name"], "ingest");
    assert_eq!(sa["description"], "for tests");
    let path = format!("/iam/v2/service-accounts/{id}");
    assert_eq!(sa["metadata"]["self"], s.url(&path));
    assert_eq!(
        sa["metadata"]["resource_name"],
        format!(
            "crn://tributary.cloud/organization={}/service-account={id}",
            a.org
        )
    );

    assert_eq!(s.get_json(&s.url(&path), &a.token).await, sa);

    let res = s
        .patch(&path, &a.token, &json!({"description": "loads orders"}))
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["description"], "loads orders");
    assert_eq!(patched["display_name"], "ingest");

    let list = s
        .get_json(&s.url("/iam/v2/service-accounts"), &a.token)
        .await;
    assert_eq!(list["kind"], "ServiceAccountList");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["description"], "loads orders");

    assert_eq!(s.delete(&s.url(&path), &a.token).await.status(), 204);
    let res = s
        .http
        .get(s.url(&path))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
    assert_error(s.delete(&s.url(&path), &a.token).await, 404, "not_found").await;
}

async fn validation(db: Db) {
    let s = start(&db).await;
    let a = s.account("sa-val@example.com").await;
    let long = "x".repeat(1025);
    for body in [
        json!({"display_name": ""}),
        json!({"display_name": "ok", "description": long}),
        json!({"display_name": "ok", "role": "admin"}),
        json!({"description": "no name"}),
    ] {
        let res = s.post("/iam/v2/service-accounts", &a.token, &body).await;
        assert_error(res, 400, "invalid_argument").await;
    }
    // Bodies are bounded (64 KiB) before they are parsed.
    let huge = json!({"display_name": "x", "description": "d".repeat(100 * 1024)});
    let res = s.post("/iam/v2/service-accounts", &a.token, &huge).await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("length limit"), "{detail}");

    let sa = s.create_sa(&a.token, "etl").await;
    let other = s.create_sa(&a.token, "reporting").await;
    let res = s
        .post(
            "/iam/v2/service-accounts",
            &a.token,
            &json!({"display_name": "etl"}),
        )
        .await;
    let detail = assert_error(res, 409, "conflict").await;
    assert!(detail.contains("already exists"), "{detail}");
    // Renaming onto a taken name is a conflict too.
    let path = format!("/iam/v2/service-accounts/{}", other["id"].as_str().unwrap());
    let res = s
        .patch(&path, &a.token, &json!({"display_name": "etl"}))
        .await;
    assert_error(res, 409, "conflict").await;

    // A service account that owns a key cannot be deleted until the key is.
    let sa_id = sa["id"].as_str().unwrap();
    let key = s.create_key(&a.token, sa_id, None).await;
    let sa_url = s.url(&format!("/iam/v2/service-accounts/{sa_id}"));
    let detail = assert_error(s.delete(&sa_url, &a.token).await, 409, "conflict").await;
    assert!(detail.contains("API key"), "{detail}");
    let key_url = s.url(&format!("/iam/v2/api-keys/{}", key["id"].as_str().unwrap()));
    assert_eq!(s.delete(&key_url, &a.token).await.status(), 204);
    assert_eq!(s.delete(&sa_url, &a.token).await.status(), 204);
}

async fn pagination(db: Db) {
    let s = start(&db).await;
    let a = s.account("sa-pages@example.com").await;
    let mut created = HashSet::new();
    for i in 0..23 {
        let sa = s.create_sa(&a.token, &format!("sa {i}")).await;
        created.insert(sa["id"].as_str().unwrap().to_string());
    }
    let (sizes, ids) = walk_pages(
        &s,
        &s.url("/iam/v2/service-accounts?page_size=10"),
        &a.token,
    )
    .await;
    assert_eq!(sizes, vec![10, 10, 3]);
    assert_eq!(ids.len(), 23);
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), created);
    for bad in [
        "page_size=0",
        "page_size=101",
        "page_token=1.env-abc",
        "page_token=x",
    ] {
        let res = s
            .http
            .get(s.url(&format!("/iam/v2/service-accounts?{bad}")))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
    }
}
