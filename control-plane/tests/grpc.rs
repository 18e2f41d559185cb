//! The gRPC face (`tributary.controlplane.v1`) with tonic's generated clients against real
//! servers, on SQLite and PostgreSQL: the happy path of every service, validation errors,
//! authentication failures, another organisation's ids (NOT_FOUND), pagination, the shared
//! sign-up/login rate limit, and that REST and gRPC answer the same errors for the same
//! request (one service layer).

mod common;

use common::{assert_error, start, start_with, test_config, unreachable_cell_config, Db, Server};
use control_plane::ratelimit::RateLimitConfig;
use proto::controlplane::v1 as pb;
use proto::controlplane::v1::api_key_service_client::ApiKeyServiceClient;
use proto::controlplane::v1::auth_service_client::AuthServiceClient;
use proto::controlplane::v1::cluster_service_client::ClusterServiceClient;
use proto::controlplane::v1::environment_service_client::EnvironmentServiceClient;
use proto::controlplane::v1::service_account_service_client::ServiceAccountServiceClient;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

on_every_backend!(
    happy_path,
    validation_errors,
    auth_failures,
    cross_organisation_is_not_found,
    pagination,
    rate_limit_is_shared_with_rest,
    same_errors_as_rest,
);

async fn channel(s: &Server) -> Channel {
    Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .expect("connect to the gRPC face")
}

/// The five clients over one channel.
struct Clients {
    auth: AuthServiceClient<Channel>,
    envs: EnvironmentServiceClient<Channel>,
    clusters: ClusterServiceClient<Channel>,
    sas: ServiceAccountServiceClient<Channel>,
    keys: ApiKeyServiceClient<Channel>,
}

async fn clients(s: &Server) -> Clients {
    let c = channel(s).await;
    Clients {
        auth: AuthServiceClient::new(c.clone()),
        envs: EnvironmentServiceClient::new(c.clone()),
        clusters: ClusterServiceClient::new(c.clone()),
        sas: ServiceAccountServiceClient::new(c.clone()),
        keys: ApiKeyServiceClient::new(c),
    }
}

/// `msg` with `authorization: <value>`.
fn with_auth<T>(msg: T, value: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", value.parse().expect("ASCII metadata"));
    req
}

fn bearer<T>(msg: T, token: &str) -> Request<T> {
    with_auth(msg, &format!("Bearer {token}"))
}

fn basic<T>(msg: T, key: &str, secret: &str) -> Request<T> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"));
    with_auth(msg, &format!("Basic {b64}"))
}

/// Asserts the status code; returns the message (which must say something).
fn expect_code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>, code: Code) -> String {
    let status = r.expect_err("an error status");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(!status.message().is_empty());
    status.message().to_string()
}

/// Signs up and logs in over gRPC; returns (token, user id, organisation id).
async fn account(c: &mut Clients, email: &str) -> (String, String, String) {
    let up = c
        .auth
        .signup(pb::SignupRequest {
            email: email.into(),
            password: "correct horse".into(),
            organization_name: "Acme".into(),
        })
        .await
        .expect("signup")
        .into_inner();
    let login = c
        .auth
        .login(pb::LoginRequest {
            email: email.into(),
            password: "correct horse".into(),
        })
        .await
        .expect("login")
        .into_inner();
    assert!(login.expires_at.ends_with('Z'), "{}", login.expires_at);
    (login.token, up.user_id, up.organization_id)
}

fn cluster_spec(env: &str, kind: &str, cku: Option<u32>) -> pb::CreateClusterRequest {
    pb::CreateClusterRequest {
        spec: Some(pb::ClusterCreateSpec {
            display_name: "orders".into(),
            availability: "SINGLE_ZONE".into(),
            cloud: "AWS".into(),
            region: "us-east-1".into(),
            config: Some(pb::ClusterConfig {
                kind: kind.into(),
                cku,
            }),
            environment: Some(pb::IdRef { id: env.into() }),
        }),
    }
}

fn key_spec(owner: &str, resource: Option<&str>) -> pb::CreateApiKeyRequest {
    pb::CreateApiKeyRequest {
        spec: Some(pb::ApiKeyCreateSpec {
            display_name: Some("key".into()),
            description: None,
            owner: Some(pb::IdRef { id: owner.into() }),
            resource: resource.map(|r| pb::IdRef { id: r.into() }),
        }),
    }
}

async fn happy_path(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let mut c = clients(&s).await;
    let (token, user, org) = account(&mut c, "grpc@example.com").await;

    // Environments.
    let env = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: " prod ".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(env.id.starts_with("env-"), "{}", env.id);
    assert_eq!(
        (env.api_version.as_str(), env.kind.as_str()),
        ("org/v2", "Environment")
    );
    assert_eq!(env.display_name, "prod");
    let meta = env.metadata.clone().unwrap();
    assert_eq!(
        meta.resource_name,
        format!(
            "crn://tributary.cloud/organization={org}/environment={}",
            env.id
        )
    );
    assert!(meta.created_at.ends_with('Z'));
    let got = c
        .envs
        .get_environment(bearer(
            pb::GetEnvironmentRequest { id: env.id.clone() },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, env);
    let renamed = c
        .envs
        .update_environment(bearer(
            pb::UpdateEnvironmentRequest {
                id: env.id.clone(),
                display_name: Some("production".into()),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.display_name, "production");
    // REST sees what gRPC made: one service layer, one store.
    let rest = s
        .get_json(&s.url(&format!("/org/v2/environments/{}", env.id)), &token)
        .await;
    assert_eq!(rest["display_name"], "production");
    assert_eq!(rest["metadata"]["resource_name"], meta.resource_name);

    // Service accounts.
    let sa = c
        .sas
        .create_service_account(bearer(
            pb::CreateServiceAccountRequest {
                display_name: "robot".into(),
                description: Some("loads orders".into()),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(sa.id.starts_with("sa-"));
    assert_eq!(sa.description, "loads orders");
    let sa = c
        .sas
        .update_service_account(bearer(
            pb::UpdateServiceAccountRequest {
                id: sa.id.clone(),
                display_name: None,
                description: Some("loads everything".into()),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (sa.display_name.as_str(), sa.description.as_str()),
        ("robot", "loads everything")
    );

    // A Cloud API key for the service account authenticates the gRPC face as HTTP Basic.
    let cloud = c
        .keys
        .create_api_key(bearer(key_spec(&sa.id, None), &token))
        .await
        .unwrap()
        .into_inner();
    let cloud_spec = cloud.spec.clone().unwrap();
    let secret = cloud_spec.secret.clone().expect("the secret, once");
    assert!(cloud_spec.resource.is_none());
    assert_eq!(cloud_spec.owner.unwrap().kind, "ServiceAccount");
    assert_eq!(cloud.status.as_ref().unwrap().phase, "READY");
    let listed = c
        .envs
        .list_environments(basic(
            pb::ListEnvironmentsRequest::default(),
            &cloud.id,
            &secret,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.next_page_token, "");
    let again = c
        .keys
        .get_api_key(bearer(
            pb::GetApiKeyRequest {
                id: cloud.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.spec.unwrap().secret, None, "the secret is shown once");

    // Clusters (the cell is unreachable: it stays PROVISIONING).
    let cluster = c
        .clusters
        .create_cluster(bearer(cluster_spec(&env.id, "Dedicated", Some(2)), &token))
        .await
        .unwrap()
        .into_inner();
    assert!(cluster.id.starts_with("lkc-"));
    let spec = cluster.spec.clone().unwrap();
    assert_eq!(spec.config.clone().unwrap().cku, Some(2));
    assert_eq!(spec.environment.unwrap().id, env.id);
    assert!(spec.kafka_bootstrap_endpoint.is_none());
    assert_eq!(cluster.status.as_ref().unwrap().phase, "PROVISIONING");
    let listed = c
        .clusters
        .list_clusters(bearer(
            pb::ListClustersRequest {
                environment: env.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.data.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&cluster.id]
    );
    let resized = c
        .clusters
        .update_cluster(bearer(
            pb::UpdateClusterRequest {
                id: cluster.id.clone(),
                spec: Some(pb::ClusterUpdateSpec {
                    display_name: Some("orders-eu".into()),
                    config: Some(pb::ClusterConfig {
                        kind: "Dedicated".into(),
                        cku: Some(3),
                    }),
                    environment: None,
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let spec = resized.spec.unwrap();
    assert_eq!(spec.display_name, "orders-eu");
    assert_eq!(spec.config.unwrap().cku, Some(3));

    // A cluster key owned by the user.
    let ck = c
        .keys
        .create_api_key(bearer(key_spec(&user, Some(&cluster.id)), &token))
        .await
        .unwrap()
        .into_inner();
    let ck_spec = ck.spec.clone().unwrap();
    assert_eq!(ck_spec.resource.unwrap().id, cluster.id);
    assert_eq!(ck_spec.owner.unwrap().kind, "User");
    assert_eq!(ck.status.unwrap().phase, "PROPAGATING");
    let filtered = c
        .keys
        .list_api_keys(bearer(
            pb::ListApiKeysRequest {
                resource: Some(cluster.id.clone()),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        filtered.data.iter().map(|k| &k.id).collect::<Vec<_>>(),
        vec![&ck.id]
    );
    let updated = c
        .keys
        .update_api_key(bearer(
            pb::UpdateApiKeyRequest {
                id: ck.id.clone(),
                spec: Some(pb::ApiKeyUpdateSpec {
                    display_name: None,
                    description: Some("for the orders service".into()),
                }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.spec.unwrap().description, "for the orders service");

    // Tear everything down, in the order the rules require.
    for id in [&ck.id, &cloud.id] {
        c.keys
            .delete_api_key(bearer(pb::DeleteApiKeyRequest { id: id.clone() }, &token))
            .await
            .unwrap();
    }
    c.clusters
        .delete_cluster(bearer(
            pb::DeleteClusterRequest {
                id: cluster.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
    let r = c
        .clusters
        .get_cluster(bearer(
            pb::GetClusterRequest {
                id: cluster.id.clone(),
            },
            &token,
        ))
        .await;
    expect_code(r, Code::NotFound);
    c.sas
        .delete_service_account(bearer(
            pb::DeleteServiceAccountRequest { id: sa.id.clone() },
            &token,
        ))
        .await
        .unwrap();
    c.envs
        .delete_environment(bearer(
            pb::DeleteEnvironmentRequest { id: env.id.clone() },
            &token,
        ))
        .await
        .unwrap();
    let r = c
        .envs
        .get_environment(bearer(pb::GetEnvironmentRequest { id: env.id }, &token))
        .await;
    expect_code(r, Code::NotFound);
}

async fn validation_errors(db: Db) {
    let s = start(&db).await;
    let mut c = clients(&s).await;
    let (token, user, _) = account(&mut c, "valid@example.com").await;

    let r = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: "  ".into(),
            },
            &token,
        ))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("display_name must not be empty"), "{msg}");

    let env = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: "prod".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let r = c
        .clusters
        .create_cluster(bearer(cluster_spec(&env.id, "Dedicated", None), &token))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("spec.config.cku"), "{msg}");
    let r = c
        .clusters
        .create_cluster(bearer(cluster_spec(&env.id, "Basic", Some(2)), &token))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("only to Dedicated"), "{msg}");
    let r = c
        .clusters
        .create_cluster(bearer(pb::CreateClusterRequest { spec: None }, &token))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("spec is required"), "{msg}");
    let r = c
        .clusters
        .list_clusters(bearer(pb::ListClustersRequest::default(), &token))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("environment"), "{msg}");
    let r = c
        .sas
        .list_service_accounts(bearer(
            pb::ListServiceAccountsRequest {
                page_size: 101,
                ..Default::default()
            },
            &token,
        ))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("use 1 to 100"), "{msg}");
    let r = c
        .keys
        .create_api_key(bearer(key_spec("u-bad id", None), &token))
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("spec.owner.id"), "{msg}");
    let r = c
        .auth
        .signup(pb::SignupRequest {
            email: "not-an-email".into(),
            password: "correct horse".into(),
            organization_name: "O".into(),
        })
        .await;
    let msg = expect_code(r, Code::InvalidArgument);
    assert!(msg.contains("name@example.com"), "{msg}");

    // A taken email or name is ALREADY_EXISTS; a state that forbids the change is
    // FAILED_PRECONDITION.
    let r = c
        .auth
        .signup(pb::SignupRequest {
            email: "valid@example.com".into(),
            password: "correct horse".into(),
            organization_name: "O".into(),
        })
        .await;
    let msg = expect_code(r, Code::AlreadyExists);
    assert!(msg.contains("log in instead"), "{msg}");
    let sa = pb::CreateServiceAccountRequest {
        display_name: "robot".into(),
        description: None,
    };
    c.sas
        .create_service_account(bearer(sa.clone(), &token))
        .await
        .unwrap();
    let r = c.sas.create_service_account(bearer(sa, &token)).await;
    expect_code(r, Code::AlreadyExists);
    c.clusters
        .create_cluster(bearer(cluster_spec(&env.id, "Basic", None), &token))
        .await
        .unwrap();
    let r = c
        .envs
        .delete_environment(bearer(pb::DeleteEnvironmentRequest { id: env.id }, &token))
        .await;
    let msg = expect_code(r, Code::FailedPrecondition);
    assert!(msg.contains("delete them first"), "{msg}");
    // The user exists; keys for it are fine.
    c.keys
        .create_api_key(bearer(key_spec(&user, None), &token))
        .await
        .unwrap();
}

async fn auth_failures(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let mut c = clients(&s).await;
    let (token, user, _) = account(&mut c, "auth@example.com").await;

    let r = c
        .envs
        .list_environments(Request::new(pb::ListEnvironmentsRequest::default()))
        .await;
    let msg = expect_code(r, Code::Unauthenticated);
    assert!(msg.contains("missing Authorization"), "{msg}");
    for value in ["Bearer nope", "Token abc", "Bearer", "Basic !!!"] {
        let r = c
            .envs
            .list_environments(with_auth(pb::ListEnvironmentsRequest::default(), value))
            .await;
        expect_code(r, Code::Unauthenticated);
    }
    let r = c
        .auth
        .login(pb::LoginRequest {
            email: "auth@example.com".into(),
            password: "wrong horse".into(),
        })
        .await;
    let msg = expect_code(r, Code::Unauthenticated);
    assert_eq!(msg, "wrong email or password");

    // A Cloud API key with a wrong secret, and a cluster key with the right one.
    let cloud = c
        .keys
        .create_api_key(bearer(key_spec(&user, None), &token))
        .await
        .unwrap()
        .into_inner();
    let r = c
        .sas
        .list_service_accounts(basic(
            pb::ListServiceAccountsRequest::default(),
            &cloud.id,
            "not-the-secret",
        ))
        .await;
    expect_code(r, Code::Unauthenticated);
    let env = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: "prod".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let cluster = c
        .clusters
        .create_cluster(bearer(cluster_spec(&env.id, "Standard", None), &token))
        .await
        .unwrap()
        .into_inner();
    let ck = c
        .keys
        .create_api_key(bearer(key_spec(&user, Some(&cluster.id)), &token))
        .await
        .unwrap()
        .into_inner();
    let secret = ck.spec.unwrap().secret.unwrap();
    let r = c
        .envs
        .list_environments(basic(
            pb::ListEnvironmentsRequest::default(),
            &ck.id,
            &secret,
        ))
        .await;
    let msg = expect_code(r, Code::Unauthenticated);
    assert!(msg.contains("cluster API key"), "{msg}");
    // A deleted Cloud API key stops working.
    let secret = cloud.spec.unwrap().secret.unwrap();
    c.keys
        .delete_api_key(bearer(
            pb::DeleteApiKeyRequest {
                id: cloud.id.clone(),
            },
            &token,
        ))
        .await
        .unwrap();
    let r = c
        .envs
        .list_environments(basic(
            pb::ListEnvironmentsRequest::default(),
            &cloud.id,
            &secret,
        ))
        .await;
    expect_code(r, Code::Unauthenticated);
}

async fn cross_organisation_is_not_found(db: Db) {
    let s = start_with(&db, unreachable_cell_config(Duration::from_secs(60)).await).await;
    let mut c = clients(&s).await;
    let (a, a_user, _) = account(&mut c, "a@example.com").await;
    let (b, _, _) = account(&mut c, "b@example.com").await;
    let env = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: "prod".into(),
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    let sa = c
        .sas
        .create_service_account(bearer(
            pb::CreateServiceAccountRequest {
                display_name: "robot".into(),
                description: None,
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    let cluster = c
        .clusters
        .create_cluster(bearer(cluster_spec(&env, "Basic", None), &a))
        .await
        .unwrap()
        .into_inner()
        .id;
    let key = c
        .keys
        .create_api_key(bearer(key_spec(&a_user, Some(&cluster)), &a))
        .await
        .unwrap()
        .into_inner()
        .id;

    // B names every one of A's ids, by every RPC that takes one.
    let nf = |r: Result<(), Status>| {
        let s = r.expect_err("NOT_FOUND");
        assert_eq!(s.code(), Code::NotFound, "{s:?}");
    };
    nf(c.envs
        .get_environment(bearer(pb::GetEnvironmentRequest { id: env.clone() }, &b))
        .await
        .map(drop));
    nf(c.envs
        .update_environment(bearer(
            pb::UpdateEnvironmentRequest {
                id: env.clone(),
                display_name: Some("mine".into()),
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.envs
        .delete_environment(bearer(pb::DeleteEnvironmentRequest { id: env.clone() }, &b))
        .await
        .map(drop));
    nf(c.clusters
        .list_clusters(bearer(
            pb::ListClustersRequest {
                environment: env.clone(),
                ..Default::default()
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.clusters
        .create_cluster(bearer(cluster_spec(&env, "Basic", None), &b))
        .await
        .map(drop));
    nf(c.clusters
        .get_cluster(bearer(
            pb::GetClusterRequest {
                id: cluster.clone(),
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.clusters
        .update_cluster(bearer(
            pb::UpdateClusterRequest {
                id: cluster.clone(),
                spec: Some(pb::ClusterUpdateSpec {
                    display_name: Some("mine".into()),
                    ..Default::default()
                }),
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.clusters
        .delete_cluster(bearer(
            pb::DeleteClusterRequest {
                id: cluster.clone(),
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.sas
        .get_service_account(bearer(pb::GetServiceAccountRequest { id: sa.clone() }, &b))
        .await
        .map(drop));
    nf(c.sas
        .update_service_account(bearer(
            pb::UpdateServiceAccountRequest {
                id: sa.clone(),
                display_name: Some("mine".into()),
                description: None,
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.sas
        .delete_service_account(bearer(
            pb::DeleteServiceAccountRequest { id: sa.clone() },
            &b,
        ))
        .await
        .map(drop));
    nf(c.keys
        .get_api_key(bearer(pb::GetApiKeyRequest { id: key.clone() }, &b))
        .await
        .map(drop));
    nf(c.keys
        .update_api_key(bearer(
            pb::UpdateApiKeyRequest {
                id: key.clone(),
                spec: Some(pb::ApiKeyUpdateSpec::default()),
            },
            &b,
        ))
        .await
        .map(drop));
    nf(c.keys
        .delete_api_key(bearer(pb::DeleteApiKeyRequest { id: key.clone() }, &b))
        .await
        .map(drop));
    nf(c.keys
        .create_api_key(bearer(key_spec(&sa, None), &b))
        .await
        .map(drop));
    nf(c.keys
        .create_api_key(bearer(key_spec(&a_user, None), &b))
        .await
        .map(drop));
    // B's lists show none of A's resources.
    let keys = c
        .keys
        .list_api_keys(bearer(
            pb::ListApiKeysRequest {
                resource: Some(cluster.clone()),
                ..Default::default()
            },
            &b,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(keys.data.is_empty());
    let sas = c
        .sas
        .list_service_accounts(bearer(pb::ListServiceAccountsRequest::default(), &b))
        .await
        .unwrap()
        .into_inner();
    assert!(sas.data.is_empty());
    // A's resources are untouched.
    let still = c
        .clusters
        .get_cluster(bearer(pb::GetClusterRequest { id: cluster }, &a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.spec.unwrap().display_name, "orders");
}

async fn pagination(db: Db) {
    let s = start(&db).await;
    let mut c = clients(&s).await;
    let (token, _, _) = account(&mut c, "pages@example.com").await;
    let mut made = BTreeSet::new();
    for i in 0..7 {
        let sa = c
            .sas
            .create_service_account(bearer(
                pb::CreateServiceAccountRequest {
                    display_name: format!("robot-{i}"),
                    description: None,
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        made.insert(sa.id);
    }
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    let mut token_in = String::new();
    loop {
        let page = c
            .sas
            .list_service_accounts(bearer(
                pb::ListServiceAccountsRequest {
                    page_size: 3,
                    page_token: token_in.clone(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        sizes.push(page.data.len());
        seen.extend(page.data.into_iter().map(|sa| sa.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token_in = page.next_page_token;
        assert!(sizes.len() < 10, "too many pages");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen.len(), 7, "no item twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), made);
    // page_size 0 is the default (10): one page.
    let all = c
        .sas
        .list_service_accounts(bearer(pb::ListServiceAccountsRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.data.len(), 7);
    assert!(all.next_page_token.is_empty());
    // Tokens are checked: another resource's token, or garbage, is INVALID_ARGUMENT.
    for bad in ["garbage", "12.env-abc123", "-1.sa-abc123"] {
        let r = c
            .sas
            .list_service_accounts(bearer(
                pb::ListServiceAccountsRequest {
                    page_size: 3,
                    page_token: bad.into(),
                },
                &token,
            ))
            .await;
        let msg = expect_code(r, Code::InvalidArgument);
        assert!(msg.contains("page_token"), "{bad}: {msg}");
    }
    let r = c
        .envs
        .list_environments(bearer(
            pb::ListEnvironmentsRequest {
                page_size: -1,
                ..Default::default()
            },
            &token,
        ))
        .await;
    expect_code(r, Code::InvalidArgument);
}

async fn rate_limit_is_shared_with_rest(db: Db) {
    let mut config = test_config();
    config.auth_rate_limit = RateLimitConfig {
        burst: 3,
        per_second: 0.001,
        max_clients: 100,
    };
    let s = start_with(&db, config).await;
    let mut c = clients(&s).await;
    let login = pb::LoginRequest {
        email: "nobody@example.com".into(),
        password: "correct horse".into(),
    };
    for _ in 0..2 {
        let r = c.auth.login(login.clone()).await;
        expect_code(r, Code::Unauthenticated);
    }
    // The third attempt from this address goes through REST, the fourth is refused on
    // both faces.
    assert_eq!(
        s.login("nobody@example.com", "correct horse")
            .await
            .status(),
        401
    );
    let r = c.auth.login(login).await;
    let msg = expect_code(r, Code::ResourceExhausted);
    assert!(msg.contains("wait a few seconds"), "{msg}");
    let r = c
        .auth
        .signup(pb::SignupRequest {
            email: "new@example.com".into(),
            password: "correct horse".into(),
            organization_name: "O".into(),
        })
        .await;
    expect_code(r, Code::ResourceExhausted);
    assert_error(
        s.login("nobody@example.com", "correct horse").await,
        429,
        "rate_limited",
    )
    .await;
}

/// The same request through both faces fails with the same detail, because both call the
/// same service function.
async fn same_errors_as_rest(db: Db) {
    let s = start(&db).await;
    let mut c = clients(&s).await;
    let (token, _, _) = account(&mut c, "same@example.com").await;
    let res = s
        .post(
            "/org/v2/environments",
            &token,
            &json!({"display_name": "x".repeat(300)}),
        )
        .await;
    let rest = assert_error(res, 400, "invalid_argument").await;
    let r = c
        .envs
        .create_environment(bearer(
            pb::CreateEnvironmentRequest {
                display_name: "x".repeat(300),
            },
            &token,
        ))
        .await;
    assert_eq!(expect_code(r, Code::InvalidArgument), rest);

    let res = s
        .http
        .get(s.url("/iam/v2/service-accounts/sa-nothere"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let rest = assert_error(res, 404, "not_found").await;
    let r = c
        .sas
        .get_service_account(bearer(
            pb::GetServiceAccountRequest {
                id: "sa-nothere".into(),
            },
            &token,
        ))
        .await;
    assert_eq!(expect_code(r, Code::NotFound), rest);

    let res = s
        .http
        .get(s.url("/org/v2/environments"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    let rest = assert_error(res, 401, "unauthenticated").await;
    let r = c
        .envs
        .list_environments(bearer(pb::ListEnvironmentsRequest::default(), "nope"))
        .await;
    assert_eq!(expect_code(r, Code::Unauthenticated), rest);
}
