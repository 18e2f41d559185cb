//! Service accounts and API keys in the store.
//!
//! API keys are stored by key id with the SHA-256 of their secret. A Cloud API key (no
//! resource) lives only here; a cluster key must also reach its cell, so its row carries
//! the propagation state (`state`, `synced`, backoff) the reconciler and
//! `crate::propagate` work from. A deleted cluster key becomes REVOKED and stays until
//! its cell has dropped it.

use super::{is_unique_violation, PageCursor, Store, ID_ATTEMPTS};
use crate::error::{Error, Result};
use crate::util::{new_api_key_id, now_millis, short_id};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const SA_COLUMNS: &str = "id, organization_id, display_name, description, created_at, updated_at";

fn sa_from_row(row: &AnyRow) -> Result<ServiceAccount> {
    Ok(ServiceAccount {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Whether a key is live or deleted-but-maybe-still-in-its-cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "ACTIVE",
            KeyState::Revoked => "REVOKED",
        }
    }

    fn parse(s: &str) -> Result<KeyState> {
        match s {
            "ACTIVE" => Ok(KeyState::Active),
            "REVOKED" => Ok(KeyState::Revoked),
            other => Err(Error::Internal(format!("unknown API key state {other:?}"))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    pub description: String,
    pub owner_id: String,
    /// The cluster (`lkc-...`), or empty for a Cloud API key.
    pub resource_id: String,
    pub secret_sha256: String,
    /// SCRAM verifiers of the secret as JSON (`crate::scram::to_json`); empty for none.
    pub scram: String,
    pub state: KeyState,
    /// Whether the key's cell holds what `state` says.
    pub synced: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ApiKey {
    /// The key's SCRAM verifiers for its cell; none (PLAIN only) if unreadable.
    pub fn scram_credentials(&self) -> Vec<proto::cell::v1::ScramCredential> {
        crate::scram::from_json(&self.scram).unwrap_or_else(|e| {
            tracing::warn!(api_key = %self.id, error = %e, "unreadable SCRAM verifiers; PLAIN only");
            Vec::new()
        })
    }
}

const KEY_COLUMNS: &str = "id, organization_id, display_name, description, owner_id, \
     resource_id, secret_sha256, state, synced, created_at, updated_at, scram";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        display_name: row.try_get("display_name")?,
        description: row.try_get("description")?,
        owner_id: row.try_get("owner_id")?,
        resource_id: row.try_get("resource_id")?,
        secret_sha256: row.try_get("secret_sha256")?,
        state: KeyState::parse(&row.try_get::<String, _>("state")?)?,
        synced: row.try_get::<i64, _>("synced")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        scram: row.try_get("scram")?,
    })
}

/// What a new key is made of; the store picks its id.
pub struct NewApiKey<'a> {
    pub organization_id: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub owner_id: &'a str,
    pub resource_id: &'a str,
    pub secret_sha256: &'a str,
    /// SCRAM verifiers (JSON), empty for a Cloud API key.
    pub scram: &'a str,
}

/// An active key as authentication needs it.
#[derive(Clone, Debug)]
pub struct CloudKeyAuth {
    pub owner_id: String,
    pub organization_id: String,
    pub resource_id: String,
    pub secret_sha256: String,
}

/// A cluster key that may need to be pushed to (or removed from) its cell, with what
/// the push needs to know about its cluster.
#[derive(Clone, Debug)]
pub struct KeySyncTarget {
    pub key: ApiKey,
    /// Failed pushes so far (for the backoff).
    pub attempts: i64,
    /// The cluster's phase and cell; `None` when the cluster row is gone.
    pub cluster: Option<(String, String)>,
}

impl Store {
    /// Creates a service account; a name already used in the organisation is a conflict.
    pub async fn create_service_account(
        &self,
        org_id: &str,
        display_name: &str,
        description: &str,
    ) -> Result<ServiceAccount> {
        for _ in 0..ID_ATTEMPTS {
            let now = now_millis();
            let sa = ServiceAccount {
                id: short_id("sa"),
                organization_id: org_id.to_string(),
                display_name: display_name.to_string(),
                description: description.to_string(),
                created_at: now,
                updated_at: now,
            };
            let inserted = sqlx::query(&format!(
                "INSERT INTO service_accounts ({SA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
            ))
            .bind(&sa.id)
            .bind(&sa.organization_id)
            .bind(&sa.display_name)
            .bind(&sa.description)
            .bind(sa.created_at)
            .bind(sa.updated_at)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(sa),
                Err(e) if is_unique_violation(&e) => {
                    self.check_sa_name_free(org_id, display_name, None).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "could not allocate a unique service account id".into(),
        ))
    }

    async fn check_sa_name_free(
        &self,
        org_id: &str,
        name: &str,
        except: Option<&str>,
    ) -> Result<()> {
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT id FROM service_accounts WHERE organization_id = $1 AND display_name = $2",
        )
        .bind(org_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match taken {
            Some(id) if Some(id.as_str()) != except => Err(Error::AlreadyExists(format!(
                "a service account named {name:?} already exists ({id}); choose another display_name"
            ))),
            _ => Ok(()),
        }
    }

    pub async fn list_service_accounts(
        &self,
        org_id: &str,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<ServiceAccount>> {
        let filters = [("organization_id", org_id)];
        let rows = self
            .page("service_accounts", SA_COLUMNS, &filters, None, after, limit)
            .await?;
        rows.iter().map(sa_from_row).collect()
    }

    pub async fn get_service_account(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<ServiceAccount>> {
        let row = sqlx::query(&format!(
            "SELECT {SA_COLUMNS} FROM service_accounts WHERE organization_id = $1 AND id = $2"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sa_from_row).transpose()
    }

    /// Changes name and/or description; `None` when the account is not in `org_id`.
    pub async fn update_service_account(
        &self,
        org_id: &str,
        id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Option<ServiceAccount>> {
        let Some(current) = self.get_service_account(org_id, id).await? else {
            return Ok(None);
        };
        let name = display_name.unwrap_or(&current.display_name);
        let description = description.unwrap_or(&current.description);
        let done = sqlx::query(
            "UPDATE service_accounts SET display_name = $1, description = $2, updated_at = $3 \
             WHERE organization_id = $4 AND id = $5",
        )
        .bind(name)
        .bind(description)
        .bind(now_millis())
        .bind(org_id)
        .bind(id)
        .execute(&self.pool)
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => {
                self.check_sa_name_free(org_id, name, Some(id)).await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
            Ok(_) => self.get_service_account(org_id, id).await,
        }
    }

    /// Deletes a service account that owns no API keys; `false` when not in `org_id`.
    pub async fn delete_service_account(&self, org_id: &str, id: &str) -> Result<bool> {
        let keys: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE organization_id = $1 AND owner_id = $2 \
             AND state = 'ACTIVE'",
        )
        .bind(org_id)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        if keys > 0 && self.get_service_account(org_id, id).await?.is_some() {
            return Err(Error::Conflict(format!(
                "service account {id} still owns {keys} API key(s); delete them first \
                 (GET /iam/v2/api-keys?spec.owner={id})"
            )));
        }
        let done =
            sqlx::query("DELETE FROM service_accounts WHERE organization_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `id` is a user or service account of `org_id`.
    pub async fn principal_in_org(&self, org_id: &str, id: &str) -> Result<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM users WHERE organization_id = $1 AND id = $2 \
             UNION ALL SELECT id FROM service_accounts WHERE organization_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Creates an API key. A Cloud API key is born synced (nothing to push); a cluster
    /// key waits for the reconciler or the caller to push it.
    pub async fn create_api_key(&self, new: &NewApiKey<'_>) -> Result<ApiKey> {
        for _ in 0..ID_ATTEMPTS {
            let now = now_millis();
            let key = ApiKey {
                id: new_api_key_id(),
                organization_id: new.organization_id.to_string(),
                display_name: new.display_name.to_string(),
                description: new.description.to_string(),
                owner_id: new.owner_id.to_string(),
                resource_id: new.resource_id.to_string(),
                secret_sha256: new.secret_sha256.to_string(),
                scram: new.scram.to_string(),
                state: KeyState::Active,
                synced: new.resource_id.is_empty(),
                created_at: now,
                updated_at: now,
            };
            let inserted = sqlx::query(&format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, 0)"
            ))
            .bind(&key.id)
            .bind(&key.organization_id)
            .bind(&key.display_name)
            .bind(&key.description)
            .bind(&key.owner_id)
            .bind(&key.resource_id)
            .bind(&key.secret_sha256)
            .bind(key.state.as_str())
            .bind(i64::from(key.synced))
            .bind(key.created_at)
            .bind(key.updated_at)
            .bind(&key.scram)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(key),
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "could not allocate a unique API key id".into(),
        ))
    }

    /// Active keys of `org_id`, optionally only those of one owner and/or one resource.
    pub async fn list_api_keys(
        &self,
        org_id: &str,
        owner: Option<&str>,
        resource: Option<&str>,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<ApiKey>> {
        let mut filters = vec![("organization_id", org_id)];
        if let Some(owner) = owner {
            filters.push(("owner_id", owner));
        }
        if let Some(resource) = resource {
            filters.push(("resource_id", resource));
        }
        let rows = self
            .page(
                "api_keys",
                KEY_COLUMNS,
                &filters,
                Some("state = 'ACTIVE'"),
                after,
                limit,
            )
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn get_api_key(&self, org_id: &str, id: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE organization_id = $1 AND id = $2 \
             AND state = 'ACTIVE'"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    pub async fn update_api_key(
        &self,
        org_id: &str,
        id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Option<ApiKey>> {
        let Some(current) = self.get_api_key(org_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE api_keys SET display_name = $1, description = $2, updated_at = $3 \
             WHERE organization_id = $4 AND id = $5 AND state = 'ACTIVE'",
        )
        .bind(display_name.unwrap_or(&current.display_name))
        .bind(description.unwrap_or(&current.description))
        .bind(now_millis())
        .bind(org_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.get_api_key(org_id, id).await
    }

    /// Deletes a key: at once for a Cloud API key, as REVOKED (to be removed from its
    /// cell) for a cluster key. Returns the key as it was, `None` when not in `org_id`.
    pub async fn revoke_api_key(&self, org_id: &str, id: &str) -> Result<Option<ApiKey>> {
        let Some(key) = self.get_api_key(org_id, id).await? else {
            return Ok(None);
        };
        let done = if key.resource_id.is_empty() {
            sqlx::query("DELETE FROM api_keys WHERE organization_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&self.pool)
                .await?
        } else {
            sqlx::query(
                "UPDATE api_keys SET state = 'REVOKED', synced = 0, attempts = 0, \
                 next_attempt_at = 0, updated_at = $1 \
                 WHERE organization_id = $2 AND id = $3 AND state = 'ACTIVE'",
            )
            .bind(now_millis())
            .bind(org_id)
            .bind(id)
            .execute(&self.pool)
            .await?
        };
        Ok((done.rows_affected() > 0).then_some(key))
    }

    /// An active key by id, for authentication (any organisation: the key id is the
    /// credential's user name).
    pub async fn key_for_auth(&self, id: &str) -> Result<Option<CloudKeyAuth>> {
        let row = sqlx::query(
            "SELECT owner_id, organization_id, resource_id, secret_sha256 FROM api_keys \
             WHERE id = $1 AND state = 'ACTIVE'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CloudKeyAuth {
                owner_id: r.try_get("owner_id")?,
                organization_id: r.try_get("organization_id")?,
                resource_id: r.try_get("resource_id")?,
                secret_sha256: r.try_get("secret_sha256")?,
            })
        })
        .transpose()
    }

    /// A key with its cluster's phase and cell, whatever its state.
    pub async fn key_sync_target(&self, id: &str) -> Result<Option<KeySyncTarget>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS}, attempts FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let key = key_from_row(&row)?;
        let attempts: i64 = row.try_get("attempts")?;
        let cluster = sqlx::query("SELECT phase, cell_id FROM clusters WHERE id = $1")
            .bind(&key.resource_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| -> Result<(String, String)> {
                Ok((r.try_get("phase")?, r.try_get("cell_id")?))
            })
            .transpose()?;
        Ok(Some(KeySyncTarget {
            key,
            attempts,
            cluster,
        }))
    }

    /// Unsynced cluster keys due for an attempt (at most `limit`): revoked ones, and
    /// active ones whose cluster is PROVISIONED (the others wait for their cluster). With
    /// `cluster`, only that cluster's unsynced keys, due or not.
    pub async fn keys_to_sync(
        &self,
        now: i64,
        cluster: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>> {
        let ids = match cluster {
            None => {
                sqlx::query_scalar(
                    "SELECT k.id FROM api_keys k LEFT JOIN clusters c ON c.id = k.resource_id \
                     WHERE k.synced = 0 AND k.next_attempt_at <= $1 \
                     AND (k.state = 'REVOKED' OR c.phase = 'PROVISIONED') \
                     ORDER BY k.next_attempt_at, k.id LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some(cluster) => {
                sqlx::query_scalar(
                    "SELECT id FROM api_keys WHERE synced = 0 AND resource_id = $1 \
                     ORDER BY id LIMIT $2",
                )
                .bind(cluster)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(ids)
    }

    /// Records that the cell now holds what `state` says: an active key becomes synced,
    /// a revoked one is forgotten. No-op if the state changed meanwhile.
    pub async fn key_synced(&self, id: &str, state: KeyState) -> Result<()> {
        match state {
            KeyState::Active => sqlx::query(
                "UPDATE api_keys SET synced = 1, attempts = 0 WHERE id = $1 AND state = 'ACTIVE'",
            )
            .bind(id)
            .execute(&self.pool)
            .await?,
            KeyState::Revoked => {
                sqlx::query("DELETE FROM api_keys WHERE id = $1 AND state = 'REVOKED'")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }

    /// Counts a failed push and schedules the next one at `next_attempt_at`.
    pub async fn key_sync_failed(&self, id: &str, next_attempt_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET attempts = attempts + 1, next_attempt_at = $1 WHERE id = $2",
        )
        .bind(next_attempt_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
