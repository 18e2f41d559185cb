//! ACLs of logical clusters, in Kafka's model: bindings of (resource type, name, pattern)
//! to (principal, host, operation, allow/deny), kept in the cell's image per cluster.
//!
//! Pure functions shared by the controller (validating and deleting bindings) and the
//! brokers (DescribeAcls, and authorizing every request): [`matches_filter`] is Kafka's
//! `AclBindingFilter` match, [`authorize`] its `StandardAuthorizer` decision (a DENY wins;
//! READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
//! Filters use the empty string where Kafka uses null ("any").

use proto::cell::v1::AclRecord;

/// Kafka's `ResourceType` codes.
pub mod resource {
    pub const ANY: i32 = 1;
    pub const TOPIC: i32 = 2;
    pub const GROUP: i32 = 3;
    pub const CLUSTER: i32 = 4;
    pub const TRANSACTIONAL_ID: i32 = 5;
}

/// Kafka's `PatternType` codes.
pub mod pattern {
    pub const ANY: i32 = 1;
    pub const MATCH: i32 = 2;
    pub const LITERAL: i32 = 3;
    pub const PREFIXED: i32 = 4;
}

/// Kafka's `AclOperation` codes.
pub mod op {
    pub const ANY: i32 = 1;
    pub const ALL: i32 = 2;
    pub const READ: i32 = 3;
    pub const WRITE: i32 = 4;
    pub const CREATE: i32 = 5;
    pub const DELETE: i32 = 6;
    pub const ALTER: i32 = 7;
    pub const DESCRIBE: i32 = 8;
    pub const CLUSTER_ACTION: i32 = 9;
    pub const DESCRIBE_CONFIGS: i32 = 10;
    pub const ALTER_CONFIGS: i32 = 11;
    pub const IDEMPOTENT_WRITE: i32 = 12;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission {
    pub const ANY: i32 = 1;
    pub const DENY: i32 = 2;
    pub const ALLOW: i32 = 3;
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal and host.
pub const WILDCARD: &str = "*";
pub const ANY_USER: &str = "User:*";

/// Why a binding cannot be created, as a message that says what to fix.
pub fn validate_binding(acl: &AclRecord) -> Result<(), String> {
    if !matches!(
        acl.resource_type,
        resource::TOPIC | resource::GROUP | resource::CLUSTER | resource::TRANSACTIONAL_ID
    ) {
        return Err(format!(
            "resource type {} is not one of TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID",
            acl.resource_type
        ));
    }
    if !matches!(acl.pattern_type, pattern::LITERAL | pattern::PREFIXED) {
        return Err("pattern type must be LITERAL or PREFIXED".into());
    }
    if acl.resource_name.is_empty() || acl.resource_name.len() > 255 {
        return Err("resource name must be 1 to 255 characters".into());
    }
    if acl.resource_type == resource::CLUSTER && acl.resource_name != CLUSTER_NAME {
        return Err(format!("a CLUSTER resource is named `{CLUSTER_NAME}`"));
    }
    let principal_ok = acl.principal == ANY_USER
        || acl
            .principal
            .strip_prefix("User:")
            .is_some_and(|id| (id.starts_with("sa-") || id.starts_with("u-")) && id.len() <= 64);
    if !principal_ok {
        return Err(format!(
            "principal `{}` must be User:sa-..., User:u-... or User:*",
            acl.principal
        ));
    }
    if acl.host.is_empty()
        || (acl.host != WILDCARD && acl.host.parse::<std::net::IpAddr>().is_err())
    {
        return Err(format!("host `{}` must be * or an IP address", acl.host));
    }
    if !(op::ALL..=op::IDEMPOTENT_WRITE).contains(&acl.operation) {
        return Err(format!(
            "operation {} is not a valid ACL operation",
            acl.operation
        ));
    }
    if !matches!(acl.permission, permission::ALLOW | permission::DENY) {
        return Err("permission must be ALLOW or DENY".into());
    }
    Ok(())
}

/// Whether binding `acl` is selected by `filter` (Kafka's `AclBindingFilter.matches`).
pub fn matches_filter(filter: &AclRecord, acl: &AclRecord) -> bool {
    let resource_type =
        filter.resource_type == resource::ANY || filter.resource_type == acl.resource_type;
    let name = &filter.resource_name;
    let pattern = match filter.pattern_type {
        pattern::ANY => name.is_empty() || *name == acl.resource_name,
        pattern::MATCH => {
            name.is_empty()
                || match acl.pattern_type {
                    pattern::LITERAL => acl.resource_name == *name || acl.resource_name == WILDCARD,
                    pattern::PREFIXED => name.starts_with(&acl.resource_name),
                    _ => false,
                }
        }
        p => p == acl.pattern_type && (name.is_empty() || *name == acl.resource_name),
    };
    let principal = filter.principal.is_empty() || filter.principal == acl.principal;
    let host = filter.host.is_empty() || filter.host == acl.host;
    let operation = filter.operation == op::ANY || filter.operation == acl.operation;
    let permission = filter.permission == permission::ANY || filter.permission == acl.permission;
    resource_type && pattern && principal && host && operation && permission
}

/// Whether `principal` connecting from `host` may do `operation` on the resource
/// (`resource_type`, `name`) of `cluster`, under the cell's bindings `acls`.
pub fn authorize(
    acls: &[AclRecord],
    cluster: &str,
    principal: &str,
    host: &str,
    operation: i32,
    resource_type: i32,
    name: &str,
) -> bool {
    let relevant = acls.iter().filter(|a| {
        a.cluster_id == cluster
            && a.resource_type == resource_type
            && (a.principal == principal || a.principal == ANY_USER)
            && (a.host == WILDCARD || a.host == host)
            && match a.pattern_type {
                pattern::LITERAL => a.resource_name == name || a.resource_name == WILDCARD,
                pattern::PREFIXED => name.starts_with(&a.resource_name),
                _ => false,
            }
    });
    let mut allowed = false;
    for a in relevant {
        if a.permission == permission::DENY && (a.operation == operation || a.operation == op::ALL)
        {
            return false;
        }
        if a.permission == permission::ALLOW && implies(a.operation, operation) {
            allowed = true;
        }
    }
    allowed
}

/// Whether an ALLOW of `granted` covers `wanted`.
fn implies(granted: i32, wanted: i32) -> bool {
    granted == wanted
        || granted == op::ALL
        || (wanted == op::DESCRIBE
            && matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER))
        || (wanted == op::DESCRIBE_CONFIGS && granted == op::ALTER_CONFIGS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rt: i32, name: &str, pt: i32, principal: &str, operation: i32, perm: i32) -> AclRecord {
        AclRecord {
            cluster_id: "lkc-a".into(),
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: perm,
        }
    }

    #[test]
    fn read_on_one_topic_allows_reading_and_describing_it_only() {
        let acls = vec![acl(
            resource::TOPIC,
            "orders",
            pattern::LITERAL,
            "User:sa-1",
            op::READ,
            permission::ALLOW,
        )];
        let can = |principal: &str, operation: i32, rt: i32, name: &str| {
            authorize(&acls, "lkc-a", principal, "10.0.0.1", operation, rt, name)
        };
        assert!(can("User:sa-1", op::READ, resource::TOPIC, "orders"));
        assert!(can("User:sa-1", op::DESCRIBE, resource::TOPIC, "orders"));
        assert!(!can("User:sa-1", op::WRITE, resource::TOPIC, "orders"));
        assert!(!can("User:sa-1", op::READ, resource::TOPIC, "orders2"));
        assert!(!can("User:sa-1", op::READ, resource::GROUP, "orders"));
        assert!(!can("User:sa-2", op::READ, resource::TOPIC, "orders"));
        assert!(!authorize(
            &acls,
            "lkc-b",
            "User:sa-1",
            "10.0.0.1",
            op::READ,
            resource::TOPIC,
            "orders"
        ));
    }

    #[test]
    fn prefixes_wildcards_and_deny_wins() {
        let acls = vec![
            acl(
                resource::TOPIC,
                "logs-",
                pattern::PREFIXED,
                "User:*",
                op::ALL,
                permission::ALLOW,
            ),
            acl(
                resource::TOPIC,
                "logs-secret",
                pattern::LITERAL,
                "User:sa-1",
                op::READ,
                permission::DENY,
            ),
            acl(
                resource::GROUP,
                "*",
                pattern::LITERAL,
                "User:sa-1",
                op::READ,
                permission::ALLOW,
            ),
        ];
        let can = |operation: i32, rt: i32, name: &str| {
            authorize(&acls, "lkc-a", "User:sa-1", "1.2.3.4", operation, rt, name)
        };
        assert!(can(op::WRITE, resource::TOPIC, "logs-app"));
        assert!(!can(op::READ, resource::TOPIC, "logs-secret"));
        assert!(can(op::WRITE, resource::TOPIC, "logs-secret"));
        assert!(!can(op::READ, resource::TOPIC, "other"));
        assert!(can(op::READ, resource::GROUP, "anything"));
        assert!(can(op::DESCRIBE, resource::GROUP, "anything"));
    }

    #[test]
    fn filters_select_as_kafka_does() {
        let literal = acl(
            resource::TOPIC,
            "orders",
            pattern::LITERAL,
            "User:sa-1",
            op::READ,
            permission::ALLOW,
        );
        let prefixed = acl(
            resource::TOPIC,
            "ord",
            pattern::PREFIXED,
            "User:sa-1",
            op::READ,
            permission::ALLOW,
        );
        let any = AclRecord {
            resource_type: resource::ANY,
            pattern_type: pattern::ANY,
            operation: op::ANY,
            permission: permission::ANY,
            ..Default::default()
        };
        assert!(matches_filter(&any, &literal) && matches_filter(&any, &prefixed));
        let matching = AclRecord {
            pattern_type: pattern::MATCH,
            resource_name: "orders".into(),
            ..any.clone()
        };
        assert!(matches_filter(&matching, &literal) && matches_filter(&matching, &prefixed));
        let exact = AclRecord {
            pattern_type: pattern::LITERAL,
            resource_name: "orders".into(),
            ..any.clone()
        };
        assert!(matches_filter(&exact, &literal) && !matches_filter(&exact, &prefixed));
        let other_principal = AclRecord {
            principal: "User:sa-2".into(),
            ..any
        };
        assert!(!matches_filter(&other_principal, &literal));
    }

    #[test]
    fn bindings_are_validated_with_a_reason() {
        let good = acl(
            resource::TOPIC,
            "orders",
            pattern::LITERAL,
            "User:sa-1",
            op::READ,
            permission::ALLOW,
        );
        assert!(validate_binding(&good).is_ok());
        for bad in [
            AclRecord {
                principal: "sa-1".into(),
                ..good.clone()
            },
            AclRecord {
                pattern_type: pattern::MATCH,
                ..good.clone()
            },
            AclRecord {
                resource_type: resource::CLUSTER,
                ..good.clone()
            },
            AclRecord {
                host: "nowhere".into(),
                ..good.clone()
            },
            AclRecord {
                operation: op::ANY,
                ..good.clone()
            },
            AclRecord {
                permission: permission::ANY,
                ..good.clone()
            },
        ] {
            assert!(validate_binding(&bad).is_err(), "{bad:?}");
        }
    }
}
