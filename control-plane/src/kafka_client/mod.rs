//! A small, bounded Kafka admin client: what Kafka REST needs of a cluster that lives on
//! its brokers rather than in the cell controller (consumer groups, their offsets, the
//! partitions' log ends, ACLs), asked over the Kafka protocol the way any Kafka client
//! would.
//!
//! A [`Session`] speaks to the cluster's SASL_PLAINTEXT bootstrap (the cluster row's
//! `bootstrap`) with the *caller's own* cluster API key and secret, so the brokers do
//! authorization (a service account's key sees only what its ACLs allow) and tenant
//! isolation (every group and topic is looked up in the key's logical cluster only) exactly
//! as for any other client of that key. Nothing here knows about tenants.
//!
//! Bounded: one session is one REST request; it opens at most one connection per broker
//! (`connection.rs`: SASL/PLAIN handshake, frames capped at [`Limits::max_response_bytes`]),
//! every call is capped by [`Limits::call_timeout`] and the whole session by its deadline
//! ([`Limits::operation_timeout`]); retriable Kafka errors (a coordinator still loading, a
//! leader moving) are retried with a short backoff until that deadline. Connections close
//! when the session is dropped. The codec is the `kafka-protocol` crate.
//!
//! Errors are the crate's [`Error`]: the brokers' authorization failures are
//! [`Error::Forbidden`], an unreachable broker or a retriable error past the deadline
//! [`Error::Unavailable`], with what to do about it ([`refused`]).

mod acls;
mod connection;
mod groups;

pub use acls::{AclBinding, AclFilter};
pub use groups::{GroupDescription, ListedGroup, Member};

use crate::error::{Error, Result};
pub(crate) use connection::kafka_error_name;
use connection::Connection;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// The bounds of every [`Session`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// TCP connect to one broker.
    pub connect_timeout: Duration,
    /// One request and its response.
    pub call_timeout: Duration,
    /// A whole session (one REST request), retries included.
    pub operation_timeout: Duration,
    /// The largest response frame read; larger ones fail the call before allocating.
    pub max_response_bytes: usize,
    /// Most sessions open at once in this process; more answer 429.
    pub max_concurrent_sessions: usize,
    /// Most brokers one session talks to (ListGroups asks every broker).
    pub max_brokers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(20),
            max_response_bytes: 16 << 20,
            max_concurrent_sessions: 64,
            max_brokers: 64,
        }
    }
}

/// A cluster API key and its secret: the SASL/PLAIN user and password.
#[derive(Clone)]
pub struct Credentials {
    pub key: String,
    pub secret: String,
}

/// Backoff between attempts of a retriable call.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One REST request's conversation with a cluster's brokers.
pub struct Session {
    /// `host:port` of the brokers to bootstrap from.
    bootstrap: Vec<String>,
    credentials: Credentials,
    limits: Limits,
    deadline: Instant,
    /// Open connections by `host:port`.
    connections: HashMap<String, Connection>,
    /// The cluster's brokers by id, from the last Metadata.
    brokers: BTreeMap<i32, String>,
}

impl Session {
    /// A session with the brokers of `bootstrap` (`host:port,host:port,...`, optionally
    /// prefixed `SASL_PLAINTEXT://`). Nothing is connected until the first call.
    pub fn new(bootstrap: &str, credentials: Credentials, limits: Limits) -> Result<Session> {
        let bootstrap: Vec<String> = bootstrap
            .trim_start_matches("SASL_PLAINTEXT://")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .take(limits.max_brokers)
            .map(str::to_string)
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::Unavailable(
                "the cluster has no bootstrap endpoint yet; retry once it is PROVISIONED".into(),
            ));
        }
        Ok(Session {
            bootstrap,
            credentials,
            limits,
            deadline: Instant::now() + limits.operation_timeout,
            connections: HashMap::new(),
            brokers: BTreeMap::new(),
        })
    }

    /// The connection to `addr`, opened (and authenticated) on first use.
    async fn connection(&mut self, addr: &str) -> Result<&mut Connection> {
        use std::collections::hash_map::Entry;
        match self.connections.entry(addr.to_string()) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => {
                if Instant::now() >= self.deadline {
                    return Err(Error::Unavailable(format!(
                        "the cluster's brokers did not answer within {:?}; retry",
                        self.limits.operation_timeout
                    )));
                }
                let mut conn = Connection::connect(addr, self.limits, self.deadline).await?;
                conn.authenticate(&self.credentials, self.deadline).await?;
                Ok(v.insert(conn))
            }
        }
    }

    /// Sends the request `build` makes for the negotiated version (the highest both sides
    /// support within `ours`) to `addr`; answers the version used and the response. A
    /// connection that failed is dropped, so the next call reconnects.
    async fn call<R: Request>(
        &mut self,
        addr: &str,
        ours: VersionRange,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response)> {
        let deadline = self.deadline;
        let conn = self.connection(addr).await?;
        let version = conn.version::<R>(ours)?;
        let req = build(version);
        match conn.send(&req, version, deadline).await {
            Ok(resp) => Ok((version, resp)),
            Err(e) => {
                self.connections.remove(addr);
                Err(e)
            }
        }
    }

    /// A broker to ask cluster-wide questions: one already connected, else the first
    /// bootstrap address that accepts a connection (a refused key fails at once: it is the
    /// same on every broker).
    async fn any_broker(&mut self) -> Result<String> {
        if let Some(addr) = self.connections.keys().next() {
            return Ok(addr.clone());
        }
        let mut last = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, self.limits, self.deadline).await {
                Ok(mut conn) => {
                    conn.authenticate(&self.credentials, self.deadline).await?;
                    self.connections.insert(addr.clone(), conn);
                    return Ok(addr.clone());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no bootstrap broker".into())))
    }

    /// Metadata for `topics` (`None`: every topic the key may describe); remembers the
    /// brokers.
    async fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<MetadataResponse> {
        let addr = self.any_broker().await?;
        let (_, resp) = self
            .call(&addr, VersionRange { min: 1, max: 12 }, |_| {
                MetadataRequest::default()
                    .with_topics(topics.map(|names| {
                        names
                            .into_iter()
                            .map(|n| {
                                MetadataRequestTopic::default()
                                    .with_name(Some(TopicName(StrBytes::from_string(n))))
                            })
                            .collect()
                    }))
                    .with_allow_auto_topic_creation(false)
            })
            .await?;
        self.brokers = resp
            .brokers
            .iter()
            .take(self.limits.max_brokers)
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(resp)
    }

    /// `host:port` of broker `id` (from the last Metadata, fetched if needed).
    async fn broker(&mut self, id: i32) -> Result<String> {
        if !self.brokers.contains_key(&id) {
            self.metadata(Some(Vec::new())).await?;
        }
        self.brokers.get(&id).cloned().ok_or_else(|| {
            Error::Unavailable(format!(
                "broker {id} is not in the cluster's metadata right now; retry"
            ))
        })
    }

    /// Waits before another attempt of a retriable call; false when the deadline leaves no
    /// time for one.
    async fn backoff(&self, attempt: u32) -> bool {
        let wait = RETRY_BACKOFF * attempt.min(10);
        if Instant::now() + wait >= self.deadline {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

/// Whether a Kafka error code is worth another attempt (a coordinator or leader moving
/// or loading).
fn retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// The crate's error for a Kafka error `code` a broker (`addr`, or "" when not one in
/// particular) answered to `what` (e.g. "DescribeGroups for group \"orders\""), with the
/// broker's message when it sent one.
pub(crate) fn refused(addr: &str, code: i16, message: Option<&str>, what: &str) -> Error {
    use ResponseError as E;
    let who = if addr.is_empty() {
        "the cluster's brokers".to_string()
    } else {
        format!("broker {addr}")
    };
    let name = kafka_error_name(code);
    let detail = message
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match ResponseError::try_from_code(code) {
        Some(
            E::GroupAuthorizationFailed
            | E::TopicAuthorizationFailed
            | E::ClusterAuthorizationFailed
            | E::TransactionalIdAuthorizationFailed,
        ) => Error::Forbidden(format!(
            "the cluster refused {what} to this API key ({name}{detail}); a service \
             account's key needs an ACL allowing it: grant one with POST \
             /kafka/v3/clusters/{{cluster_id}}/acls using a key owned by a user"
        )),
        Some(E::InvalidRequest | E::InvalidGroupId | E::PolicyViolation) => {
            Error::InvalidArgument(format!("the cluster refused {what} ({name}){detail}"))
        }
        Some(e) if e.is_retriable() => Error::Unavailable(format!(
            "{who} could not serve {what} yet ({name}{detail}); retry"
        )),
        _ => Error::Unavailable(format!("{who} answered {what} with {name}{detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_parsed_and_bounded() {
        let creds = Credentials {
            key: "K".into(),
            secret: "S".into(),
        };
        let s = Session::new(
            "SASL_PLAINTEXT://a:1, b:2,,c:3",
            creds.clone(),
            Limits {
                max_brokers: 2,
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(s.bootstrap, vec!["a:1", "b:2"]);
        assert!(matches!(
            Session::new(" , ", creds, Limits::default()),
            Err(Error::Unavailable(_))
        ));
    }

    #[test]
    fn kafka_errors_map_to_what_the_caller_can_do() {
        let e = refused("b:1", 30, None, "DescribeGroups");
        assert!(matches!(&e, Error::Forbidden(m) if m.contains("GroupAuthorizationFailed (30)")));
        let e = refused("b:1", 14, Some("loading"), "OffsetFetch");
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains("retry") && m.contains("loading"))
        );
        let e = refused("b:1", 42, Some("bad principal"), "CreateAcls");
        assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("bad principal")));
        assert!(retriable(16) && !retriable(30) && !retriable(0));
        assert_eq!(kafka_error_name(0), "no error (0)");
    }
}
