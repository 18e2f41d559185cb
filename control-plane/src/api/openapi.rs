//! The OpenAPI 3.1 document (`GET /openapi.json`) and the one route table the REST router
//! is built from.
//!
//! Every route is a handler annotated with `#[utoipa::path]` (method, path, parameters,
//! request and response schemas, security) and registered in [`route_table`] with
//! `utoipa_axum::routes!`, which adds the handler to the axum router *and* its operation
//! to the document from the same annotation. [`crate::api::router`] builds the served
//! router only from this table, so a route cannot be served without being documented;
//! `control-plane/tests/openapi.rs` checks the table against the served document and
//! that every documented operation is really routed.
//!
//! The document's base ([`ApiDoc`]) adds what no handler carries: the title, the tags,
//! the error envelope and the three security schemes: `bearer_token` (a token from
//! `POST /v1/login`), `cloud_api_key` (HTTP Basic with a Cloud API key and secret) and
//! `cluster_api_key` (HTTP Basic with a cluster's API key, for Kafka REST).

use super::{
    api_keys, auth, clusters, environments, kafka, kafka_acls, kafka_groups, metrics,
    service_accounts, AppState,
};
use crate::error::ErrorEnvelope;
use crate::ratelimit::{self, RateLimiter};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The name of the bearer-token security scheme in the document.
pub const BEARER_SCHEME: &str = "bearer_token";
/// The name of the Cloud-API-key (HTTP Basic) security scheme in the document.
pub const CLOUD_API_KEY_SCHEME: &str = "cloud_api_key";
/// The name of the cluster-API-key (HTTP Basic) security scheme of Kafka REST.
pub const CLUSTER_API_KEY_SCHEME: &str = "cluster_api_key";

/// The document's base: everything that is not a route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary Cloud API",
        description = "Sign-up, login, environments, service accounts, API keys and Kafka \
            clusters, in Confluent Cloud's resource shapes, and Kafka REST v3 topics, consumer \
            groups (with their lag) and ACLs of each cluster. Every error answers \
            `ErrorEnvelope`. Lists of the Cloud API are keyset-paginated: `page_size` (1 to \
            100) and the `metadata.next` URL of the previous page; Kafka REST lists come whole.",
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-up and login (rate limited per client address)"),
        (name = "environments", description = "`/org/v2/environments`"),
        (name = "service-accounts", description = "`/iam/v2/service-accounts`"),
        (name = "api-keys", description = "`/iam/v2/api-keys`: Cloud API keys and cluster API keys"),
        (name = "clusters", description = "`/cmk/v2/clusters`: Kafka clusters and their provisioning"),
        (name = "kafka", description = "`/kafka/v3/clusters/{cluster_id}/...`: Kafka REST v3 of each cluster (topics, consumer groups and their lag, ACLs), with an API key of that cluster; groups and ACLs are asked of the cluster's brokers with that key, so its ACLs apply"),
        (name = "metrics", description = "`/v2/metrics/cloud/...`: Confluent's Metrics API v2 for the caller's clusters (bytes in and out, retained bytes, requests, connections, partitions), per cluster and per topic"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Adds the two ways to authenticate.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>` with the token from POST /v1/login",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLOUD_API_KEY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "HTTP Basic with a Cloud API key (one created without spec.resource) \
                         as the user and its secret as the password; cluster keys are refused",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLUSTER_API_KEY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "HTTP Basic with an API key of the cluster in the path (one created with \
                         spec.resource.id set to it) and its secret; Kafka REST only",
                    ))
                    .build(),
            ),
        );
    }
}

/// The served document, shared by the `/openapi.json` handler.
#[derive(Clone)]
pub(crate) struct Document(Arc<String>);

/// `GET /openapi.json`: this API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
    ),
)]
pub(crate) async fn openapi_json(Extension(doc): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// The one table of REST routes: each entry is one path and its methods, with the
/// handlers' OpenAPI operations. Sign-up and login carry the per-client-IP rate limit.
pub fn route_table(limiter: &Arc<RateLimiter>) -> Vec<UtoipaMethodRouter<AppState>> {
    let limited = |r: UtoipaMethodRouter<AppState>| {
        let limiter = limiter.clone();
        r.map(|m| {
            m.route_layer(axum::middleware::from_fn_with_state(
                limiter,
                ratelimit::limit,
            ))
        })
    };
    vec![
        limited(routes!(auth::signup)),
        limited(routes!(auth::login)),
        routes!(environments::list, environments::create),
        routes!(
            environments::get,
            environments::update,
            environments::delete
        ),
        routes!(service_accounts::list, service_accounts::create),
        routes!(
            service_accounts::get,
            service_accounts::update,
            service_accounts::delete
        ),
        routes!(api_keys::list, api_keys::create),
        routes!(api_keys::get, api_keys::update, api_keys::delete),
        routes!(clusters::list, clusters::create),
        routes!(clusters::get, clusters::update, clusters::delete),
        routes!(kafka::list_topics, kafka::create_topic),
        routes!(kafka::get_topic, kafka::delete_topic),
        routes!(kafka::list_topic_configs),
        routes!(kafka::get_topic_config),
        routes!(kafka_groups::list_groups),
        routes!(kafka_groups::get_group),
        routes!(kafka_groups::list_consumers),
        routes!(kafka_groups::get_consumer),
        routes!(kafka_groups::list_lags),
        routes!(kafka_groups::get_lag),
        routes!(kafka_groups::get_lag_summary),
        routes!(kafka_acls::search, kafka_acls::create, kafka_acls::delete),
        routes!(metrics::query),
        routes!(metrics::descriptors),
        routes!(openapi_json),
    ]
}

/// The router of every route in `table` and the document describing exactly them.
pub(crate) fn build(
    table: Vec<UtoipaMethodRouter<AppState>>,
) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    table
        .into_iter()
        .fold(
            OpenApiRouter::with_openapi(ApiDoc::openapi()),
            |r, entry| r.routes(entry),
        )
        .split_for_parts()
}

/// The API's OpenAPI document, as `GET /openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    let limiter = RateLimiter::new(Default::default());
    build(route_table(&limiter)).1
}

/// The document as the `/openapi.json` handler's extension.
pub(crate) fn document_extension(doc: &utoipa::openapi::OpenApi) -> Extension<Document> {
    let json = doc
        .to_json()
        .expect("an OpenAPI document built from typed parts serialises");
    Extension(Document(Arc::new(json)))
}
