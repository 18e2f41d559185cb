//! Kafka clusters: create, list (by environment, required), get, update (name; kind and
//! CKU changes), delete.
//!
//! A new cluster is PROVISIONING; the reconciler (`crate::reconciler`) places it in a cell
//! and makes it PROVISIONED (with its bootstrap) or FAILED (with a reason). A delete
//! revokes the cluster's keys and hides it at once; the reconciler removes it from its
//! cell. Another organisation's cluster is not found.

use super::auth::validate_name;
use super::environments;
use super::page::page_of;
use super::{AppState, Page, PageRequest};
use crate::error::{Error, Result};
use crate::plans::ClusterKind;
use crate::store::{Cluster, ClusterUpdate, NewCluster, Phase, Principal};

/// The most CKUs a Dedicated cluster may have.
pub const MAX_CKU: u32 = 100;
const AVAILABILITIES: [&str; 2] = ["SINGLE_ZONE", "MULTI_ZONE"];

/// `spec.config` as asked: a kind, and the CKUs of a Dedicated cluster.
#[derive(Clone, Debug)]
pub struct ConfigInput {
    pub kind: String,
    pub cku: Option<u32>,
}

/// A cluster as asked for.
pub struct NewClusterInput<'a> {
    pub display_name: &'a str,
    pub availability: &'a str,
    pub cloud: &'a str,
    pub region: &'a str,
    pub config: ConfigInput,
    pub environment_id: &'a str,
}

/// A change to a cluster; `None`: unchanged.
#[derive(Default)]
pub struct ClusterChange<'a> {
    pub display_name: Option<&'a str>,
    pub config: Option<ConfigInput>,
    /// Must be the cluster's own environment if given (clusters do not move).
    pub environment_id: Option<&'a str>,
}

/// The CKUs a cluster shows (Dedicated only).
pub fn shown_cku(c: &Cluster) -> Option<u32> {
    (c.kind == ClusterKind::Dedicated).then_some(c.cku)
}

/// The Kafka bootstrap a cluster shows once PROVISIONED: its cell's SASL_SSL listeners
/// when the cell has them, else its SASL_PLAINTEXT ones.
pub fn bootstrap_endpoint(c: &Cluster) -> Option<String> {
    (c.phase == Phase::Provisioned).then(|| {
        if c.ssl_bootstrap.is_empty() {
            format!("SASL_PLAINTEXT://{}", c.bootstrap)
        } else {
            format!("SASL_SSL://{}", c.ssl_bootstrap)
        }
    })
}

pub(crate) fn not_found(id: &str) -> Error {
    Error::NotFound(format!(
        "cluster {id} not found; list yours with GET /cmk/v2/clusters?environment=ENV_ID"
    ))
}

/// Checks `cloud` or `region`: 1 to 64 letters, digits, '-' or '_'.
fn validate_token(field: &str, value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::InvalidArgument(format!(
            "spec.{field} {value:?} is not valid; use 1 to 64 letters, digits, '-' or '_' \
             (e.g. cloud AWS, region us-east-1)"
        )))
    }
}

/// Checks kind and CKUs against availability: CKUs only (and always) for Dedicated, 1 to
/// [`MAX_CKU`], at least 2 when MULTI_ZONE; Basic is SINGLE_ZONE only. Returns the kind
/// and the CKU count to store (0 unless Dedicated).
fn validate_config(config: &ConfigInput, availability: &str) -> Result<(ClusterKind, u32)> {
    let kind: ClusterKind = config.kind.parse()?;
    if kind == ClusterKind::Basic && availability == "MULTI_ZONE" {
        return Err(Error::InvalidArgument(
            "Basic clusters are SINGLE_ZONE only; use Standard or above for MULTI_ZONE".into(),
        ));
    }
    match (kind, config.cku) {
        (ClusterKind::Dedicated, None) => Err(Error::InvalidArgument(
            "a Dedicated cluster needs spec.config.cku (1 or more)".into(),
        )),
        (ClusterKind::Dedicated, Some(cku)) if !(1..=MAX_CKU).contains(&cku) => {
            Err(Error::InvalidArgument(format!(
                "spec.config.cku {cku} is out of range; use 1 to {MAX_CKU}"
            )))
        }
        (ClusterKind::Dedicated, Some(1)) if availability == "MULTI_ZONE" => Err(
            Error::InvalidArgument("a MULTI_ZONE Dedicated cluster needs at least 2 CKUs".into()),
        ),
        (ClusterKind::Dedicated, Some(cku)) => Ok((kind, cku)),
        (_, Some(_)) => Err(Error::InvalidArgument(format!(
            "spec.config.cku applies only to Dedicated clusters; remove it for {kind}"
        ))),
        (_, None) => Ok((kind, 0)),
    }
}

fn validate_availability(value: &str) -> Result<String> {
    if AVAILABILITIES.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(Error::InvalidArgument(format!(
            "spec.availability {value:?} is not valid; use SINGLE_ZONE or MULTI_ZONE"
        )))
    }
}

pub async fn create(
    state: &AppState,
    caller: &Principal,
    new: NewClusterInput<'_>,
) -> Result<Cluster> {
    let org = &caller.organization_id;
    let display_name = validate_name("spec.display_name", new.display_name)?;
    let availability = validate_availability(new.availability)?;
    let cloud = validate_token("cloud", new.cloud)?;
    let region = validate_token("region", new.region)?;
    let (kind, cku) = validate_config(&new.config, &availability)?;
    let env = state
        .store
        .get_environment(org, new.environment_id)
        .await?
        .ok_or_else(|| environments::not_found(new.environment_id))?;
    let plan_version = state
        .store
        .ensure_plan(kind, &state.config.plans.get(kind))
        .await?;
    let cluster = state
        .store
        .create_cluster(&NewCluster {
            organization_id: org,
            environment_id: &env.id,
            display_name: &display_name,
            availability: &availability,
            cloud: &cloud,
            region: &region,
            kind,
            cku,
            plan_version,
        })
        .await?;
    tracing::info!(organization_id = %org, cluster = %cluster.id, %kind, cku, "cluster created");
    state.provisioner.wake();
    Ok(cluster)
}

/// A page of the clusters of `environment` (required).
pub async fn list(
    state: &AppState,
    caller: &Principal,
    environment: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Cluster>> {
    let org = &caller.organization_id;
    let env_id = environment.filter(|e| !e.is_empty()).ok_or_else(|| {
        Error::InvalidArgument(
            "the environment query parameter is required, e.g. GET /cmk/v2/clusters?environment=env-abc123"
                .into(),
        )
    })?;
    let (size, cursor) = page.checked("lkc-")?;
    let env = state
        .store
        .get_environment(org, env_id)
        .await?
        .ok_or_else(|| environments::not_found(env_id))?;
    let clusters = state
        .store
        .list_clusters(org, &env.id, cursor.as_ref(), size + 1)
        .await?;
    Ok(page_of(clusters, size, |c| (c.created_at, c.id.as_str())))
}

pub async fn get(state: &AppState, caller: &Principal, id: &str) -> Result<Cluster> {
    state
        .store
        .get_cluster(&caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn update(
    state: &AppState,
    caller: &Principal,
    id: &str,
    change: ClusterChange<'_>,
) -> Result<Cluster> {
    let org = &caller.organization_id;
    let current = state
        .store
        .get_cluster(org, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Some(env) = change.environment_id {
        if env != current.environment_id {
            return Err(Error::InvalidArgument(format!(
                "cluster {id} is in environment {}; clusters cannot move between environments",
                current.environment_id
            )));
        }
    }
    let display_name = change
        .display_name
        .map(|n| validate_name("spec.display_name", n))
        .transpose()?;
    let config = match &change.config {
        None => None,
        Some(config) => {
            let (kind, cku) = validate_config(config, &current.availability)?;
            if (kind, cku) == (current.kind, current.cku) {
                None
            } else {
                check_change(&current, kind)?;
                let limits = state.config.plans.get(kind);
                Some((kind, cku, state.store.ensure_plan(kind, &limits).await?))
            }
        }
    };
    let resized = config.is_some();
    let cluster = state
        .store
        .update_cluster(
            org,
            id,
            &ClusterUpdate {
                display_name: display_name.as_deref(),
                config,
            },
        )
        .await?
        .ok_or_else(|| not_found(id))?;
    if resized {
        tracing::info!(organization_id = %org, cluster = %id, kind = %cluster.kind, cku = cluster.cku, "cluster config changed");
        state.provisioner.wake();
    }
    Ok(cluster)
}

/// Which config changes are allowed: none on a FAILED cluster; kind only Basic to
/// Standard (as Confluent Cloud allows); CKUs of Dedicated within the validated range.
fn check_change(current: &Cluster, kind: ClusterKind) -> Result<()> {
    if current.phase == Phase::Failed {
        return Err(Error::Conflict(format!(
            "cluster {} FAILED; its config cannot change. Delete it and create a new one",
            current.id
        )));
    }
    let allowed = kind == current.kind
        || (current.kind == ClusterKind::Basic && kind == ClusterKind::Standard);
    if allowed {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "changing a {} cluster to {kind} is not supported; only Basic to Standard, or the \
             CKUs of a Dedicated cluster",
            current.kind
        )))
    }
}

pub async fn delete(state: &AppState, caller: &Principal, id: &str) -> Result<()> {
    let cluster = state
        .store
        .begin_delete_cluster(&caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    tracing::info!(organization_id = %caller.organization_id, cluster = %id, cell = %cluster.cell_id, "cluster deleted");
    state.provisioner.wake();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provisioned(bootstrap: &str, ssl_bootstrap: &str) -> Cluster {
        Cluster {
            id: "lkc-1".into(),
            organization_id: "org-1".into(),
            environment_id: "env-1".into(),
            display_name: "orders".into(),
            availability: "SINGLE_ZONE".into(),
            cloud: "AWS".into(),
            region: "local".into(),
            kind: ClusterKind::Basic,
            cku: 0,
            plan_version: 1,
            phase: Phase::Provisioned,
            reason: String::new(),
            cell_id: "cell-1".into(),
            bootstrap: bootstrap.into(),
            ssl_bootstrap: ssl_bootstrap.into(),
            spec_generation: 1,
            applied_generation: 1,
            attempts: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn tenants_are_shown_sasl_ssl_when_the_cell_has_it() {
        let plain = provisioned("h:9102,h:9103", "");
        assert_eq!(
            bootstrap_endpoint(&plain).as_deref(),
            Some("SASL_PLAINTEXT://h:9102,h:9103")
        );
        let tls = provisioned("h:9102,h:9103", "h:9107,h:9108");
        assert_eq!(
            bootstrap_endpoint(&tls).as_deref(),
            Some("SASL_SSL://h:9107,h:9108")
        );
        let waiting = Cluster {
            phase: Phase::Provisioning,
            ..tls
        };
        assert_eq!(bootstrap_endpoint(&waiting), None);
    }
}
