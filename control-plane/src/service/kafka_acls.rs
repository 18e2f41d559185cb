//! Kafka REST's ACLs of a cluster: search, create and delete-by-filter, in Kafka REST v3's
//! names for the enums (`TOPIC`, `PREFIXED`, `READ`, `ALLOW`, ...).
//!
//! ACLs live in the cell's metadata per logical cluster and change through the brokers'
//! CreateAcls/DeleteAcls, so these are Kafka-protocol calls to the cluster's brokers with
//! the caller's own key ([`crate::kafka_client`]): describing needs DESCRIBE on the
//! cluster, changing ALTER (a user's key has both; a service account's key needs ACLs
//! granting them). What is checked here is what the request's shape can say (enum values
//! a binding may not take, lengths); the brokers check the rest (principal and host
//! formats, the CLUSTER resource's name) and their message is answered as a 400.

use super::kafka::ClusterKey;
use super::kafka_groups::session;
use super::AppState;
use crate::error::{Error, Result};
use crate::kafka_client::{AclBinding, AclFilter};
use crate::store::Cluster;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest resource name, principal or host taken.
pub const MAX_TEXT_LEN: usize = 255;

/// An enum of Kafka REST's ACL vocabulary with its Kafka protocol codes: `UNKNOWN` is
/// what an unknown code from a broker shows as.
macro_rules! acl_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The Kafka protocol's code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The variant of a Kafka protocol code (`UNKNOWN` for codes not listed).
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    _ => $name::Unknown,
                }
            }

            /// The name Kafka REST uses, e.g. `TRANSACTIONAL_ID`.
            pub fn name(self) -> String {
                serde_json::to_value(self)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            }
        }
    };
}

acl_enum!(
    /// What an ACL is about.
    AclResourceType {
        Unknown = 0,
        Any = 1,
        Topic = 2,
        Group = 3,
        Cluster = 4,
        TransactionalId = 5,
        DelegationToken = 6,
    }
);

acl_enum!(
    /// How `resource_name` matches: the name itself (`LITERAL`) or names starting with it
    /// (`PREFIXED`); filters may also say `ANY` or `MATCH`.
    AclPatternType {
        Unknown = 0,
        Any = 1,
        Match = 2,
        Literal = 3,
        Prefixed = 4,
    }
);

acl_enum!(
    /// What the ACL allows or denies.
    AclOperation {
        Unknown = 0,
        Any = 1,
        All = 2,
        Read = 3,
        Write = 4,
        Create = 5,
        Delete = 6,
        Alter = 7,
        Describe = 8,
        ClusterAction = 9,
        DescribeConfigs = 10,
        AlterConfigs = 11,
        IdempotentWrite = 12,
    }
);

acl_enum!(
    /// Whether the ACL allows or denies.
    AclPermission {
        Unknown = 0,
        Any = 1,
        Deny = 2,
        Allow = 3,
    }
);

/// One ACL binding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern_type: AclPatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl From<AclBinding> for Acl {
    fn from(b: AclBinding) -> Acl {
        Acl {
            resource_type: AclResourceType::from_code(b.resource_type),
            resource_name: b.resource_name,
            pattern_type: AclPatternType::from_code(b.pattern_type),
            principal: b.principal,
            host: b.host,
            operation: AclOperation::from_code(b.operation),
            permission: AclPermission::from_code(b.permission),
        }
    }
}

/// A filter over ACLs: an absent field matches any value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclQuery {
    pub resource_type: Option<AclResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: Option<AclPatternType>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<AclPermission>,
}

fn check_text(field: &str, value: &str, may_be_empty: bool) -> Result<()> {
    if (value.is_empty() && !may_be_empty)
        || value.chars().count() > MAX_TEXT_LEN
        || value.chars().any(char::is_control)
    {
        return Err(Error::InvalidArgument(format!(
            "{field} {value:?} is not valid: use 1 to {MAX_TEXT_LEN} characters without \
             control characters"
        )));
    }
    Ok(())
}

impl AclQuery {
    fn to_filter(&self) -> Result<AclFilter> {
        for (field, value) in [
            ("resource_name", &self.resource_name),
            ("principal", &self.principal),
            ("host", &self.host),
        ] {
            if let Some(v) = value {
                check_text(field, v, false)?;
            }
        }
        let unknown = |field: &str| {
            Error::InvalidArgument(format!(
                "{field} UNKNOWN matches nothing; leave it out (or say ANY) to match every value"
            ))
        };
        if self.resource_type == Some(AclResourceType::Unknown) {
            return Err(unknown("resource_type"));
        }
        if self.pattern_type == Some(AclPatternType::Unknown) {
            return Err(unknown("pattern_type"));
        }
        if self.operation == Some(AclOperation::Unknown) {
            return Err(unknown("operation"));
        }
        if self.permission == Some(AclPermission::Unknown) {
            return Err(unknown("permission"));
        }
        Ok(AclFilter {
            resource_type: self.resource_type.unwrap_or(AclResourceType::Any).code(),
            resource_name: self.resource_name.clone(),
            pattern_type: self.pattern_type.unwrap_or(AclPatternType::Any).code(),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.unwrap_or(AclOperation::Any).code(),
            permission: self.permission.unwrap_or(AclPermission::Any).code(),
        })
    }
}

/// Checks that `acl` is a binding (not a filter) and within bounds.
fn validate_binding(acl: &Acl) -> Result<AclBinding> {
    use AclOperation as Op;
    use AclPatternType as Pattern;
    use AclResourceType as Resource;
    if matches!(acl.resource_type, Resource::Unknown | Resource::Any) {
        return Err(Error::InvalidArgument(
            "resource_type must name a resource: TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID".into(),
        ));
    }
    if !matches!(acl.pattern_type, Pattern::Literal | Pattern::Prefixed) {
        return Err(Error::InvalidArgument(
            "pattern_type of an ACL must be LITERAL or PREFIXED (ANY and MATCH are for \
             searching)"
                .into(),
        ));
    }
    if matches!(acl.operation, Op::Unknown | Op::Any) {
        return Err(Error::InvalidArgument(
            "operation must name an operation, e.g. READ, WRITE, DESCRIBE or ALL".into(),
        ));
    }
    if !matches!(acl.permission, AclPermission::Allow | AclPermission::Deny) {
        return Err(Error::InvalidArgument(
            "permission of an ACL must be ALLOW or DENY".into(),
        ));
    }
    check_text("resource_name", &acl.resource_name, false)?;
    check_text("principal", &acl.principal, false)?;
    check_text("host", &acl.host, false)?;
    Ok(AclBinding {
        resource_type: acl.resource_type.code(),
        resource_name: acl.resource_name.clone(),
        pattern_type: acl.pattern_type.code(),
        principal: acl.principal.clone(),
        host: acl.host.clone(),
        operation: acl.operation.code(),
        permission: acl.permission.code(),
    })
}

/// The cluster's ACLs matching `query`, sorted.
pub async fn search(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    query: &AclQuery,
) -> Result<Vec<Acl>> {
    let filter = query.to_filter()?;
    let (_permit, mut session) = session(state, cluster, key)?;
    let mut acls: Vec<Acl> = session
        .describe_acls(&filter)
        .await?
        .into_iter()
        .map(Acl::from)
        .collect();
    acls.sort();
    Ok(acls)
}

/// Creates one ACL (creating one that exists changes nothing).
pub async fn create(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    acl: &Acl,
) -> Result<()> {
    let binding = validate_binding(acl)?;
    let (_permit, mut session) = session(state, cluster, key)?;
    session.create_acls(&[binding]).await?;
    tracing::info!(organization_id = %cluster.organization_id, cluster = %cluster.id, key = %key.key, principal = %acl.principal, resource = %acl.resource_name, "ACL created");
    Ok(())
}

/// Deletes the ACLs matching `query`, which must name the resource type, pattern type,
/// operation and permission (as Kafka REST requires; ANY is allowed); answers them.
pub async fn delete(
    state: &AppState,
    cluster: &Cluster,
    key: &ClusterKey,
    query: &AclQuery,
) -> Result<Vec<Acl>> {
    let missing: Vec<&str> = [
        ("resource_type", query.resource_type.is_none()),
        ("pattern_type", query.pattern_type.is_none()),
        ("operation", query.operation.is_none()),
        ("permission", query.permission.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "deleting ACLs needs {} in the query (ANY matches every value), so that a \
             delete never matches more than was meant",
            missing.join(", ")
        )));
    }
    let filter = query.to_filter()?;
    let (_permit, mut session) = session(state, cluster, key)?;
    let mut deleted: Vec<Acl> = session
        .delete_acls(&filter)
        .await?
        .into_iter()
        .map(Acl::from)
        .collect();
    deleted.sort();
    tracing::info!(organization_id = %cluster.organization_id, cluster = %cluster.id, key = %key.key, deleted = deleted.len(), "ACLs deleted");
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> Acl {
        Acl {
            resource_type: AclResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: AclPatternType::Prefixed,
            principal: "User:sa-1".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        }
    }

    #[test]
    fn names_and_codes_round_trip() {
        for code in 0..=12 {
            assert_eq!(AclOperation::from_code(code).code(), code);
        }
        assert_eq!(AclOperation::from_code(13), AclOperation::Unknown);
        assert_eq!(AclResourceType::TransactionalId.name(), "TRANSACTIONAL_ID");
        assert_eq!(AclOperation::IdempotentWrite.name(), "IDEMPOTENT_WRITE");
        let parsed: AclPatternType = serde_json::from_str("\"PREFIXED\"").unwrap();
        assert_eq!(parsed.code(), 4);
        assert!(serde_json::from_str::<AclPermission>("\"allow\"").is_err());
    }

    #[test]
    fn bindings_are_not_filters() {
        assert!(validate_binding(&acl()).is_ok());
        let bad = [
            Acl {
                resource_type: AclResourceType::Any,
                ..acl()
            },
            Acl {
                pattern_type: AclPatternType::Match,
                ..acl()
            },
            Acl {
                operation: AclOperation::Any,
                ..acl()
            },
            Acl {
                permission: AclPermission::Unknown,
                ..acl()
            },
            Acl {
                resource_name: String::new(),
                ..acl()
            },
            Acl {
                host: "x".repeat(256),
                ..acl()
            },
        ];
        for b in bad {
            assert!(
                matches!(validate_binding(&b), Err(Error::InvalidArgument(_))),
                "{b:?}"
            );
        }
    }

    #[test]
    fn queries_default_to_any() {
        let f = AclQuery::default().to_filter().unwrap();
        assert_eq!(
            (f.resource_type, f.pattern_type, f.operation, f.permission),
            (1, 1, 1, 1)
        );
        assert_eq!(f.principal, None);
        let q = AclQuery {
            operation: Some(AclOperation::Unknown),
            ..AclQuery::default()
        };
        assert!(q.to_filter().is_err());
    }
}
