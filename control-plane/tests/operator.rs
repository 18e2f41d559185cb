//! The operator API (its own listener) against real servers, on SQLite and PostgreSQL:
//! token authentication, and cells whose controllers are real closed ports, reported as
//! unreachable with the tenants the database places in them. A reachable cell is tested
//! once the cell controller (`cells`) exists; no stand-in controller here.

mod common;

use common::{assert_error, closed_port, start_with_operator, test_config, Db};
use control_plane::operator::OperatorConfig;
use control_plane::Store;
use std::time::{Duration, Instant};

on_every_backend!(
    refuses_everything_without_a_configured_token,
    refuses_missing_and_wrong_tokens,
    unreachable_cell_still_lists_its_tenants,
);

const TOKEN: &str = "op-secret-for-tests";

fn with_token(token: Option<&str>) -> OperatorConfig {
    OperatorConfig {
        token: token.map(str::to_string),
        cell_timeout: Duration::from_secs(2),
    }
}

async fn refuses_everything_without_a_configured_token(db: Db) {
    let (s, op) = start_with_operator(&db, test_config(), with_token(None)).await;
    for path in [
        "/operator/v1/cells",
        "/operator/v1/cells/cell-1",
        "/elsewhere",
    ] {
        let res = s
            .http
            .get(format!("{op}{path}"))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        let detail = assert_error(res, 401, "unauthenticated").await;
        assert!(
            detail.contains("--operator-token") && detail.contains("TRIBUTARY_OPERATOR_TOKEN"),
            "{detail}"
        );
    }
    // An empty token counts as none.
    let (s, op) = start_with_operator(&db, test_config(), with_token(Some(""))).await;
    let res = s
        .http
        .get(format!("{op}/operator/v1/cells"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
}

async fn refuses_missing_and_wrong_tokens(db: Db) {
    let (s, op) = start_with_operator(&db, test_config(), with_token(Some(TOKEN))).await;
    let url = format!("{op}/operator/v1/cells");
    let res = s.http.get(&url).send().await.unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("missing operator token"), "{detail}");
    let res = s
        .http
        .get(&url)
        .bearer_auth("op-secret-for-test")
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 401, "unauthenticated").await;
    assert!(detail.contains("wrong operator token"), "{detail}");
    let res = s
        .http
        .get(&url)
        .basic_auth("op", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    // The user API's token is not an operator token, and the operator token is not a
    // user token.
    let a = s.account("op@example.com").await;
    let res = s.http.get(&url).bearer_auth(&a.token).send().await.unwrap();
    assert_error(res, 401, "unauthenticated").await;
    let res = s
        .http
        .get(s.url("/org/v2/environments"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    // The right token, with no cells configured: an empty list.
    let res = s.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"cells": []}));
    // Not found and read-only, in the envelope.
    let res = s
        .http
        .get(format!("{url}/cell-9"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 404, "not_found").await;
    assert!(detail.contains("cell-9 is not configured"), "{detail}");
    let res = s.http.delete(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_error(res, 405, "method_not_allowed").await;
}

async fn unreachable_cell_still_lists_its_tenants(db: Db) {
    let (a1, a2) = (closed_port().await, closed_port().await);
    let mut config = test_config();
    config.cells = vec![
        format!("cell-1={a1}").parse().unwrap(),
        format!("cell-2={a2}").parse().unwrap(),
    ];
    let (s, op) = start_with_operator(&db, config, with_token(Some(TOKEN))).await;
    // Two tenants in two organisations, placed in cell-1 as the reconciler would have
    // when the cell was still up (no reconciler runs here, so nothing moves them).
    let a = s.account("t1@example.com").await;
    let b = s.account("t2@example.com").await;
    let env_a = s.create_env(&a.token, "prod").await;
    let env_b = s.create_env(&b.token, "dev").await;
    let ca = s
        .create_cluster(&a.token, env_a["id"].as_str().unwrap(), "Dedicated")
        .await;
    let cb = s
        .create_cluster(&b.token, env_b["id"].as_str().unwrap(), "Basic")
        .await;
    let unplaced = s
        .create_cluster(&b.token, env_b["id"].as_str().unwrap(), "Standard")
        .await;
    let store = Store::connect(&s.db_url).await.unwrap();
    for c in [&ca, &cb] {
        assert!(store
            .place_cluster(c["id"].as_str().unwrap(), "cell-1")
            .await
            .unwrap());
    }

    let started = Instant::now();
    let res = s
        .http
        .get(format!("{op}/operator/v1/cells"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cells are asked concurrently and within the timeout"
    );
    let cells = body["cells"].as_array().expect("cells[]");
    assert_eq!(cells.len(), 2, "{body}");
    let (c1, c2) = (&cells[0], &cells[1]);
    assert_eq!(c1["id"], "cell-1");
    assert_eq!(c1["controllers"], serde_json::json!([a1]));
    assert_eq!(c1["reachable"], false);
    let error = c1["error"].as_str().expect("error says why");
    assert!(
        error.contains("cell-1") && error.contains(&a1),
        "names the cell and the address: {error}"
    );
    assert!(c1.get("load").is_none(), "{c1}");
    let tenants = c1["tenants"].as_array().unwrap();
    let ids: Vec<&str> = tenants
        .iter()
        .map(|t| t["cluster_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![ca["id"].as_str().unwrap(), cb["id"].as_str().unwrap()]
    );
    assert_eq!(tenants[0]["organization_id"], a.org.as_str());
    assert_eq!(tenants[0]["environment_id"], env_a["id"]);
    assert_eq!(tenants[0]["kind"], "Dedicated");
    assert_eq!(tenants[0]["cku"], 2);
    assert_eq!(tenants[0]["phase"], "PROVISIONING");
    assert_eq!(tenants[1]["organization_id"], b.org.as_str());
    assert_eq!(tenants[1]["kind"], "Basic");
    assert_eq!(c1["tenants_truncated"], false);
    assert_eq!(c2["id"], "cell-2");
    assert_eq!(c2["reachable"], false);
    assert_eq!(c2["tenants"], serde_json::json!([]));
    assert!(
        !body.to_string().contains(unplaced["id"].as_str().unwrap()),
        "an unplaced cluster is in no cell"
    );

    // One cell, the same view.
    let one: serde_json::Value = s
        .http
        .get(format!("{op}/operator/v1/cells/cell-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "cell-1");
    assert_eq!(one["reachable"], false);
    assert_eq!(one["tenants"], c1["tenants"]);
}
