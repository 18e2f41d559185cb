//! The five services of `tributary.controlplane.v1`, each RPC one call into
//! [`crate::service`]. What is checked here is only the message's shape (a required
//! sub-message that is absent), as serde does for REST bodies.

use super::convert;
use super::{caller, check_rate, page_request, Res};
use crate::error::Error;
use crate::service::api_keys::{KeyFilter, NewKey};
use crate::service::clusters::{ClusterChange, ConfigInput, NewClusterInput};
use crate::service::{self, auth, AppState};
use crate::util::rfc3339_millis;
use proto::controlplane::v1 as pb;
use proto::controlplane::v1::api_key_service_server::ApiKeyService;
use proto::controlplane::v1::auth_service_server::AuthService;
use proto::controlplane::v1::cluster_service_server::ClusterService;
use proto::controlplane::v1::environment_service_server::EnvironmentService;
use proto::controlplane::v1::service_account_service_server::ServiceAccountService;
use tonic::{Request, Response};

/// Every service over the shared state.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) state: AppState,
}

/// A required sub-message, or INVALID_ARGUMENT naming it.
fn required<T>(field: &str, value: Option<T>) -> Result<T, Error> {
    value.ok_or_else(|| Error::InvalidArgument(format!("{field} is required")))
}

fn config_input(c: pb::ClusterConfig) -> ConfigInput {
    ConfigInput {
        kind: c.kind,
        cku: c.cku,
    }
}

#[tonic::async_trait]
impl AuthService for Api {
    async fn signup(&self, req: Request<pb::SignupRequest>) -> Res<pb::SignupResponse> {
        check_rate(&self.state, &req)?;
        let r = req.into_inner();
        let done = auth::signup(
            &self.state,
            auth::Signup {
                email: r.email,
                password: r.password,
                organization_name: r.organization_name,
            },
        )
        .await?;
        Ok(Response::new(pb::SignupResponse {
            user_id: done.user_id,
            organization_id: done.organization_id,
        }))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> Res<pb::LoginResponse> {
        check_rate(&self.state, &req)?;
        let r = req.into_inner();
        let session = auth::login(&self.state, &r.email, r.password).await?;
        Ok(Response::new(pb::LoginResponse {
            token: session.token,
            expires_at: rfc3339_millis(session.expires_at),
        }))
    }
}

#[tonic::async_trait]
impl EnvironmentService for Api {
    async fn create_environment(
        &self,
        req: Request<pb::CreateEnvironmentRequest>,
    ) -> Res<pb::Environment> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let env = service::environments::create(&self.state, &who, &r.display_name).await?;
        Ok(Response::new(convert::environment(env)))
    }

    async fn list_environments(
        &self,
        req: Request<pb::ListEnvironmentsRequest>,
    ) -> Res<pb::ListEnvironmentsResponse> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let page = page_request(r.page_size, r.page_token);
        let envs = service::environments::list(&self.state, &who, &page).await?;
        let (data, next_page_token) = convert::page(envs, convert::environment);
        Ok(Response::new(pb::ListEnvironmentsResponse {
            data,
            next_page_token,
        }))
    }

    async fn get_environment(
        &self,
        req: Request<pb::GetEnvironmentRequest>,
    ) -> Res<pb::Environment> {
        let who = caller(&self.state, &req).await?;
        let env = service::environments::get(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(convert::environment(env)))
    }

    async fn update_environment(
        &self,
        req: Request<pb::UpdateEnvironmentRequest>,
    ) -> Res<pb::Environment> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let env =
            service::environments::update(&self.state, &who, &r.id, r.display_name.as_deref())
                .await?;
        Ok(Response::new(convert::environment(env)))
    }

    async fn delete_environment(
        &self,
        req: Request<pb::DeleteEnvironmentRequest>,
    ) -> Res<pb::DeleteEnvironmentResponse> {
        let who = caller(&self.state, &req).await?;
        service::environments::delete(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(pb::DeleteEnvironmentResponse {}))
    }
}

#[tonic::async_trait]
impl ClusterService for Api {
    async fn create_cluster(&self, req: Request<pb::CreateClusterRequest>) -> Res<pb::Cluster> {
        let who = caller(&self.state, &req).await?;
        let spec = required("spec", req.into_inner().spec)?;
        let config = required("spec.config", spec.config)?;
        let environment = required("spec.environment", spec.environment)?;
        let cluster = service::clusters::create(
            &self.state,
            &who,
            NewClusterInput {
                display_name: &spec.display_name,
                availability: &spec.availability,
                cloud: &spec.cloud,
                region: &spec.region,
                config: config_input(config),
                environment_id: &environment.id,
            },
        )
        .await?;
        Ok(Response::new(convert::cluster(&self.state, cluster)))
    }

    async fn list_clusters(
        &self,
        req: Request<pb::ListClustersRequest>,
    ) -> Res<pb::ListClustersResponse> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let page = page_request(r.page_size, r.page_token);
        let clusters =
            service::clusters::list(&self.state, &who, Some(r.environment.as_str()), &page).await?;
        let (data, next_page_token) = convert::page(clusters, |c| convert::cluster(&self.state, c));
        Ok(Response::new(pb::ListClustersResponse {
            data,
            next_page_token,
        }))
    }

    async fn get_cluster(&self, req: Request<pb::GetClusterRequest>) -> Res<pb::Cluster> {
        let who = caller(&self.state, &req).await?;
        let cluster = service::clusters::get(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(convert::cluster(&self.state, cluster)))
    }

    async fn update_cluster(&self, req: Request<pb::UpdateClusterRequest>) -> Res<pb::Cluster> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let spec = required("spec", r.spec)?;
        let environment = spec.environment.map(|e| e.id);
        let cluster = service::clusters::update(
            &self.state,
            &who,
            &r.id,
            ClusterChange {
                display_name: spec.display_name.as_deref(),
                config: spec.config.map(config_input),
                environment_id: environment.as_deref(),
            },
        )
        .await?;
        Ok(Response::new(convert::cluster(&self.state, cluster)))
    }

    async fn delete_cluster(
        &self,
        req: Request<pb::DeleteClusterRequest>,
    ) -> Res<pb::DeleteClusterResponse> {
        let who = caller(&self.state, &req).await?;
        service::clusters::delete(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(pb::DeleteClusterResponse {}))
    }
}

#[tonic::async_trait]
impl ServiceAccountService for Api {
    async fn create_service_account(
        &self,
        req: Request<pb::CreateServiceAccountRequest>,
    ) -> Res<pb::ServiceAccount> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let sa = service::service_accounts::create(
            &self.state,
            &who,
            &r.display_name,
            r.description.as_deref(),
        )
        .await?;
        Ok(Response::new(convert::service_account(sa)))
    }

    async fn list_service_accounts(
        &self,
        req: Request<pb::ListServiceAccountsRequest>,
    ) -> Res<pb::ListServiceAccountsResponse> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let page = page_request(r.page_size, r.page_token);
        let accounts = service::service_accounts::list(&self.state, &who, &page).await?;
        let (data, next_page_token) = convert::page(accounts, convert::service_account);
        Ok(Response::new(pb::ListServiceAccountsResponse {
            data,
            next_page_token,
        }))
    }

    async fn get_service_account(
        &self,
        req: Request<pb::GetServiceAccountRequest>,
    ) -> Res<pb::ServiceAccount> {
        let who = caller(&self.state, &req).await?;
        let sa = service::service_accounts::get(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(convert::service_account(sa)))
    }

    async fn update_service_account(
        &self,
        req: Request<pb::UpdateServiceAccountRequest>,
    ) -> Res<pb::ServiceAccount> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let sa = service::service_accounts::update(
            &self.state,
            &who,
            &r.id,
            r.display_name.as_deref(),
            r.description.as_deref(),
        )
        .await?;
        Ok(Response::new(convert::service_account(sa)))
    }

    async fn delete_service_account(
        &self,
        req: Request<pb::DeleteServiceAccountRequest>,
    ) -> Res<pb::DeleteServiceAccountResponse> {
        let who = caller(&self.state, &req).await?;
        service::service_accounts::delete(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(pb::DeleteServiceAccountResponse {}))
    }
}

#[tonic::async_trait]
impl ApiKeyService for Api {
    async fn create_api_key(&self, req: Request<pb::CreateApiKeyRequest>) -> Res<pb::ApiKey> {
        let who = caller(&self.state, &req).await?;
        let spec = required("spec", req.into_inner().spec)?;
        let owner = required("spec.owner", spec.owner)?;
        let resource = spec.resource.map(|r| r.id);
        let created = service::api_keys::create(
            &self.state,
            &who,
            NewKey {
                display_name: spec.display_name.as_deref(),
                description: spec.description.as_deref(),
                owner_id: &owner.id,
                resource_id: resource.as_deref(),
            },
        )
        .await?;
        Ok(Response::new(convert::api_key(
            created.key,
            Some(created.secret),
        )))
    }

    async fn list_api_keys(
        &self,
        req: Request<pb::ListApiKeysRequest>,
    ) -> Res<pb::ListApiKeysResponse> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let page = page_request(r.page_size, r.page_token);
        let filter = KeyFilter {
            owner: r.owner,
            resource: r.resource,
        };
        let keys = service::api_keys::list(&self.state, &who, &filter, &page).await?;
        let (data, next_page_token) = convert::page(keys, |k| convert::api_key(k, None));
        Ok(Response::new(pb::ListApiKeysResponse {
            data,
            next_page_token,
        }))
    }

    async fn get_api_key(&self, req: Request<pb::GetApiKeyRequest>) -> Res<pb::ApiKey> {
        let who = caller(&self.state, &req).await?;
        let key = service::api_keys::get(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(convert::api_key(key, None)))
    }

    async fn update_api_key(&self, req: Request<pb::UpdateApiKeyRequest>) -> Res<pb::ApiKey> {
        let who = caller(&self.state, &req).await?;
        let r = req.into_inner();
        let spec = required("spec", r.spec)?;
        let key = service::api_keys::update(
            &self.state,
            &who,
            &r.id,
            spec.display_name.as_deref(),
            spec.description.as_deref(),
        )
        .await?;
        Ok(Response::new(convert::api_key(key, None)))
    }

    async fn delete_api_key(
        &self,
        req: Request<pb::DeleteApiKeyRequest>,
    ) -> Res<pb::DeleteApiKeyResponse> {
        let who = caller(&self.state, &req).await?;
        service::api_keys::delete(&self.state, &who, &req.into_inner().id).await?;
        Ok(Response::new(pb::DeleteApiKeyResponse {}))
    }
}
