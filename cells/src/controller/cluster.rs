//! Control-plane and operator logic: logical clusters (tenants), credentials, the cell's
//! load, and the quorum's description.

use proto::cell::v1::{
    metadata_record::Record, AclList, AclRecord, BrokerLoad, BrokerState, CellLoad, ChangeResult,
    CreateLogicalClusterRequest, CredentialRecord, DeleteAclsResponse, DescribeQuorumResponse,
    LogicalClusterRecord, RemoveAclRecord, RemoveCredentialRecord, RemoveLogicalClusterRecord,
};

use super::{wrap, Controller};
use crate::error::CellError;

fn ok(offset: u64) -> ChangeResult {
    ChangeResult {
        offset,
        ..Default::default()
    }
}

impl Controller {
    /// Idempotent by id: the same request again changes nothing; new limits replace old.
    pub async fn create_logical_cluster(
        &self,
        req: CreateLogicalClusterRequest,
    ) -> Result<ChangeResult, CellError> {
        if req.cluster_id.is_empty() {
            return Err(CellError::InvalidArgument("cluster_id is required".into()));
        }
        let _guard = self.lead().await?;
        let record = LogicalClusterRecord {
            cluster_id: req.cluster_id.clone(),
            organization_id: req.organization_id,
            limits: req.limits,
        };
        if let Some(existing) = self.hub.image().clusters.get(&req.cluster_id) {
            if *existing == record {
                return Ok(ok(self.hub.offset()));
            }
            if existing.organization_id != record.organization_id {
                return Err(CellError::InvalidArgument(format!(
                    "logical cluster {} belongs to another organization",
                    req.cluster_id
                )));
            }
        }
        Ok(ok(self
            .commit(vec![wrap(Record::LogicalCluster(record))])
            .await?))
    }

    /// Removes the cluster with its topics, credentials and ACLs; unknown ids are fine.
    pub async fn delete_logical_cluster(
        &self,
        cluster_id: String,
    ) -> Result<ChangeResult, CellError> {
        let _guard = self.lead().await?;
        if !self.hub.image().clusters.contains_key(&cluster_id) {
            return Ok(ok(self.hub.offset()));
        }
        let record = Record::RemoveLogicalCluster(RemoveLogicalClusterRecord { cluster_id });
        Ok(ok(self.commit(vec![wrap(record)]).await?))
    }

    pub async fn put_credential(
        &self,
        credential: Option<CredentialRecord>,
    ) -> Result<ChangeResult, CellError> {
        let c = credential
            .ok_or_else(|| CellError::InvalidArgument("credential is required".into()))?;
        if c.api_key.is_empty() || c.secret_sha256.len() != 64 {
            return Err(CellError::InvalidArgument(
                "api_key is required and secret_sha256 is 64 hex characters".into(),
            ));
        }
        let _guard = self.lead().await?;
        if !self.hub.image().clusters.contains_key(&c.cluster_id) {
            return Err(CellError::NotFound(format!(
                "logical cluster {} does not exist",
                c.cluster_id
            )));
        }
        Ok(ok(self.commit(vec![wrap(Record::Credential(c))]).await?))
    }

    pub async fn delete_credential(&self, api_key: String) -> Result<ChangeResult, CellError> {
        let _guard = self.lead().await?;
        if !self.hub.image().credentials.contains_key(&api_key) {
            return Ok(ok(self.hub.offset()));
        }
        Ok(ok(self
            .commit(vec![wrap(Record::RemoveCredential(
                RemoveCredentialRecord { api_key },
            ))])
            .await?))
    }

    /// Add ACL bindings to `cluster_id` (already present ones are kept once).
    pub async fn create_acls(
        &self,
        cluster_id: String,
        acls: Vec<AclRecord>,
    ) -> Result<ChangeResult, CellError> {
        let mut records = Vec::with_capacity(acls.len());
        for mut acl in acls {
            acl.cluster_id = cluster_id.clone();
            crate::acl::validate_binding(&acl).map_err(CellError::InvalidArgument)?;
            records.push(wrap(Record::Acl(acl)));
        }
        let _guard = self.lead().await?;
        if !self.hub.image().clusters.contains_key(&cluster_id) {
            return Err(CellError::NotFound(format!(
                "logical cluster {cluster_id} does not exist"
            )));
        }
        if records.is_empty() {
            return Ok(ok(self.hub.offset()));
        }
        Ok(ok(self.commit(records).await?))
    }

    /// Remove the bindings of `cluster_id` each filter selects; returns them per filter.
    pub async fn delete_acls(
        &self,
        cluster_id: String,
        filters: Vec<AclRecord>,
    ) -> Result<DeleteAclsResponse, CellError> {
        let _guard = self.lead().await?;
        let mut removed: Vec<AclRecord> = Vec::new();
        let mut deleted = Vec::with_capacity(filters.len());
        {
            let image = self.hub.image();
            for f in &filters {
                let hits: Vec<AclRecord> = image
                    .acls
                    .iter()
                    .filter(|a| a.cluster_id == cluster_id && crate::acl::matches_filter(f, a))
                    .cloned()
                    .collect();
                for h in &hits {
                    if !removed.contains(h) {
                        removed.push(h.clone());
                    }
                }
                deleted.push(AclList { acls: hits });
            }
        }
        let offset = if removed.is_empty() {
            self.hub.offset()
        } else {
            let records = removed
                .into_iter()
                .map(|acl| wrap(Record::RemoveAcl(RemoveAclRecord { acl: Some(acl) })))
                .collect();
            self.commit(records).await?
        };
        Ok(DeleteAclsResponse {
            result: Some(ok(offset)),
            deleted,
        })
    }

    /// The cell's load from the image: per-broker leaders and replicas, and
    /// `load = max(average broker load, busiest broker load)`, where a broker's load is its
    /// replicas over `broker_replica_capacity` and the average spreads every replica over
    /// the ACTIVE brokers (a fenced broker's share falls on the others). Served by the
    /// leader so that it is current.
    pub async fn cell_load(&self) -> Result<CellLoad, CellError> {
        drop(self.lead().await?);
        let image = self.hub.image();
        let mut brokers: Vec<BrokerLoad> = image
            .brokers
            .values()
            .map(|b| BrokerLoad {
                broker_id: b.broker_id,
                zone: b.zone.clone(),
                state: b.state,
                kafka: b.kafka.clone(),
                sasl: b.sasl.clone(),
                sasl_ssl: b.sasl_ssl.clone(),
                ..Default::default()
            })
            .collect();
        let mut partitions = 0u32;
        let mut replicas = 0u64;
        for p in image.topics.values().flat_map(|t| t.partitions.values()) {
            partitions += 1;
            for b in brokers.iter_mut() {
                if p.replicas.contains(&b.broker_id) {
                    b.replicas += 1;
                    replicas += 1;
                }
                if p.leader == b.broker_id {
                    b.leaders += 1;
                }
            }
        }
        let active: Vec<&BrokerLoad> = brokers
            .iter()
            .filter(|b| b.state == BrokerState::Active as i32)
            .collect();
        let capacity = self.config.broker_replica_capacity.max(1) as f64;
        let load = if active.is_empty() {
            if replicas > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            let average = replicas as f64 / (active.len() as f64 * capacity);
            let busiest = active
                .iter()
                .map(|b| b.replicas as f64 / capacity)
                .fold(0.0, f64::max);
            average.max(busiest).min(1.0)
        };
        Ok(CellLoad {
            cell_id: self.config.cell_id.clone(),
            logical_clusters: image.clusters.len() as u32,
            partitions,
            bootstrap: active.iter().filter_map(|b| b.kafka.clone()).collect(),
            sasl_bootstrap: active.iter().filter_map(|b| b.sasl.clone()).collect(),
            sasl_ssl_bootstrap: active.iter().filter_map(|b| b.sasl_ssl.clone()).collect(),
            brokers,
            load,
            metadata_offset: image.offset,
        })
    }

    /// This voter's view of the quorum (any voter answers).
    pub fn describe_quorum(&self) -> DescribeQuorumResponse {
        let m = self.raft().metrics().borrow().clone();
        let leader = self.leader();
        DescribeQuorumResponse {
            node_id: self.config.node_id,
            leader_id: leader.as_ref().map(|(id, _)| *id).unwrap_or(0),
            leader_address: leader.map(|(_, a)| a).unwrap_or_default(),
            term: m.current_term,
            // Voters apply only committed entries: what is applied here is committed.
            committed_offset: self.hub.offset(),
            voters: m.membership_config.membership().voter_ids().collect(),
        }
    }
}
