//! Persistence on SQLite or PostgreSQL: organisations, users, sessions and environments
//! here; service accounts and API keys in [`iam`]; plans, cells and clusters in
//! [`clusters`]; the Metrics API's usage points in [`usage`]. All of it is `impl Store`, one pool, one migration set.
//!
//! # Why `sqlx::Any`
//! The store holds one `AnyPool` rather than an enum over a `SqlitePool` and a `PgPool`.
//! The queries here are small and portable, so one copy of each query and one set of
//! migrations serve both back ends; an enum would duplicate every query (or need a
//! generic layer) for no gain. The price is Any's narrow type set, so the schema keeps to
//! TEXT and BIGINT (times as Unix milliseconds, ids made by the application), and every
//! query uses `$N` placeholders, which both drivers accept. If a back-end-specific need
//! appears (e.g. `LISTEN`/`NOTIFY`), add a method that matches on [`Backend`].
//!
//! # Cancel-safety
//! Multi-statement writes (sign-up) run in one transaction, so a dropped future rolls
//! back rather than leaving an organisation without its user.

use crate::error::{Error, Result};
use crate::util::{now_millis, short_id};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::path::Path;

mod clusters;
mod iam;
mod usage;

pub use clusters::{Cluster, ClusterUpdate, NewCluster, Phase};
pub use iam::{ApiKey, CloudKeyAuth, KeyState, KeySyncTarget, NewApiKey, ServiceAccount};
pub use usage::{UsagePoint, MAX_QUERY_ROWS};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A user as login needs it.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub id: String,
    pub organization_id: String,
    pub password_hash: String,
}

/// Who an authenticated request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// A user (`u-...`, bearer token or Cloud API key) or a service account (`sa-...`,
    /// Cloud API key).
    pub id: String,
    pub organization_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a page of a keyset-paginated list starts: after this (created_at, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageCursor {
    pub created_at: i64,
    pub id: String,
}

/// Tries at generating a fresh short id before giving up (a collision needs ~2^15 ids
/// of a kind to become likely).
pub(crate) const ID_ATTEMPTS: usize = 3;

const ENV_COLUMNS: &str = "id, organization_id, display_name, created_at, updated_at";

fn env_from_row(row: &AnyRow) -> Result<Environment> {
    Ok(Environment {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        display_name: row.try_get("display_name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// One page of `table` for keyset pagination: rows with every `(column, value)` of
    /// `filters` (the organisation first), an optional extra SQL condition without
    /// parameters (e.g. a phase filter), after `after` in (created_at, id) order, at most
    /// `limit`. Table, columns and condition are code constants, never user input.
    pub(crate) async fn page(
        &self,
        table: &str,
        columns: &str,
        filters: &[(&str, &str)],
        condition: Option<&str>,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<AnyRow>> {
        let mut sql = format!("SELECT {columns} FROM {table} WHERE 1 = 1");
        let mut n = 0;
        for (column, _) in filters {
            n += 1;
            sql.push_str(&format!(" AND {column} = ${n}"));
        }
        if let Some(condition) = condition {
            sql.push_str(&format!(" AND ({condition})"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (created_at > ${a} OR (created_at = ${a} AND id > ${b}))",
                a = n + 1,
                b = n + 2
            ));
            n += 2;
        }
        sql.push_str(&format!(" ORDER BY created_at, id LIMIT ${}", n + 1));
        let mut query = sqlx::query(&sql);
        for (_, value) in filters {
            query = query.bind(*value);
        }
        if let Some(c) = after {
            query = query.bind(c.created_at).bind(&c.id);
        }
        Ok(query.bind(limit).fetch_all(&self.pool).await?)
    }

    /// Connects to `sqlite://...` or `postgres://...` and runs the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::InvalidArgument(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .connect(url)
            .await?;
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the single writer; the mode is persistent in
            // the file, so setting it once per start-up is enough.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await?;
            if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
                return Err(Error::Internal(format!(
                    "SQLite refused WAL mode (journal_mode is {mode})"
                )));
            }
        }
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Opens (creating if needed) `control-plane.db` in `data_dir`, SQLite in WAL mode.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::Internal(format!(
                "cannot create data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("control-plane.db");
        Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `SELECT 1`: the database answers (the control plane's readiness check).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Creates an organisation and its first user in one transaction. Returns
    /// `(user_id, organization_id)`; an email already taken is [`Error::AlreadyExists`].
    pub async fn create_user_and_org(
        &self,
        email: &str,
        password_hash: &str,
        organization_name: &str,
    ) -> Result<(String, String)> {
        for _ in 0..ID_ATTEMPTS {
            match self
                .try_create_user_and_org(email, password_hash, organization_name)
                .await
            {
                Err(e) if is_unique_violation(&e) => {
                    if self.user_by_email(email).await?.is_some() {
                        return Err(Error::AlreadyExists(format!(
                            "an account with email {email} already exists; log in instead"
                        )));
                    }
                    // Otherwise a short id collided: try again with a new one.
                }
                other => return Ok(other?),
            }
        }
        Err(Error::Internal(
            "could not allocate a unique user id".into(),
        ))
    }

    async fn try_create_user_and_org(
        &self,
        email: &str,
        password_hash: &str,
        organization_name: &str,
    ) -> Result<(String, String), sqlx::Error> {
        let now = now_millis();
        let org_id = uuid::Uuid::new_v4().to_string();
        let user_id = short_id("u");
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&org_id)
            .bind(organization_name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO users (id, organization_id, email, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&user_id)
        .bind(&org_id)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((user_id, org_id))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>> {
        let row =
            sqlx::query("SELECT id, organization_id, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(UserCredentials {
                id: r.try_get("id")?,
                organization_id: r.try_get("organization_id")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    /// Stores a session by its token hash, and drops expired sessions on the way.
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The principal of an unexpired session with this token hash.
    pub async fn principal(&self, token_hash: &str, now: i64) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT u.id AS user_id, u.organization_id AS organization_id \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Principal {
                id: r.try_get("user_id")?,
                organization_id: r.try_get("organization_id")?,
            })
        })
        .transpose()
    }

    /// Creates an environment in `org_id`, retrying with a new id on a (rare) short-id
    /// collision.
    pub async fn create_environment(
        &self,
        org_id: &str,
        display_name: &str,
    ) -> Result<Environment> {
        for _ in 0..ID_ATTEMPTS {
            let now = now_millis();
            let env = Environment {
                id: short_id("env"),
                organization_id: org_id.to_string(),
                display_name: display_name.to_string(),
                created_at: now,
                updated_at: now,
            };
            let inserted = sqlx::query(
                "INSERT INTO environments (id, organization_id, display_name, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&env.id)
            .bind(&env.organization_id)
            .bind(&env.display_name)
            .bind(env.created_at)
            .bind(env.updated_at)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(env),
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(
            "could not allocate a unique environment id".into(),
        ))
    }

    /// Up to `limit` environments of `org_id` in (created_at, id) order, after `after`.
    pub async fn list_environments(
        &self,
        org_id: &str,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<Environment>> {
        let rows = self
            .page(
                "environments",
                ENV_COLUMNS,
                &[("organization_id", org_id)],
                None,
                after,
                limit,
            )
            .await?;
        rows.iter().map(env_from_row).collect()
    }

    pub async fn get_environment(&self, org_id: &str, id: &str) -> Result<Option<Environment>> {
        let row = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE organization_id = $1 AND id = $2"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(env_from_row).transpose()
    }

    /// Renames an environment; `None` when it is not in `org_id`.
    pub async fn update_environment(
        &self,
        org_id: &str,
        id: &str,
        display_name: &str,
    ) -> Result<Option<Environment>> {
        let done = sqlx::query(
            "UPDATE environments SET display_name = $1, updated_at = $2 \
             WHERE organization_id = $3 AND id = $4",
        )
        .bind(display_name)
        .bind(now_millis())
        .bind(org_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.get_environment(org_id, id).await
    }

    /// Deletes an environment; `false` when it is not in `org_id`. An environment that
    /// still holds clusters is a [`Error::Conflict`].
    pub async fn delete_environment(&self, org_id: &str, id: &str) -> Result<bool> {
        let clusters: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM clusters WHERE organization_id = $1 AND environment_id = $2 \
             AND phase <> 'DELETING'",
        )
        .bind(org_id)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        if clusters > 0 {
            return Err(Error::Conflict(format!(
                "environment {id} still has {clusters} cluster(s); delete them first \
                 (GET /cmk/v2/clusters?environment={id})"
            )));
        }
        let done = sqlx::query("DELETE FROM environments WHERE organization_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
