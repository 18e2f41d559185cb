//! `/iam/v2/api-keys` against real servers, on SQLite and PostgreSQL: Cloud API keys
//! authenticate the API as HTTP Basic; cluster keys do not.

mod common;

use common::{assert_error, start, start_with, unreachable_cell_config, walk_pages, Db};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

on_every_backend!(
    cloud_key_lifecycle,
    cluster_key_waits_for_its_cluster,
    validation,
    filters_and_pagination,
);

async fn cloud_key_lifecycle(db: Db) {
    let s = start(&db).await;
    let a = s.account("keys@example.com").await;
    let key = s.create_key(&a.token, &a.user, None).await;
    let id = key["id"].as_str().unwrap().to_string();
    let secret = key["spec"]["secret"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    assert_eq!(secret.len(), 64);
    assert_eq!(key["api_version"], "iam/v2");
    assert_eq!(key["kind"], "ApiKey");
    assert_eq!(key["spec"]["owner"]["id"], a.user.as_str());
    assert_eq!(key["spec"]["owner"]["kind"], "User");
    assert!(key["spec"]["resource"].is_null());
    assert_eq!(key["status"]["phase"], "READY");
    let path = format!("/iam/v2/api-keys/{id}");
    assert_eq!(key["metadata"]["self"], s.url(&path));

    // The secret is shown once: never on get or list.
    let got = s.get_json(&s.url(&path), &a.token).await;
    assert!(got["spec"].get("secret").is_none(), "{got}");
    assert_eq!(got["spec"]["owner"], key["spec"]["owner"]);

    // The key authenticates the control-plane API as HTTP Basic, as its owner.
    let res = s.get_basic("/org/v2/environments", &id, &secret).await;
    assert_eq!(res.status(), 200);
    let res = s
        .http
        .post(s.url("/org/v2/environments"))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"display_name": "made with a key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let list = s.get_json(&s.url("/org/v2/environments"), &a.token).await;
    assert_eq!(list["data"][0]["display_name"], "made with a key");

    // A key owned by a service account authenticates too, in the same organisation.
    let sa = s.create_sa(&a.token, "robot").await;
    let sa_key = s
        .create_key(&a.token, sa["id"].as_str().unwrap(), None)
        .await;
    assert_eq!(sa_key["spec"]["owner"]["kind"], "ServiceAccount");
    let res = s
        .get_basic(
            "/iam/v2/api-keys",
            sa_key["id"].as_str().unwrap(),
            sa_key["spec"]["secret"].as_str().unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"display_name": "ci", "description": "CI runner"}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["spec"]["display_name"], "ci");
    assert_eq!(patched["spec"]["description"], "CI runner");

    // Deleting revokes at once.
    assert_eq!(s.delete(&s.url(&path), &a.token).await.status(), 204);
    let res = s.get_basic("/org/v2/environments", &id, &secret).await;
    assert_error(res, 401, "unauthenticated").await;
    let res = s
        .http
        .get(s.url(&path))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
}

async fn cluster_key_waits_for_its_cluster(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("ck@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let cluster = s
        .create_cluster(&a.token, env["id"].as_str().unwrap(), "Basic")
        .await;
    let lkc = cluster["id"].as_str().unwrap();
    let key = s.create_key(&a.token, &a.user, Some(lkc)).await;
    assert_eq!(key["spec"]["resource"]["id"], lkc);
    assert_eq!(key["spec"]["resource"]["kind"], "Cluster");
    assert_eq!(
        key["spec"]["resource"]["related"],
        s.url(&format!("/cmk/v2/clusters/{lkc}"))
    );
    // Its cluster is still PROVISIONING (the cell is unreachable): the key waits.
    assert_eq!(key["status"]["phase"], "PROPAGATING");

    // A cluster key never authenticates the control plane, even with the right secret.
    let res = s
        .get_basic(
            "/org/v2/environments",
            key["id"].as_str().unwrap(),
            key["spec"]["secret"].as_str().unwrap(),
        )
        .await;
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("cluster API key"), "{detail}");

    // Deleting the cluster revokes its keys.
    let cluster_url = s.url(&format!("/cmk/v2/clusters/{lkc}"));
    assert_eq!(s.delete(&cluster_url, &a.token).await.status(), 204);
    let key_url = s.url(&format!("/iam/v2/api-keys/{}", key["id"].as_str().unwrap()));
    let res = s
        .http
        .get(&key_url)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
    let list = s
        .get_json(
            &s.url(&format!("/iam/v2/api-keys?spec.resource={lkc}")),
            &a.token,
        )
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

async fn validation(db: Db) {
    let s = start(&db).await;
    let a = s.account("kv@example.com").await;
    let b = s.account("kv-other@example.com").await;
    let b_sa = s.create_sa(&b.token, "theirs").await;
    let cases = [
        // No owner.
        (json!({"spec": {"display_name": "k"}}), 400),
        // Unknown field.
        (
            json!({"spec": {"owner": {"id": a.user}, "scope": "all"}}),
            400,
        ),
        (json!({"owner": {"id": a.user}}), 400),
        // Malformed owner id.
        (json!({"spec": {"owner": {"id": "u-x'; --"}}}), 400),
        // Owners and resources of other organisations do not exist here.
        (json!({"spec": {"owner": {"id": b.user}}}), 404),
        (json!({"spec": {"owner": {"id": b_sa["id"]}}}), 404),
        (json!({"spec": {"owner": {"id": "sa-nope00"}}}), 404),
        (
            json!({"spec": {"owner": {"id": a.user}, "resource": {"id": "lkc-nope00"}}}),
            404,
        ),
        (
            json!({"spec": {"owner": {"id": a.user}, "description": "d".repeat(2000)}}),
            400,
        ),
    ];
    for (body, status) in cases {
        let res = s.post("/iam/v2/api-keys", &a.token, &body).await;
        let code = if status == 400 {
            "invalid_argument"
        } else {
            "not_found"
        };
        let detail = assert_error(res, status, code).await;
        assert!(!detail.contains(&b.org), "{detail}");
    }
    let res = s
        .post(
            "/iam/v2/api-keys",
            &a.token,
            &json!({"spec": {"owner": {"id": b.user}}}),
        )
        .await;
    let detail = assert_error(res, 404, "not_found").await;
    assert!(
        detail.contains("service account"),
        "says what to use instead: {detail}"
    );

    let key = s.create_key(&a.token, &a.user, None).await;
    let path = format!("/iam/v2/api-keys/{}", key["id"].as_str().unwrap());
    let res = s
        .patch(&path, &a.token, &json!({"spec": {"owner": {"id": a.user}}}))
        .await;
    assert_error(res, 400, "invalid_argument").await;
    let res = s
        .patch(&path, &a.token, &json!({"spec": {"display_name": " "}}))
        .await;
    assert_error(res, 400, "invalid_argument").await;
}

async fn filters_and_pagination(db: Db) {
    let s = start(&db).await;
    let a = s.account("kp@example.com").await;
    let sa = s.create_sa(&a.token, "bulk").await;
    let sa_id = sa["id"].as_str().unwrap();
    let mut mine = HashSet::new();
    let mut robots = HashSet::new();
    for i in 0..24 {
        let owner = if i % 2 == 0 { a.user.as_str() } else { sa_id };
        let key = s.create_key(&a.token, owner, None).await;
        let id = key["id"].as_str().unwrap().to_string();
        if i % 2 == 0 { &mut mine } else { &mut robots }.insert(id);
    }
    let (sizes, ids) = walk_pages(&s, &s.url("/iam/v2/api-keys?page_size=10"), &a.token).await;
    assert_eq!(sizes, vec![10, 10, 4]);
    assert_eq!(ids.len(), 24);
    let (sizes, ids) = walk_pages(
        &s,
        &s.url(&format!("/iam/v2/api-keys?spec.owner={sa_id}&page_size=5")),
        &a.token,
    )
    .await;
    assert_eq!(sizes, vec![5, 5, 2], "the filter is kept across pages");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), robots);
    let list = s
        .get_json(
            &s.url(&format!(
                "/iam/v2/api-keys?spec.owner={}&page_size=100",
                a.user
            )),
            &a.token,
        )
        .await;
    let got: HashSet<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, mine);
    for bad in [
        "page_size=0",
        "page_token=zzz",
        "spec.owner=a%20b",
        "spec.colour=red",
    ] {
        let res = s
            .http
            .get(s.url(&format!("/iam/v2/api-keys?{bad}")))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
    }
}
