//! Plans, cells and logical clusters in the store.
//!
//! A cluster row is both what the API shows and the reconciler's work item: its phase,
//! chosen cell, generations and backoff live here, so a restarted control plane resumes
//! exactly where the last one stopped. Every transition the reconciler makes is a
//! conditional UPDATE on the phase it expects, so a concurrent delete from the API wins
//! and the reconciler sees it on its next pass.

use super::{is_unique_violation, PageCursor, Store, ID_ATTEMPTS};
use crate::error::{Error, Result};
use crate::plans::{ClusterKind, PlanLimits};
use crate::util::{now_millis, short_id};
use sqlx::any::AnyRow;
use sqlx::Row;

/// `status.phase` of a cluster, plus DELETING, which the API never shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Provisioning,
    Provisioned,
    Failed,
    Deleting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "PROVISIONING",
            Phase::Provisioned => "PROVISIONED",
            Phase::Failed => "FAILED",
            Phase::Deleting => "DELETING",
        }
    }

    fn parse(s: &str) -> Result<Phase> {
        [
            Phase::Provisioning,
            Phase::Provisioned,
            Phase::Failed,
            Phase::Deleting,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| Error::Internal(format!("unknown cluster phase {s:?}")))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub id: String,
    pub organization_id: String,
    pub environment_id: String,
    pub display_name: String,
    pub availability: String,
    pub cloud: String,
    pub region: String,
    pub kind: ClusterKind,
    /// 0 unless Dedicated.
    pub cku: u32,
    pub plan_version: i64,
    pub phase: Phase,
    /// Why the cluster FAILED, or why provisioning is still waiting; empty otherwise.
    pub reason: String,
    /// Empty until placed.
    pub cell_id: String,
    /// `host:port,host:port` of the cell's SASL_PLAINTEXT listeners; empty until
    /// provisioned.
    pub bootstrap: String,
    /// The same for its SASL_SSL listeners; empty when the cell has none.
    pub ssl_bootstrap: String,
    pub spec_generation: i64,
    pub applied_generation: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const CLUSTER_COLUMNS: &str = "id, organization_id, environment_id, display_name, availability, \
     cloud, region, kind, cku, plan_version, phase, reason, cell_id, bootstrap, ssl_bootstrap, \
     spec_generation, applied_generation, attempts, created_at, updated_at";

fn cluster_from_row(row: &AnyRow) -> Result<Cluster> {
    Ok(Cluster {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        environment_id: row.try_get("environment_id")?,
        display_name: row.try_get("display_name")?,
        availability: row.try_get("availability")?,
        cloud: row.try_get("cloud")?,
        region: row.try_get("region")?,
        kind: row.try_get::<String, _>("kind")?.parse()?,
        cku: u32::try_from(row.try_get::<i64, _>("cku")?)
            .map_err(|_| Error::Internal("stored cku out of range".into()))?,
        plan_version: row.try_get("plan_version")?,
        phase: Phase::parse(&row.try_get::<String, _>("phase")?)?,
        reason: row.try_get("reason")?,
        cell_id: row.try_get("cell_id")?,
        bootstrap: row.try_get("bootstrap")?,
        ssl_bootstrap: row.try_get("ssl_bootstrap")?,
        spec_generation: row.try_get("spec_generation")?,
        applied_generation: row.try_get("applied_generation")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What a new cluster is made of; the store picks its id and starts it PROVISIONING.
pub struct NewCluster<'a> {
    pub organization_id: &'a str,
    pub environment_id: &'a str,
    pub display_name: &'a str,
    pub availability: &'a str,
    pub cloud: &'a str,
    pub region: &'a str,
    pub kind: ClusterKind,
    pub cku: u32,
    pub plan_version: i64,
}

/// A change from `PATCH /cmk/v2/clusters/{id}`. A new kind or CKU count comes with the
/// plan version its limits are taken from, and bumps the spec generation.
pub struct ClusterUpdate<'a> {
    pub display_name: Option<&'a str>,
    pub config: Option<(ClusterKind, u32, i64)>,
}

const PLAN_COLUMNS: &str = "ingress_bytes_per_sec, egress_bytes_per_sec, max_partitions, \
     max_connections, connection_attempts_per_sec, requests_per_sec, max_message_bytes, \
     partition_mutations_per_5min, request_time_percent, max_request_bytes";

fn limits_from_row(row: &AnyRow) -> Result<PlanLimits> {
    let u64_of = |c: &str| -> Result<u64> {
        u64::try_from(row.try_get::<i64, _>(c)?)
            .map_err(|_| Error::Internal(format!("stored plan limit {c} is negative")))
    };
    let u32_of = |c: &str| -> Result<u32> {
        u32::try_from(row.try_get::<i64, _>(c)?)
            .map_err(|_| Error::Internal(format!("stored plan limit {c} is out of range")))
    };
    Ok(PlanLimits {
        ingress_bytes_per_sec: u64_of("ingress_bytes_per_sec")?,
        egress_bytes_per_sec: u64_of("egress_bytes_per_sec")?,
        max_partitions: u32_of("max_partitions")?,
        max_connections: u32_of("max_connections")?,
        connection_attempts_per_sec: u32_of("connection_attempts_per_sec")?,
        requests_per_sec: u32_of("requests_per_sec")?,
        max_message_bytes: u32_of("max_message_bytes")?,
        partition_mutations_per_5min: u32_of("partition_mutations_per_5min")?,
        request_time_percent: u32_of("request_time_percent")?,
        max_request_bytes: u32_of("max_request_bytes")?,
    })
}

fn as_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidArgument(format!("plan limit {v} is too large")))
}

/// At most this many tries to add a plan version when other writers race.
const PLAN_ATTEMPTS: usize = 5;

impl Store {
    /// The version of `kind`'s plan with exactly `limits`: the latest version if it
    /// matches, else a new version (so configured limits are recorded before use).
    pub async fn ensure_plan(&self, kind: ClusterKind, limits: &PlanLimits) -> Result<i64> {
        for _ in 0..PLAN_ATTEMPTS {
            let latest = sqlx::query(&format!(
                "SELECT version, {PLAN_COLUMNS} FROM plans WHERE kind = $1 \
                 ORDER BY version DESC LIMIT 1"
            ))
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await?;
            let next = match &latest {
                Some(row) if limits_from_row(row)? == *limits => return Ok(row.try_get("version")?),
                Some(row) => row.try_get::<i64, _>("version")? + 1,
                None => 1,
            };
            let inserted = sqlx::query(&format!(
                "INSERT INTO plans (kind, version, {PLAN_COLUMNS}, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(kind.as_str())
            .bind(next)
            .bind(as_i64(limits.ingress_bytes_per_sec)?)
            .bind(as_i64(limits.egress_bytes_per_sec)?)
            .bind(i64::from(limits.max_partitions))
            .bind(i64::from(limits.max_connections))
            .bind(i64::from(limits.connection_attempts_per_sec))
            .bind(i64::from(limits.requests_per_sec))
            .bind(i64::from(limits.max_message_bytes))
            .bind(i64::from(limits.partition_mutations_per_5min))
            .bind(i64::from(limits.request_time_percent))
            .bind(i64::from(limits.max_request_bytes))
            .bind(now_millis())
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    tracing::info!(kind = %kind, version = next, "recorded a new plan version");
                    return Ok(next);
                }
                // Another writer added this version first: look again.
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(format!(
            "could not record the {kind} plan; too many concurrent plan changes"
        )))
    }

    /// The limits of one plan version (per CKU for Dedicated).
    pub async fn plan_limits(&self, kind: ClusterKind, version: i64) -> Result<PlanLimits> {
        let row = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans WHERE kind = $1 AND version = $2"
        ))
        .bind(kind.as_str())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::Internal(format!("plan {kind} version {version} is missing")))?;
        limits_from_row(&row)
    }

    /// Records a configured cell (or its new addresses).
    pub async fn upsert_cell(&self, id: &str, addresses: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO cells (id, addresses, load_millionths, last_seen_at, updated_at) \
             VALUES ($1, $2, -1, 0, $3) \
             ON CONFLICT (id) DO UPDATE SET addresses = excluded.addresses, \
             updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(addresses)
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a cell's reported load (0.0..1.0).
    pub async fn record_cell_load(&self, id: &str, load: f64) -> Result<()> {
        let millionths = (load.clamp(0.0, 1.0) * 1_000_000.0).round() as i64;
        let now = now_millis();
        sqlx::query(
            "UPDATE cells SET load_millionths = $1, last_seen_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(millionths)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn create_cluster(&self, new: &NewCluster<'_>) -> Result<Cluster> {
        for _ in 0..ID_ATTEMPTS {
            let now = now_millis();
            let id = short_id("lkc");
            let inserted = sqlx::query(&format!(
                "INSERT INTO clusters ({CLUSTER_COLUMNS}, next_attempt_at) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', '', '', '', 1, 0, 0, $12, $12, 0)"
            ))
            .bind(&id)
            .bind(new.organization_id)
            .bind(new.environment_id)
            .bind(new.display_name)
            .bind(new.availability)
            .bind(new.cloud)
            .bind(new.region)
            .bind(new.kind.as_str())
            .bind(i64::from(new.cku))
            .bind(new.plan_version)
            .bind(Phase::Provisioning.as_str())
            .bind(now)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    return self
                        .get_cluster(new.organization_id, &id)
                        .await?
                        .ok_or_else(|| Error::Internal(format!("cluster {id} vanished")))
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "could not allocate a unique cluster id".into(),
        ))
    }

    /// The clusters of one environment (never DELETING ones), a page at a time.
    pub async fn list_clusters(
        &self,
        org_id: &str,
        env_id: &str,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<Cluster>> {
        let filters = [("organization_id", org_id), ("environment_id", env_id)];
        let rows = self
            .page(
                "clusters",
                CLUSTER_COLUMNS,
                &filters,
                Some("phase <> 'DELETING'"),
                after,
                limit,
            )
            .await?;
        rows.iter().map(cluster_from_row).collect()
    }

    /// A cluster of `org_id` the user can see (not DELETING).
    pub async fn get_cluster(&self, org_id: &str, id: &str) -> Result<Option<Cluster>> {
        let row = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE organization_id = $1 AND id = $2 \
             AND phase <> 'DELETING'"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    /// A cluster by id in any organisation and phase (for the reconciler).
    pub async fn cluster_by_id(&self, id: &str) -> Result<Option<Cluster>> {
        let row = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(cluster_from_row).transpose()
    }

    pub async fn update_cluster(
        &self,
        org_id: &str,
        id: &str,
        update: &ClusterUpdate<'_>,
    ) -> Result<Option<Cluster>> {
        let Some(current) = self.get_cluster(org_id, id).await? else {
            return Ok(None);
        };
        let name = update.display_name.unwrap_or(&current.display_name);
        let (kind, cku, plan_version, generation) = match update.config {
            Some((kind, cku, version))
                if (kind, cku, version) != (current.kind, current.cku, current.plan_version) =>
            {
                (kind, cku, version, current.spec_generation + 1)
            }
            _ => (
                current.kind,
                current.cku,
                current.plan_version,
                current.spec_generation,
            ),
        };
        sqlx::query(
            "UPDATE clusters SET display_name = $1, kind = $2, cku = $3, plan_version = $4, \
             spec_generation = $5, attempts = 0, next_attempt_at = 0, updated_at = $6 \
             WHERE organization_id = $7 AND id = $8 AND phase <> 'DELETING'",
        )
        .bind(name)
        .bind(kind.as_str())
        .bind(i64::from(cku))
        .bind(plan_version)
        .bind(generation)
        .bind(now_millis())
        .bind(org_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.get_cluster(org_id, id).await
    }

    /// Deletes a cluster for the user: its keys are revoked in the same transaction. A
    /// cluster never placed in a cell goes at once (with its keys); one that was becomes
    /// DELETING until its cell has dropped it. `None` when not in `org_id`.
    pub async fn begin_delete_cluster(&self, org_id: &str, id: &str) -> Result<Option<Cluster>> {
        let Some(cluster) = self.get_cluster(org_id, id).await? else {
            return Ok(None);
        };
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        let done = if cluster.cell_id.is_empty() {
            sqlx::query("DELETE FROM api_keys WHERE resource_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM clusters WHERE id = $1 AND cell_id = '' AND phase <> 'DELETING'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "UPDATE api_keys SET state = 'REVOKED', synced = 0, attempts = 0, \
                 next_attempt_at = 0, updated_at = $1 WHERE resource_id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE clusters SET phase = 'DELETING', attempts = 0, next_attempt_at = 0, \
                 updated_at = $1 WHERE id = $2 AND phase <> 'DELETING'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
        };
        if done.rows_affected() == 0 {
            // Placed (or deleted) between the read and the write: let the caller retry.
            tx.rollback().await?;
            return Err(Error::Conflict(format!(
                "cluster {id} changed while being deleted; try the delete again"
            )));
        }
        tx.commit().await?;
        Ok(Some(cluster))
    }

    /// Clusters the reconciler has work for, due now: PROVISIONING, DELETING, and
    /// PROVISIONED ones whose limits changed. At most `limit`, most overdue first.
    pub async fn clusters_due(&self, now: i64, limit: i64) -> Result<Vec<Cluster>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE next_attempt_at <= $1 AND \
             (phase IN ('PROVISIONING', 'DELETING') OR \
              (phase = 'PROVISIONED' AND applied_generation < spec_generation)) \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cluster_from_row).collect()
    }

    /// The clusters placed in `cell_id`, in any organisation and phase, oldest first, at
    /// most `limit` (for the operator API).
    pub async fn clusters_in_cell(&self, cell_id: &str, limit: i64) -> Result<Vec<Cluster>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE cell_id = $1 \
             ORDER BY created_at, id LIMIT $2"
        ))
        .bind(cell_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cluster_from_row).collect()
    }

    /// How many clusters are in each phase (a phase without clusters is absent).
    pub async fn count_clusters_by_phase(&self) -> Result<Vec<(Phase, i64)>> {
        let rows = sqlx::query("SELECT phase, COUNT(*) AS n FROM clusters GROUP BY phase")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let phase: String = r.try_get("phase")?;
                Ok((Phase::parse(&phase)?, r.try_get::<i64, _>("n")?))
            })
            .collect()
    }

    /// Records the chosen cell of a PROVISIONING cluster not yet placed; `false` if the
    /// cluster was deleted or placed meanwhile.
    pub async fn place_cluster(&self, id: &str, cell_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clusters SET cell_id = $1, updated_at = $2 \
             WHERE id = $3 AND phase = 'PROVISIONING' AND cell_id = ''",
        )
        .bind(cell_id)
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// PROVISIONING -> PROVISIONED with its SASL_PLAINTEXT bootstrap and the generation
    /// whose limits the cell now has; `false` if the cluster is no longer PROVISIONING.
    pub async fn mark_provisioned(
        &self,
        id: &str,
        generation: i64,
        bootstrap: &str,
    ) -> Result<bool> {
        self.mark_provisioned_tls(id, generation, bootstrap, "")
            .await
    }

    /// [`Store::mark_provisioned`] with the SASL_SSL bootstrap too (empty: none).
    pub async fn mark_provisioned_tls(
        &self,
        id: &str,
        generation: i64,
        bootstrap: &str,
        ssl_bootstrap: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE clusters SET phase = 'PROVISIONED', bootstrap = $1, ssl_bootstrap = $2, \
             applied_generation = $3, reason = '', attempts = 0, next_attempt_at = 0, \
             updated_at = $4 WHERE id = $5 AND phase = 'PROVISIONING'",
        )
        .bind(bootstrap)
        .bind(ssl_bootstrap)
        .bind(generation)
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that the cell has the limits of `generation` (after a resize).
    pub async fn mark_applied(&self, id: &str, generation: i64) -> Result<()> {
        sqlx::query(
            "UPDATE clusters SET applied_generation = $1, attempts = 0, reason = '' \
             WHERE id = $2 AND phase = 'PROVISIONED' AND applied_generation < $1",
        )
        .bind(generation)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// PROVISIONING -> FAILED with a reason for the user.
    pub async fn mark_failed(&self, id: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE clusters SET phase = 'FAILED', reason = $1, updated_at = $2 \
             WHERE id = $3 AND phase = 'PROVISIONING'",
        )
        .bind(reason)
        .bind(now_millis())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts a failed attempt, says why, and schedules the next at `next_attempt_at`.
    pub async fn retry_cluster_later(
        &self,
        id: &str,
        reason: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE clusters SET attempts = attempts + 1, next_attempt_at = $1, reason = $2 \
             WHERE id = $3 AND phase <> 'FAILED'",
        )
        .bind(next_attempt_at)
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a DELETING cluster and its (revoked) keys once its cell has dropped it.
    pub async fn finish_delete_cluster(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_keys WHERE resource_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM clusters WHERE id = $1 AND phase = 'DELETING'")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
