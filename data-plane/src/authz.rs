//! Who is asking, and what they may do: every handler gets a [`Caller`] and asks it
//! before touching a topic, group or the cluster.
//!
//! - Unauthenticated clients (a standalone broker, or `--tenant` on a cell broker's
//!   PLAINTEXT listener: local development) may do everything in their one cluster.
//! - A key owned by a user has full access to its cluster.
//! - A key owned by a service account may do only what its cluster's ACLs allow
//!   ([`cells::acl::authorize`]), evaluated against the metadata image of the moment the
//!   request arrived.

use std::sync::Arc;

use cells::acl::{self, op, resource};
use cells::image::CellImage;

use crate::auth::Principal;
use crate::broker::Broker;
use crate::connection::Session;
use crate::namespace::TenantId;

/// The tenant and principal of one request.
pub struct Caller {
    pub tenant: TenantId,
    principal: Option<Arc<Principal>>,
    /// The peer's address, formatted only when an ACL check needs it.
    peer: std::net::IpAddr,
    image: Option<Arc<CellImage>>,
}

impl Caller {
    pub fn new(broker: &Broker, session: &Session, tenant: TenantId) -> Caller {
        let restricted = session.principal.as_ref().is_some_and(|p| !p.full_access);
        Caller {
            tenant,
            principal: session.principal.clone(),
            peer: session.peer.ip(),
            // Only a restricted principal needs the ACLs.
            image: if restricted {
                broker.cell.as_ref().map(|c| c.image())
            } else {
                None
            },
        }
    }

    /// Whether the caller may do `operation` on (`resource_type`, `name`).
    pub fn allows(&self, operation: i32, resource_type: i32, name: &str) -> bool {
        match (&self.principal, &self.image) {
            (None, _) => true,
            (Some(p), _) if p.full_access => true,
            (Some(p), Some(image)) => acl::authorize(
                &image.acls,
                &self.tenant,
                &p.name,
                &self.peer.to_string(),
                operation,
                resource_type,
                name,
            ),
            (Some(_), None) => false,
        }
    }

    pub fn on_topic(&self, operation: i32, topic: &str) -> bool {
        self.allows(operation, resource::TOPIC, topic)
    }

    pub fn on_group(&self, operation: i32, group: &str) -> bool {
        self.allows(operation, resource::GROUP, group)
    }

    pub fn on_cluster(&self, operation: i32) -> bool {
        self.allows(operation, resource::CLUSTER, acl::CLUSTER_NAME)
    }

    /// Creating `topic` needs CREATE on the cluster or on the topic.
    pub fn may_create_topic(&self, topic: &str) -> bool {
        self.on_cluster(op::CREATE) || self.on_topic(op::CREATE, topic)
    }

    /// An idempotent producer id: IDEMPOTENT_WRITE on the cluster, or WRITE on some
    /// topic (as Kafka 3 allows).
    pub fn may_write_idempotently(&self) -> bool {
        if self.on_cluster(op::IDEMPOTENT_WRITE) {
            return true;
        }
        match (&self.principal, &self.image) {
            (Some(p), Some(image)) if !p.full_access => image.acls.iter().any(|a| {
                a.cluster_id == *self.tenant
                    && a.resource_type == resource::TOPIC
                    && (a.principal == p.name || a.principal == acl::ANY_USER)
                    && a.permission == acl::permission::ALLOW
                    && matches!(a.operation, op::WRITE | op::ALL)
            }),
            _ => false,
        }
    }
}
