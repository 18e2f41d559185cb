//! The Metrics API's rules (`POST /v2/metrics/cloud/query`): the query is validated
//! ([`crate::usage::query::plan`]), every cluster it names must be one of the caller's
//! organisation (another organisation's cluster answers exactly what a cluster that does not
//! exist answers, 404), then the stored points are read and bucketed.

use super::AppState;
use crate::error::Result;
use crate::store::Principal;
use crate::usage::query::{self, Answer, QueryRequest};
use crate::util::now_millis;

pub async fn query(state: &AppState, caller: &Principal, req: &QueryRequest) -> Result<Answer> {
    let plan = query::plan(req, now_millis())?;
    for id in &plan.clusters {
        let found = state.store.get_cluster(&caller.organization_id, id).await?;
        if found.is_none() {
            return Err(super::clusters::not_found(id));
        }
    }
    let rows = state.store.read_usage(&plan).await?;
    query::aggregate(&plan, &rows)
}
