//! The provisioning reconciler: drives every cluster to what its row asks of its cell.
//!
//! - PROVISIONING: place it (see [`crate::placement`]), record the cell *before* asking
//!   it, `CreateLogicalCluster` with the plan's limits (idempotent by cluster id), record
//!   the bootstraps from `CellLoad.sasl_bootstrap` and `sasl_ssl_bootstrap` (tenants are
//!   shown SASL_SSL when the cell has it), and go PROVISIONED; then push its keys.
//!   Failures retry with capped exponential backoff; past the provisioning timeout the
//!   cluster goes FAILED with the last reason.
//! - PROVISIONED with a new kind or CKU count: `CreateLogicalCluster` again with the new
//!   limits (the controller treats it as an update of the same cluster).
//! - DELETING: `DeleteCredential` for each of its keys, `DeleteLogicalCluster`, then
//!   forget it.
//! - Unsynced API keys: see [`crate::propagate`].
//!
//! All state lives in the database, so a crash mid-way resumes on the next start; the
//! task may be cancelled at any await (a resent create or delete is idempotent). One
//! reconciler per database is assumed (several would only duplicate idempotent calls).

use crate::api::AppState;
use crate::cells::{CallTimeouts, CellClient, Cells};
use crate::error::{Error, Result};
use crate::plans::ClusterKind;
use crate::propagate::{check_change, sync_key};
use crate::store::{Cluster, Phase, Store};
use crate::util::now_millis;
use proto::cell::v1::{
    CreateLogicalClusterRequest, DeleteLogicalClusterRequest, GetCellLoadRequest,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

/// Settings of provisioning and propagation.
#[derive(Clone, Copy, Debug)]
pub struct ProvisioningConfig {
    /// How long a cluster may stay PROVISIONING before it goes FAILED.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub rpc_timeout: Duration,
    /// First retry delay; doubles per failed attempt up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A cell at or above this load (0.0..1.0) takes no new cluster.
    pub max_cell_load: f64,
    /// How often the reconciler looks for work when nobody wakes it.
    pub tick: Duration,
    /// Most clusters, and most keys, handled per pass.
    pub batch: i64,
    /// How long an API call waits for a key's push before answering anyway (the
    /// reconciler keeps trying).
    pub sync_budget: Duration,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(3),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            max_cell_load: 0.8,
            tick: Duration::from_secs(1),
            batch: 100,
            sync_budget: Duration::from_millis(1500),
        }
    }
}

/// Number of lock stripes serialising pushes of the same key.
const KEY_LOCK_STRIPES: usize = 64;

/// What the API and the reconciler share for provisioning: the cells' clients, the
/// per-key push locks, and the reconciler's wake-up.
pub struct Provisioner {
    pub cells: Cells,
    pub config: ProvisioningConfig,
    wake: Notify,
    key_locks: Vec<Mutex<()>>,
}

impl Provisioner {
    pub fn new(cells: &[crate::cells::CellConfig], config: ProvisioningConfig) -> Provisioner {
        let timeouts = CallTimeouts {
            connect: config.connect_timeout,
            rpc: config.rpc_timeout,
        };
        Provisioner {
            cells: Cells::new(cells, timeouts),
            config,
            wake: Notify::new(),
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Asks the reconciler for a pass now (e.g. after a create or delete).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn key_lock(&self, key_id: &str) -> &Mutex<()> {
        let h = key_id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.key_locks[h % KEY_LOCK_STRIPES]
    }

    pub(crate) fn cell(&self, id: &str) -> Result<&Arc<CellClient>> {
        self.cells.get(id).ok_or_else(|| {
            Error::Unavailable(format!(
                "cell {id} is not configured in this control plane; add it with --cell {id}=ADDR"
            ))
        })
    }

    /// The delay before retry number `attempts + 1`.
    pub(crate) fn backoff_millis(&self, attempts: i64) -> i64 {
        let min = self.config.min_backoff.as_millis() as i64;
        let max = self.config.max_backoff.as_millis() as i64;
        let shift = attempts.clamp(0, 20) as u32;
        min.saturating_mul(1i64 << shift).min(max).max(1)
    }
}

/// How often the clusters-by-phase gauge is recounted (one `GROUP BY` query).
const PHASE_GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Runs the reconciler until `shutdown` is cancelled.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    for cell in state.config.cells.iter() {
        if let Err(e) = state
            .store
            .upsert_cell(&cell.id, &cell.addresses.join(","))
            .await
        {
            tracing::warn!(cell = %cell.id, error = %e, "could not record cell");
        }
    }
    let prov = state.provisioner.clone();
    let mut phases_counted: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = pass(&state.store, &prov) => {}
        }
        if phases_counted.is_none_or(|t| t.elapsed() >= PHASE_GAUGE_EVERY) {
            phases_counted = Some(std::time::Instant::now());
            crate::metrics::refresh_cluster_phases(&state.store).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            () = prov.wake.notified() => {}
            () = tokio::time::sleep(prov.config.tick) => {}
        }
    }
}

/// One pass over due clusters and unsynced keys. Errors are logged, never fatal.
async fn pass(store: &Store, prov: &Provisioner) {
    let now = now_millis();
    match store.clusters_due(now, prov.config.batch).await {
        Ok(clusters) => {
            for cluster in clusters {
                let id = cluster.id.clone();
                if let Err(e) = reconcile(store, prov, cluster).await {
                    tracing::warn!(cluster = %id, error = %e, "reconcile failed");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list clusters to reconcile"),
    }
    match store.keys_to_sync(now, None, prov.config.batch).await {
        Ok(keys) => {
            for key in keys {
                // sync_key logs and schedules its own retries.
                let synced = sync_key(store, prov, &key).await;
                crate::metrics::reconciler_action("sync_key", synced.is_ok());
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list API keys to propagate"),
    }
}

async fn reconcile(store: &Store, prov: &Provisioner, c: Cluster) -> Result<()> {
    let (action, outcome) = match c.phase {
        Phase::Provisioning => ("provision", provision(store, prov, &c).await),
        Phase::Provisioned => ("apply_limits", apply_limits(store, prov, &c).await),
        Phase::Deleting => ("delete", delete(store, prov, &c).await),
        Phase::Failed => return Ok(()),
    };
    crate::metrics::reconciler_action(action, outcome.is_ok());
    if let Err(e) = &outcome {
        let next = now_millis() + prov.backoff_millis(c.attempts);
        store
            .retry_cluster_later(&c.id, &e.to_string(), next)
            .await?;
    }
    outcome
}

async fn provision(store: &Store, prov: &Provisioner, c: &Cluster) -> Result<()> {
    let timeout = prov.config.timeout;
    if now_millis() >= c.created_at.saturating_add(timeout.as_millis() as i64) {
        let last = if c.reason.is_empty() {
            "no attempt completed".to_string()
        } else {
            c.reason.clone()
        };
        let reason = format!(
            "provisioning did not finish within {} s; last error: {last}",
            timeout.as_secs()
        );
        tracing::warn!(cluster = %c.id, %reason, "cluster FAILED");
        return store.mark_failed(&c.id, &reason).await;
    }
    if prov.cells.is_empty() {
        let reason = "no cells are configured in the control plane; an operator must start it \
                      with --cell ID=CONTROLLER_ADDR";
        tracing::warn!(cluster = %c.id, "cluster FAILED: no cells");
        return store.mark_failed(&c.id, reason).await;
    }
    let (cell_id, load) = if c.cell_id.is_empty() {
        let (cell_id, load) =
            crate::placement::place(store, &prov.cells, prov.config.max_cell_load)
                .await
                .map_err(Error::Unavailable)?;
        if !store.place_cluster(&c.id, &cell_id).await? {
            return Ok(()); // deleted or placed meanwhile; the next pass sees which
        }
        tracing::info!(cluster = %c.id, cell = %cell_id, load = load.load, "cluster placed");
        (cell_id, Some(load))
    } else {
        (c.cell_id.clone(), None)
    };
    let client = prov.cell(&cell_id)?;
    create_logical_cluster(store, client, c).await?;
    let load = match load {
        Some(load) => load,
        None => {
            client
                .call("GetCellLoad", |mut cl| async move {
                    cl.get_cell_load(GetCellLoadRequest {}).await
                })
                .await?
        }
    };
    // Tenants' clients authenticate: they bootstrap from the brokers' SASL listeners.
    // SASL_PLAINTEXT is required (the control plane's own Kafka clients use it inside the
    // network); SASL_SSL is recorded when the brokers have it, and shown to tenants.
    let joined = |endpoints: &[proto::cell::v1::Endpoint]| {
        endpoints
            .iter()
            .map(|e| format!("{}:{}", e.host, e.port))
            .collect::<Vec<_>>()
    };
    let bootstrap = joined(&load.sasl_bootstrap);
    let ssl_bootstrap = joined(&load.sasl_ssl_bootstrap);
    if bootstrap.is_empty() {
        return Err(Error::Unavailable(format!(
            "cell {cell_id} has no active broker with a SASL listener to bootstrap from"
        )));
    }
    if store
        .mark_provisioned_tls(
            &c.id,
            c.spec_generation,
            &bootstrap.join(","),
            &ssl_bootstrap.join(","),
        )
        .await?
    {
        tracing::info!(cluster = %c.id, cell = %cell_id, "cluster PROVISIONED");
        for key in store
            .keys_to_sync(0, Some(&c.id), prov.config.batch)
            .await?
        {
            let _ = sync_key(store, prov, &key).await;
        }
    }
    Ok(())
}

/// Sends the cluster's current limits to its cell (create, or update of the same id).
async fn create_logical_cluster(store: &Store, client: &CellClient, c: &Cluster) -> Result<()> {
    let mut limits = store.plan_limits(c.kind, c.plan_version).await?;
    if c.kind == ClusterKind::Dedicated {
        limits = limits.for_cku(c.cku);
    }
    let req = CreateLogicalClusterRequest {
        cluster_id: c.id.clone(),
        organization_id: c.organization_id.clone(),
        limits: Some(limits.to_proto()),
    };
    let r = client
        .call("CreateLogicalCluster", |mut cl| {
            let req = req.clone();
            async move { cl.create_logical_cluster(req).await }
        })
        .await?;
    check_change(
        &client.id,
        "CreateLogicalCluster",
        &format!("cluster {}", c.id),
        &r,
    )
}

async fn apply_limits(store: &Store, prov: &Provisioner, c: &Cluster) -> Result<()> {
    let client = prov.cell(&c.cell_id)?;
    create_logical_cluster(store, client, c).await?;
    store.mark_applied(&c.id, c.spec_generation).await?;
    tracing::info!(cluster = %c.id, kind = %c.kind, cku = c.cku, "cluster limits updated");
    Ok(())
}

async fn delete(store: &Store, prov: &Provisioner, c: &Cluster) -> Result<()> {
    for key in store
        .keys_to_sync(0, Some(&c.id), prov.config.batch)
        .await?
    {
        sync_key(store, prov, &key).await?;
    }
    let client = prov.cell(&c.cell_id)?;
    let req = DeleteLogicalClusterRequest {
        cluster_id: c.id.clone(),
    };
    let r = client
        .call("DeleteLogicalCluster", |mut cl| {
            let req = req.clone();
            async move { cl.delete_logical_cluster(req).await }
        })
        .await?;
    check_change(
        &client.id,
        "DeleteLogicalCluster",
        &format!("cluster {}", c.id),
        &r,
    )?;
    store.finish_delete_cluster(&c.id).await?;
    tracing::info!(cluster = %c.id, cell = %c.cell_id, "cluster deleted from its cell");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let prov = Provisioner::new(&[], ProvisioningConfig::default());
        assert_eq!(prov.backoff_millis(0), 200);
        assert_eq!(prov.backoff_millis(1), 400);
        assert_eq!(prov.backoff_millis(3), 1_600);
        assert_eq!(prov.backoff_millis(10), 15_000);
        assert_eq!(prov.backoff_millis(i64::MAX), 15_000);
        assert_eq!(prov.backoff_millis(-5), 200);
    }

    #[test]
    fn key_locks_are_stable_per_key() {
        let prov = Provisioner::new(&[], ProvisioningConfig::default());
        assert!(std::ptr::eq(prov.key_lock("ABC"), prov.key_lock("ABC")));
        assert!(prov.cell("nope").is_err());
    }
}
