//! `/cmk/v2/clusters` and provisioning against real servers, on SQLite and PostgreSQL.
//!
//! The cell controller is not built yet, so these tests use what is real today: cells
//! whose controller address is a closed port. Clusters then stay PROVISIONING with a
//! reason and go FAILED after the provisioning timeout. The end-to-end test against the
//! real `tributary controller` comes with the `cells` crate.

mod common;

use common::{
    assert_error, closed_port, start_api_only, start_with, test_config, unreachable_cell_config,
    walk_pages, Db,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

on_every_backend!(
    happy_path,
    validation,
    config_changes,
    unreachable_cell_fails_with_reason,
    no_cells_fails_at_once,
    reconciler_resumes_after_restart,
    environment_with_clusters_cannot_be_deleted,
    pagination,
    plans_are_versioned,
);

/// Polls the cluster until its phase is `phase` (at most `within`).
async fn wait_for_phase(
    s: &common::Server,
    token: &str,
    id: &str,
    phase: &str,
    within: Duration,
) -> Value {
    let url = s.url(&format!("/cmk/v2/clusters/{id}"));
    let start = Instant::now();
    loop {
        let c = s.get_json(&url, token).await;
        if c["status"]["phase"] == phase {
            return c;
        }
        assert!(
            start.elapsed() < within,
            "cluster never reached {phase}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn happy_path(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("cl@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let env_id = env["id"].as_str().unwrap();
    let c = s.create_cluster(&a.token, env_id, "Dedicated").await;
    let id = c["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("lkc-") && id.len() == 10, "{id}");
    assert_eq!(c["api_version"], "cmk/v2");
    assert_eq!(c["kind"], "Cluster");
    let path = format!("/cmk/v2/clusters/{id}");
    assert_eq!(c["metadata"]["self"], s.url(&path));
    assert_eq!(
        c["metadata"]["resource_name"],
        format!("crn://tributary.cloud/organization={}/environment={env_id}/cloud-cluster={id}/kafka={id}", a.org)
    );
    let spec = &c["spec"];
    assert_eq!(spec["display_name"], "orders");
    assert_eq!(spec["availability"], "SINGLE_ZONE");
    assert_eq!(spec["cloud"], "AWS");
    assert_eq!(spec["region"], "us-east-1");
    assert_eq!(spec["config"], json!({"kind": "Dedicated", "cku": 2}));
    assert_eq!(spec["environment"]["id"], env_id);
    assert_eq!(c["status"]["phase"], "PROVISIONING");
    assert_eq!(c["status"]["cku"], 2);
    // Not provisioned: no endpoints yet.
    assert!(spec.get("kafka_bootstrap_endpoint").is_none(), "{c}");
    assert!(spec.get("http_endpoint").is_none(), "{c}");

    // The reconciler tried the (closed) cell and says why it is still waiting.
    let start = Instant::now();
    let c = loop {
        let c = s.get_json(&s.url(&path), &a.token).await;
        if c["status"]["reason"].is_string() {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no reason: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(c["status"]["phase"], "PROVISIONING");
    let reason = c["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cell-1") && reason.contains("unreachable"),
        "{reason}"
    );

    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"display_name": "orders-v2", "environment": {"id": env_id}}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["spec"]["display_name"], "orders-v2");

    let list = s
        .get_json(
            &s.url(&format!("/cmk/v2/clusters?environment={env_id}")),
            &a.token,
        )
        .await;
    assert_eq!(list["kind"], "ClusterList");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id.as_str());

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
    let list = s
        .get_json(
            &s.url(&format!("/cmk/v2/clusters?environment={env_id}")),
            &a.token,
        )
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

async fn validation(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("cv@example.com").await;
    let b = s.account("cv-other@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let theirs = s.create_env(&b.token, "theirs").await;
    let good = json!({
        "display_name": "x", "availability": "SINGLE_ZONE", "cloud": "AWS",
        "region": "us-east-1", "config": {"kind": "Standard"}, "environment": {"id": env["id"]},
    });
    let with = |field: &str, value: Value| {
        let mut spec = good.clone();
        spec[field] = value;
        json!({ "spec": spec })
    };
    let bad_requests = [
        with("display_name", json!("")),
        with("availability", json!("THREE_ZONES")),
        with("cloud", json!("")),
        with("region", json!("us east")),
        with("config", json!({"kind": "Huge"})),
        with("config", json!({"kind": "Basic", "cku": 1})),
        with("config", json!({"kind": "Dedicated"})),
        with("config", json!({"kind": "Dedicated", "cku": 0})),
        with("config", json!({"kind": "Dedicated", "cku": 101})),
        with("bogus", json!(1)),
        json!({"spec": {"display_name": "x"}}),
        json!(good.clone()),
    ];
    for body in bad_requests {
        let res = s.post("/cmk/v2/clusters", &a.token, &body).await;
        assert_error(res, 400, "invalid_argument").await;
    }
    let mut multi = good.clone();
    multi["availability"] = json!("MULTI_ZONE");
    multi["config"] = json!({"kind": "Basic"});
    let res = s
        .post("/cmk/v2/clusters", &a.token, &json!({"spec": multi}))
        .await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("SINGLE_ZONE"), "{detail}");
    multi["config"] = json!({"kind": "Dedicated", "cku": 1});
    let res = s
        .post("/cmk/v2/clusters", &a.token, &json!({"spec": multi}))
        .await;
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("at least 2 CKUs"), "{detail}");

    // Another organisation's environment, or none, is not found.
    for env_id in [theirs["id"].clone(), json!("env-nope00")] {
        let res = s
            .post(
                "/cmk/v2/clusters",
                &a.token,
                &with("environment", json!({"id": env_id})),
            )
            .await;
        assert_error(res, 404, "not_found").await;
    }

    // Listing needs ?environment=, of the caller's organisation.
    let res = s
        .http
        .get(s.url("/cmk/v2/clusters"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("environment"), "{detail}");
    let res = s
        .http
        .get(s.url(&format!(
            "/cmk/v2/clusters?environment={}",
            theirs["id"].as_str().unwrap()
        )))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
}

async fn config_changes(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("cc@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let env_id = env["id"].as_str().unwrap();
    let basic = s.create_cluster(&a.token, env_id, "Basic").await;
    let path = format!("/cmk/v2/clusters/{}", basic["id"].as_str().unwrap());
    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"config": {"kind": "Standard"}}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["spec"]["config"]["kind"], "Standard");
    for config in [
        json!({"kind": "Basic"}),
        json!({"kind": "Dedicated", "cku": 2}),
    ] {
        let res = s
            .patch(&path, &a.token, &json!({"spec": {"config": config}}))
            .await;
        let detail = assert_error(res, 400, "invalid_argument").await;
        assert!(detail.contains("only Basic to Standard"), "{detail}");
    }
    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"environment": {"id": "env-other0"}}}),
        )
        .await;
    assert_error(res, 400, "invalid_argument").await;

    let dedicated = s.create_cluster(&a.token, env_id, "Dedicated").await;
    let path = format!("/cmk/v2/clusters/{}", dedicated["id"].as_str().unwrap());
    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"config": {"kind": "Dedicated", "cku": 4}}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["spec"]["config"]["cku"], 4);
    assert_eq!(c["status"]["cku"], 4);
    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"config": {"kind": "Dedicated", "cku": 500}}}),
        )
        .await;
    assert_error(res, 400, "invalid_argument").await;
}

async fn unreachable_cell_fails_with_reason(db: Db) {
    let mut config = unreachable_cell_config(Duration::from_millis(1500)).await;
    // A second cell with two closed controller addresses: both are tried and named.
    let (p1, p2) = (closed_port().await, closed_port().await);
    config
        .cells
        .push(format!("cell-2={p1},{p2}").parse().unwrap());
    let s = start_with(&db, config).await;
    let a = s.account("fail@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let c = s
        .create_cluster(&a.token, env["id"].as_str().unwrap(), "Standard")
        .await;
    let id = c["id"].as_str().unwrap();
    let key = s.create_key(&a.token, &a.user, Some(id)).await;
    let failed = wait_for_phase(&s, &a.token, id, "FAILED", Duration::from_secs(15)).await;
    let reason = failed["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("did not finish within 1 s"), "{reason}");
    assert!(reason.contains("cell-1 is unreachable"), "{reason}");
    assert!(
        reason.contains(&p1) && reason.contains(&p2),
        "both addresses named: {reason}"
    );
    assert!(failed["spec"].get("kafka_bootstrap_endpoint").is_none());

    // A FAILED cluster takes no new keys and no config change, but can be deleted.
    let res = s
        .post(
            "/iam/v2/api-keys",
            &a.token,
            &json!({"spec": {"owner": {"id": a.user}, "resource": {"id": id}}}),
        )
        .await;
    assert_error(res, 409, "conflict").await;
    let path = format!("/cmk/v2/clusters/{id}");
    let res = s
        .patch(
            &path,
            &a.token,
            &json!({"spec": {"config": {"kind": "Enterprise"}}}),
        )
        .await;
    let detail = assert_error(res, 409, "conflict").await;
    assert!(detail.contains("FAILED"), "{detail}");
    assert_eq!(s.delete(&s.url(&path), &a.token).await.status(), 204);
    let key_url = s.url(&format!("/iam/v2/api-keys/{}", key["id"].as_str().unwrap()));
    let res = s
        .http
        .get(&key_url)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
}

async fn no_cells_fails_at_once(db: Db) {
    let s = start_with(&db, test_config()).await;
    let a = s.account("nocell@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let c = s
        .create_cluster(&a.token, env["id"].as_str().unwrap(), "Basic")
        .await;
    let failed = wait_for_phase(
        &s,
        &a.token,
        c["id"].as_str().unwrap(),
        "FAILED",
        Duration::from_secs(5),
    )
    .await;
    let reason = failed["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no cells are configured") && reason.contains("--cell"),
        "{reason}"
    );
}

async fn reconciler_resumes_after_restart(db: Db) {
    // A control plane without its reconciler: as if it crashed right after the create.
    let config = unreachable_cell_config(Duration::from_millis(1000)).await;
    let api_only = start_api_only(&db, config.clone()).await;
    let a = api_only.account("resume@example.com").await;
    let env = api_only.create_env(&a.token, "prod").await;
    let c = api_only
        .create_cluster(&a.token, env["id"].as_str().unwrap(), "Basic")
        .await;
    let id = c["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("/cmk/v2/clusters/{id}");
    let still = api_only.get_json(&api_only.url(&url), &a.token).await;
    assert_eq!(still["status"]["phase"], "PROVISIONING");
    assert!(
        still["status"].get("reason").is_none(),
        "nobody tried yet: {still}"
    );

    // The next start finds the work in the database; the timeout counts from creation.
    let restarted = api_only.sibling(config, true).await;
    drop(api_only);
    let failed = wait_for_phase(&restarted, &a.token, id, "FAILED", Duration::from_secs(15)).await;
    let reason = failed["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("cell-1"), "{reason}");
}

async fn environment_with_clusters_cannot_be_deleted(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("envdel@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let env_id = env["id"].as_str().unwrap();
    let c = s.create_cluster(&a.token, env_id, "Basic").await;
    let env_url = s.url(&format!("/org/v2/environments/{env_id}"));
    let detail = assert_error(s.delete(&env_url, &a.token).await, 409, "conflict").await;
    assert!(detail.contains("delete them first"), "{detail}");
    let c_url = s.url(&format!("/cmk/v2/clusters/{}", c["id"].as_str().unwrap()));
    assert_eq!(s.delete(&c_url, &a.token).await.status(), 204);
    assert_eq!(s.delete(&env_url, &a.token).await.status(), 204);
}

async fn pagination(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(600)).await).await;
    let a = s.account("cp@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    let other_env = s.create_env(&a.token, "dev").await;
    let env_id = env["id"].as_str().unwrap();
    let mut created = HashSet::new();
    for _ in 0..12 {
        let c = s.create_cluster(&a.token, env_id, "Basic").await;
        created.insert(c["id"].as_str().unwrap().to_string());
    }
    s.create_cluster(&a.token, other_env["id"].as_str().unwrap(), "Basic")
        .await;
    let first = s.url(&format!(
        "/cmk/v2/clusters?environment={env_id}&page_size=5"
    ));
    let (sizes, ids) = walk_pages(&s, &first, &a.token).await;
    assert_eq!(sizes, vec![5, 5, 2], "pages keep the environment filter");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), created);
    for bad in ["page_size=0", "page_size=1000", "page_token=1.sa-abc"] {
        let res = s
            .http
            .get(s.url(&format!("/cmk/v2/clusters?environment={env_id}&{bad}")))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
    }
}

async fn plans_are_versioned(db: Db) {
    use control_plane::plans::{ClusterKind, Plans};
    let s = start_with(&db, test_config()).await;
    let store = control_plane::Store::connect(&s.db_url).await.unwrap();
    let defaults = Plans::default();
    let basic = defaults.get(ClusterKind::Basic);
    let v1 = store.ensure_plan(ClusterKind::Basic, &basic).await.unwrap();
    assert_eq!(
        store.ensure_plan(ClusterKind::Basic, &basic).await.unwrap(),
        v1,
        "unchanged limits keep their version"
    );
    let mut overridden = defaults.clone();
    overridden
        .apply_override("Basic.max_partitions=100")
        .unwrap();
    let v2 = store
        .ensure_plan(ClusterKind::Basic, &overridden.get(ClusterKind::Basic))
        .await
        .unwrap();
    assert_eq!(v2, v1 + 1);
    assert_eq!(
        store.plan_limits(ClusterKind::Basic, v1).await.unwrap(),
        basic
    );
    assert_eq!(
        store
            .plan_limits(ClusterKind::Basic, v2)
            .await
            .unwrap()
            .max_partitions,
        100
    );
    // Other kinds are versioned on their own.
    assert_eq!(
        store
            .ensure_plan(ClusterKind::Standard, &defaults.get(ClusterKind::Standard))
            .await
            .unwrap(),
        1
    );
}
