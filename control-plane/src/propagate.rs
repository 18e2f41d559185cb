//! Propagation of cluster API keys to their cell: `PutCredential` for an active key of a
//! PROVISIONED cluster, `DeleteCredential` for a revoked one.
//!
//! Called synchronously by the API when a key is created or deleted (so a key works
//! within a second), and by the reconciler for anything still unsynced. Pushes of one key
//! never overlap (a striped lock), and each push sends what the row says *now* and marks
//! it synced only if the row still says so: a delete that races a put is always followed
//! by a `DeleteCredential` that lands after it. State lives in the row, so a crash loses
//! nothing: the reconciler resends.

use crate::error::{Error, Result};
use crate::reconciler::Provisioner;
use crate::store::{KeyState, Phase, Store};
use crate::util::now_millis;
use proto::cell::v1::{
    ChangeResult, CredentialRecord, DeleteCredentialRequest, PutCredentialRequest,
};

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySync {
    /// The cell now holds what the row says (or the key needs nothing from a cell).
    Done,
    /// The key waits for its cluster to be provisioned.
    Waiting,
}

/// A cell's answer to a change: error code 0 or an error naming the call.
pub(crate) fn check_change(cell: &str, op: &str, subject: &str, r: &ChangeResult) -> Result<()> {
    if r.error_code == 0 {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "cell {cell} rejected {op} for {subject}: error {} ({})",
            r.error_code, r.error_message
        )))
    }
}

/// Brings the cell in line with key `key_id`. On failure the key is scheduled for a
/// retry with backoff and the error returned.
pub async fn sync_key(store: &Store, prov: &Provisioner, key_id: &str) -> Result<KeySync> {
    let _guard = prov.key_lock(key_id).lock().await;
    let Some(target) = store.key_sync_target(key_id).await? else {
        return Ok(KeySync::Done);
    };
    let key = &target.key;
    if key.synced || key.resource_id.is_empty() {
        return Ok(KeySync::Done);
    }
    let cell_id = match (&key.state, &target.cluster) {
        (KeyState::Active, Some((phase, cell))) if phase == Phase::Provisioned.as_str() => {
            cell.clone()
        }
        (KeyState::Active, _) => return Ok(KeySync::Waiting),
        (KeyState::Revoked, Some((_, cell))) if !cell.is_empty() => cell.clone(),
        // Revoked, and its cluster never reached a cell (or is gone): nothing to remove.
        (KeyState::Revoked, _) => {
            store.key_synced(key_id, KeyState::Revoked).await?;
            return Ok(KeySync::Done);
        }
    };
    let pushed = push(prov, &cell_id, key.state, key_id, || CredentialRecord {
        api_key: key.id.clone(),
        cluster_id: key.resource_id.clone(),
        principal: format!("User:{}", key.owner_id),
        secret_sha256: key.secret_sha256.clone(),
        owner_is_user: key.owner_id.starts_with("u-"),
        scram: key.scram_credentials(),
    })
    .await;
    match pushed {
        Ok(()) => {
            store.key_synced(key_id, key.state).await?;
            tracing::info!(api_key = %key_id, cell = %cell_id, state = key.state.as_str(), "API key propagated");
            Ok(KeySync::Done)
        }
        Err(e) => {
            let next = now_millis() + prov.backoff_millis(target.attempts);
            store.key_sync_failed(key_id, next).await?;
            tracing::warn!(api_key = %key_id, cell = %cell_id, error = %e, "API key propagation failed; will retry");
            Err(e)
        }
    }
}

async fn push(
    prov: &Provisioner,
    cell_id: &str,
    state: KeyState,
    key_id: &str,
    record: impl FnOnce() -> CredentialRecord,
) -> Result<()> {
    let client = prov.cell(cell_id)?;
    let subject = format!("API key {key_id}");
    match state {
        KeyState::Active => {
            let req = PutCredentialRequest {
                credential: Some(record()),
            };
            let r = client
                .call("PutCredential", |mut c| {
                    let req = req.clone();
                    async move { c.put_credential(req).await }
                })
                .await?;
            check_change(cell_id, "PutCredential", &subject, &r)
        }
        KeyState::Revoked => {
            let req = DeleteCredentialRequest {
                api_key: key_id.to_string(),
            };
            let r = client
                .call("DeleteCredential", |mut c| {
                    let req = req.clone();
                    async move { c.delete_credential(req).await }
                })
                .await?;
            check_change(cell_id, "DeleteCredential", &subject, &r)
        }
    }
}
