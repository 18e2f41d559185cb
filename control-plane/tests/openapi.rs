//! `GET /openapi.json` against real servers, on SQLite and PostgreSQL: the served document
//! holds exactly the operations of the route table the router is built from, each routed
//! for real, with schemas, the error envelope, the security schemes (bearer token and Cloud
//! API key for the Cloud API, a cluster's API key for Kafka REST) and pagination.
//! (`tests/openapi/schemathesis.sh` fuzzes the running binary against this document.)

mod common;

use common::{assert_error, start, Db};
use control_plane::api::openapi::{
    route_table, BEARER_SCHEME, CLOUD_API_KEY_SCHEME, CLUSTER_API_KEY_SCHEME,
};
use control_plane::ratelimit::RateLimiter;
use serde_json::Value;
use std::collections::BTreeSet;

on_every_backend!(
    document_has_exactly_the_routed_operations,
    every_documented_operation_is_routed,
    operations_are_described,
    malformed_bodies_are_400,
);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (METHOD, path) of every operation in a `paths` object.
fn operations(paths: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in paths.as_object().expect("paths is an object") {
        for (key, _) in item.as_object().expect("path item is an object") {
            if METHODS.contains(&key.as_str()) {
                ops.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// The operations of the route table the router is built from.
fn routed_operations() -> BTreeSet<(String, String)> {
    let limiter = RateLimiter::new(Default::default());
    let mut ops = BTreeSet::new();
    for (_, paths, _) in route_table(&limiter) {
        let paths = serde_json::to_value(&paths).unwrap();
        let paths = paths.get("paths").cloned().unwrap_or(paths);
        let found = operations(&paths);
        assert!(!found.is_empty(), "a route table entry without operations");
        ops.extend(found);
    }
    ops
}

async fn document(s: &common::Server) -> Value {
    let res = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    res.json().await.unwrap()
}

async fn document_has_exactly_the_routed_operations(db: Db) {
    let s = start(&db).await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let served = operations(&doc["paths"]);
    let routed = routed_operations();
    assert_eq!(served, routed, "document and router differ");
    // Every resource the API has, so a table that lost a whole resource fails here too.
    for path in [
        "/v1/signup",
        "/v1/login",
        "/org/v2/environments/{id}",
        "/iam/v2/service-accounts/{id}",
        "/iam/v2/api-keys/{id}",
        "/cmk/v2/clusters/{id}",
        "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}",
        "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/configs",
        "/openapi.json",
    ] {
        assert!(served.iter().any(|(_, p)| p == path), "{path} missing");
    }
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("operationId").and_then(Value::as_str))
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        served.len(),
        "every operation has an operationId"
    );
    assert_eq!(unique.len(), ids.len(), "operationIds are unique: {ids:?}");
}

/// `path` with every `{param}` replaced by `value`.
fn with_params(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The `{param}` names of `path`.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Sends every documented operation (ids made up, no credentials, no body) and checks the
/// router took it: never the fallback's "no such route" 404 or a 405.
async fn every_documented_operation_is_routed(db: Db) {
    let s = start(&db).await;
    let doc = document(&s).await;
    let (token, _) = s.new_account("routes@example.com").await;
    for (method, path) in operations(&doc["paths"]) {
        let url = s.url(&with_params(&path, "x-none"));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        for auth in [None, Some(token.as_str())] {
            let mut req = s.http.request(m.clone(), &url);
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path}: {body}");
            let fallback = body["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no such route"));
            assert!(!fallback, "{method} {path} is documented but not routed");
            assert!(status < 500, "{method} {path}: {status} {body}");
        }
    }
    // What is not documented is not routed, and says where the reference is.
    let res = s.http.get(s.url("/org/v2/nothing")).send().await.unwrap();
    let detail = assert_error(res, 404, "not_found").await;
    assert!(detail.contains("/openapi.json"), "{detail}");
    let res = s
        .http
        .put(s.url("/org/v2/environments"))
        .send()
        .await
        .unwrap();
    assert_error(res, 405, "method_not_allowed").await;
}

/// Follows a `$ref` to a component schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

async fn operations_are_described(db: Db) {
    let s = start(&db).await;
    let doc = document(&s).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes[BEARER_SCHEME]["type"], "http");
    assert_eq!(schemes[BEARER_SCHEME]["scheme"], "bearer");
    assert_eq!(schemes[CLOUD_API_KEY_SCHEME]["type"], "http");
    assert_eq!(schemes[CLOUD_API_KEY_SCHEME]["scheme"], "basic");
    assert_eq!(schemes[CLUSTER_API_KEY_SCHEME]["type"], "http");
    assert_eq!(schemes[CLUSTER_API_KEY_SCHEME]["scheme"], "basic");
    let envelope = &doc["components"]["schemas"]["ErrorEnvelope"];
    assert_eq!(envelope["required"], serde_json::json!(["errors"]));
    let public = ["/v1/signup", "/v1/login", "/openapi.json"];
    for (method, path) in operations(&doc["paths"]) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let what = format!("{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{what}: no success response"
        );
        let security: BTreeSet<String> = op["security"]
            .as_array()
            .map(|reqs| {
                reqs.iter()
                    .flat_map(|r| r.as_object().unwrap().keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        if public.contains(&path.as_str()) {
            assert!(security.is_empty(), "{what} is public");
            continue;
        }
        // Kafka REST takes the cluster's API key only; the Cloud API a token or a Cloud
        // API key.
        let kafka_rest = path.starts_with("/kafka/v3/");
        let expected = if kafka_rest {
            BTreeSet::from([CLUSTER_API_KEY_SCHEME.to_string()])
        } else {
            BTreeSet::from([BEARER_SCHEME.to_string(), CLOUD_API_KEY_SCHEME.to_string()])
        };
        assert_eq!(security, expected, "{what}: the ways to authenticate");
        // Every error status answers the envelope.
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorEnvelope",
                    "{what} {status}"
                );
            }
        }
        assert!(responses.contains_key("401"), "{what}: no 401");
        // Every path parameter is documented, once; a path with one can answer 404.
        let names = path_params(&path);
        if !names.is_empty() {
            assert!(responses.contains_key("404"), "{what}: no 404");
            let documented: Vec<&str> = op["parameters"]
                .as_array()
                .expect("path parameters")
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(documented, names, "{what}: path parameters");
        }
        let metrics_api = path.starts_with("/v2/metrics/");
        if method == "GET" && metrics_api {
            // Confluent's Metrics API lists: `data` and `meta.pagination`, paged by token.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .expect("list parameters")
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert!(
                params.contains("page_size") && params.contains("page_token"),
                "{what}: {params:?}"
            );
            let list = resolve(
                &doc,
                &responses["200"]["content"]["application/json"]["schema"],
            );
            for field in ["data", "meta"] {
                assert!(list["properties"].get(field).is_some(), "{what}: {field}");
            }
        } else if method == "GET" && kafka_rest && path.ends_with("/lag-summary") {
            // One resource (a group's lag summary), not a list.
        } else if method == "GET" && kafka_rest && !path.ends_with('}') {
            // Kafka REST lists come whole, in Confluent's v3 list shape.
            let list = resolve(
                &doc,
                &responses["200"]["content"]["application/json"]["schema"],
            );
            for field in ["kind", "metadata", "data"] {
                assert!(list["properties"].get(field).is_some(), "{what}: {field}");
            }
        } else if method == "GET" && !path.ends_with('}') {
            // A list: paginated, and its 200 is a list of views.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .expect("list parameters")
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert!(
                params.contains("page_size") && params.contains("page_token"),
                "{what}: {params:?}"
            );
            let page_size = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "page_size")
                .unwrap();
            assert_eq!(page_size["schema"]["minimum"], 1);
            assert_eq!(page_size["schema"]["maximum"], 100);
            let list = resolve(
                &doc,
                &responses["200"]["content"]["application/json"]["schema"],
            );
            for field in ["api_version", "kind", "metadata", "data"] {
                assert!(list["properties"].get(field).is_some(), "{what}: {field}");
            }
        }
        if method == "POST" || method == "PATCH" {
            let body = resolve(
                &doc,
                &op["requestBody"]["content"]["application/json"]["schema"],
            );
            assert_eq!(body["type"], "object", "{what}");
            assert_eq!(
                body["additionalProperties"], false,
                "{what}: unknown fields are refused"
            );
        }
    }
    // A cluster's config states the kind/CKU rule the handler applies.
    let config = &doc["components"]["schemas"]["ConfigSpec"];
    let variants = config["oneOf"].as_array().expect("ConfigSpec is a oneOf");
    assert_eq!(variants.len(), 2, "{config}");
    let dedicated = &variants[0];
    assert_eq!(
        dedicated["properties"]["kind"]["enum"],
        serde_json::json!(["Dedicated"])
    );
    assert_eq!(dedicated["required"], serde_json::json!(["kind", "cku"]));
    assert_eq!(dedicated["properties"]["cku"]["minimum"], 1);
    assert_eq!(
        dedicated["properties"]["cku"]["maximum"],
        control_plane::api::MAX_CKU
    );
    let shared = &variants[1];
    assert_eq!(
        shared["properties"]["kind"]["enum"],
        serde_json::json!(["Basic", "Standard", "Enterprise"])
    );
    assert_eq!(shared["required"], serde_json::json!(["kind"]));
    for v in variants {
        assert_eq!(v["additionalProperties"], false, "{v}");
    }
    // The clusters list requires its environment, as the handler does.
    let env_param = doc["paths"]["/cmk/v2/clusters"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "environment")
        .cloned()
        .unwrap();
    assert_eq!(env_param["required"], true);
}

/// Bodies that are JSON but not objects are refused with a 400 that says what to send
/// (serde alone would take an array of fields as the struct).
async fn malformed_bodies_are_400(db: Db) {
    let s = start(&db).await;
    let (token, _) = s.new_account("bodies@example.com").await;
    let env = s.create_env(&token, "prod").await;
    let path = format!("/org/v2/environments/{}", env["id"].as_str().unwrap());
    for body in ["[null]", "[\"x\"]", "null", "3", "\"prod\""] {
        let res = s
            .http
            .patch(s.url(&path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let detail = assert_error(res, 400, "invalid_argument").await;
        assert!(detail.contains("JSON object"), "{body}: {detail}");
    }
    let res = s
        .http
        .post(s.url("/iam/v2/service-accounts"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[\"name\", \"description\"]")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    // Still the field-level message for objects.
    let res = s
        .http
        .patch(s.url(&path))
        .bearer_auth(&token)
        .json(&serde_json::json!({"display_nam": "x"}))
        .send()
        .await
        .unwrap();
    let detail = assert_error(res, 400, "invalid_argument").await;
    assert!(detail.contains("unknown field `display_nam`"), "{detail}");
}
