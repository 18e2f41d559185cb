//! `GetTenantUsage`: the brokers' latest usage counters ([`crate::usage`]) and the
//! partition counts of the committed image, for the control plane's Metrics API.

use std::time::Instant;

use proto::cell::v1::{GetTenantUsageRequest, GetTenantUsageResponse};

use super::Controller;
use crate::error::CellError;

/// Most clusters one request may name.
const MAX_CLUSTERS: usize = 10_000;

impl Controller {
    /// Answered by the leader only (the reports are sent to it); `lead` also makes the
    /// image current for a new leader.
    pub async fn tenant_usage(
        &self,
        req: GetTenantUsageRequest,
    ) -> Result<GetTenantUsageResponse, CellError> {
        if req.cluster_ids.len() > MAX_CLUSTERS {
            return Err(CellError::InvalidArgument(format!(
                "at most {MAX_CLUSTERS} cluster ids per GetTenantUsage"
            )));
        }
        let guard = self.lead().await?;
        let image = self.hub.image();
        Ok(guard.usage.answer(&req.cluster_ids, &image, Instant::now()))
    }
}
