//! ACLs through the Kafka protocol: DescribeAcls, CreateAcls and DeleteAcls (v1 to 3),
//! asked of any broker of the cluster (the brokers apply them through the cell controller).
//! Enums travel as Kafka's codes; naming them is the caller's business.

use super::{refused, Session};
use crate::error::{Error, Result};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::{StrBytes, VersionRange};

/// The versions used (v1 added pattern types; later ones only change the encoding).
const ACL_VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

/// One ACL binding, with Kafka's codes for its enums.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A filter over bindings: `None` names match any; codes may be ANY (1) or, for the
/// pattern type, MATCH (2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

fn text(s: &Option<String>) -> Option<StrBytes> {
    s.clone().map(StrBytes::from_string)
}

impl Session {
    /// The bindings matching `filter`, in the broker's order.
    pub async fn describe_acls(&mut self, filter: &AclFilter) -> Result<Vec<AclBinding>> {
        let addr = self.any_broker().await?;
        let (_, resp) = self
            .call(&addr, ACL_VERSIONS, |_| {
                DescribeAclsRequest::default()
                    .with_resource_type_filter(filter.resource_type)
                    .with_resource_name_filter(text(&filter.resource_name))
                    .with_pattern_type_filter(filter.pattern_type)
                    .with_principal_filter(text(&filter.principal))
                    .with_host_filter(text(&filter.host))
                    .with_operation(filter.operation)
                    .with_permission_type(filter.permission)
            })
            .await?;
        if resp.error_code != 0 {
            return Err(refused(
                &addr,
                resp.error_code,
                resp.error_message.as_deref(),
                "DescribeAcls",
            ));
        }
        Ok(resp
            .resources
            .into_iter()
            .flat_map(|r| {
                r.acls.into_iter().map(move |a| AclBinding {
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.to_string(),
                    pattern_type: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect())
    }

    /// Creates `bindings` (one CreateAcls); fails with the first binding's refusal.
    pub async fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<()> {
        let addr = self.any_broker().await?;
        let (_, resp) = self
            .call(&addr, ACL_VERSIONS, |_| {
                CreateAclsRequest::default().with_creations(
                    bindings
                        .iter()
                        .map(|b| {
                            AclCreation::default()
                                .with_resource_type(b.resource_type)
                                .with_resource_name(StrBytes::from_string(b.resource_name.clone()))
                                .with_resource_pattern_type(b.pattern_type)
                                .with_principal(StrBytes::from_string(b.principal.clone()))
                                .with_host(StrBytes::from_string(b.host.clone()))
                                .with_operation(b.operation)
                                .with_permission_type(b.permission)
                        })
                        .collect(),
                )
            })
            .await?;
        if resp.results.len() != bindings.len() {
            return Err(Error::Unavailable(format!(
                "broker {addr} answered {} results to CreateAcls of {}",
                resp.results.len(),
                bindings.len()
            )));
        }
        match resp.results.into_iter().find(|r| r.error_code != 0) {
            None => Ok(()),
            Some(r) => Err(refused(
                &addr,
                r.error_code,
                r.error_message.as_deref(),
                "CreateAcls",
            )),
        }
    }

    /// Deletes the bindings matching `filter`; answers what was deleted.
    pub async fn delete_acls(&mut self, filter: &AclFilter) -> Result<Vec<AclBinding>> {
        let addr = self.any_broker().await?;
        let (_, resp) = self
            .call(&addr, ACL_VERSIONS, |_| {
                DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                    .with_resource_type_filter(filter.resource_type)
                    .with_resource_name_filter(text(&filter.resource_name))
                    .with_pattern_type_filter(filter.pattern_type)
                    .with_principal_filter(text(&filter.principal))
                    .with_host_filter(text(&filter.host))
                    .with_operation(filter.operation)
                    .with_permission_type(filter.permission)])
            })
            .await?;
        let Some(result) = resp.filter_results.into_iter().next() else {
            return Err(Error::Unavailable(format!(
                "broker {addr} answered DeleteAcls without a result"
            )));
        };
        if result.error_code != 0 {
            return Err(refused(
                &addr,
                result.error_code,
                result.error_message.as_deref(),
                "DeleteAcls",
            ));
        }
        Ok(result
            .matching_acls
            .into_iter()
            .filter(|a| a.error_code == 0)
            .map(|a| AclBinding {
                resource_type: a.resource_type,
                resource_name: a.resource_name.to_string(),
                pattern_type: a.pattern_type,
                principal: a.principal.to_string(),
                host: a.host.to_string(),
                operation: a.operation,
                permission: a.permission_type,
            })
            .collect())
    }
}
