//! Tenant namespaces: every topic and group belongs to one logical cluster (`lkc-...`),
//! and a connection only ever reaches the namespace of the cluster it is bound to.
//!
//! Clients name topics and groups as on any Kafka cluster. Topics are kept per tenant
//! ([`Namespaces`]): a lookup always starts from the session's tenant, so another
//! tenant's topic is not "forbidden" but simply absent. Topic ids are global UUIDs, and a
//! lookup by id also stays inside the tenant's namespace.
//!
//! Groups share coordinators across tenants in a cell, so their ids are scoped by
//! prefixing the tenant (`lkc-abc/my-group`); handlers translate on the way in and out
//! ([`internal_group`], [`external_group`]). Tenant ids never contain `/`, so the split
//! is unambiguous whatever the group id holds. A standalone broker has one tenant and
//! keeps group ids as they are.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::broker::Topic;

/// A logical cluster id (`lkc-...`), cheap to clone into tasks.
pub type TenantId = Arc<str>;

/// Each tenant's topics by name.
#[derive(Default)]
pub struct Namespaces {
    by_tenant: HashMap<TenantId, HashMap<String, Arc<Topic>>>,
}

impl Namespaces {
    pub fn topic(&self, tenant: &str, name: &str) -> Option<Arc<Topic>> {
        self.by_tenant.get(tenant)?.get(name).cloned()
    }

    pub fn topic_by_id(&self, tenant: &str, id: Uuid) -> Option<Arc<Topic>> {
        self.by_tenant
            .get(tenant)?
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// The tenant's topics, sorted by name.
    pub fn topics(&self, tenant: &str) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self
            .by_tenant
            .get(tenant)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every topic with its tenant (metrics): never for answering a client.
    pub fn all_by_tenant(&self) -> Vec<(TenantId, Arc<Topic>)> {
        self.by_tenant
            .iter()
            .flat_map(|(t, m)| m.values().map(move |topic| (t.clone(), topic.clone())))
            .collect()
    }

    /// Every tenant's topics (retention, metrics): never for answering a client.
    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.by_tenant
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// How many partitions the tenant has on this broker's view of the cluster.
    pub fn partition_count(&self, tenant: &str) -> usize {
        self.by_tenant
            .get(tenant)
            .map_or(0, |m| m.values().map(|t| t.partitions.len()).sum())
    }

    pub fn insert(&mut self, tenant: &TenantId, topic: Arc<Topic>) {
        self.by_tenant
            .entry(tenant.clone())
            .or_default()
            .insert(topic.name.clone(), topic);
    }

    pub fn remove(&mut self, tenant: &str, name: &str) -> Option<Arc<Topic>> {
        self.by_tenant.get_mut(tenant)?.remove(name)
    }

    /// The topics of one tenant (the standalone catalog).
    pub fn tenant(&self, tenant: &str) -> impl Iterator<Item = &Arc<Topic>> {
        self.by_tenant
            .get(tenant)
            .into_iter()
            .flat_map(|m| m.values())
    }
}

/// The coordinator's key for `group` of `tenant`: scoped in a cell, as is when
/// standalone (one tenant).
pub fn internal_group(in_cell: bool, tenant: &str, group: &str) -> String {
    if in_cell {
        format!("{tenant}/{group}")
    } else {
        group.to_string()
    }
}

/// The client-visible id of a coordinator key, if it belongs to `tenant`.
pub fn external_group<'a>(in_cell: bool, tenant: &str, internal: &'a str) -> Option<&'a str> {
    if !in_cell {
        return Some(internal);
    }
    internal
        .strip_prefix(tenant)
        .and_then(|rest| rest.strip_prefix('/'))
}

/// The tenant a coordinator key belongs to (in a cell).
pub fn group_tenant(internal: &str) -> Option<&str> {
    internal.split_once('/').map(|(tenant, _)| tenant)
}

/// Whether `id` can name a logical cluster: `lkc-` style ids of letters, digits and `-`.
/// Ids starting with `__` are the cell's own and never a tenant's.
pub fn valid_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with("__")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_round_trip_and_never_cross_tenants() {
        let key = internal_group(true, "lkc-a", "orders/v1");
        assert_eq!(key, "lkc-a/orders/v1");
        assert_eq!(external_group(true, "lkc-a", &key), Some("orders/v1"));
        assert_eq!(external_group(true, "lkc-ab", &key), None);
        assert_eq!(external_group(true, "lkc", &key), None);
        assert_eq!(group_tenant(&key), Some("lkc-a"));
        assert_eq!(internal_group(false, "lkc-a", "g"), "g");
        assert_eq!(external_group(false, "lkc-a", "g"), Some("g"));
    }

    #[test]
    fn tenant_ids_exclude_the_cells_own() {
        assert!(valid_tenant_id("lkc-7f3a"));
        assert!(!valid_tenant_id("__cell"));
        assert!(!valid_tenant_id("lkc/x"));
        assert!(!valid_tenant_id(""));
    }
}
