//! The SASL exchange of a connection on the SASL listener: SaslHandshake (v1) picks PLAIN,
//! SCRAM-SHA-256 or SCRAM-SHA-512, then SaslAuthenticate carries the mechanism's messages
//! (`crate::auth` checks PLAIN tokens, `crate::scram` runs SCRAM). Success binds the session
//! to the key's logical cluster, within the tenant's connection limits; every failure is
//! answered after `auth::FAILURE_DELAY`, counted per address, and closes the connection.
//!
//! Answered here rather than by a handler because it changes the session; the connection
//! calls [`step`] for SaslHandshake and SaslAuthenticate only.

use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, SaslAuthenticateResponse, SaslHandshakeResponse};
use kafka_protocol::ResponseError as E;
use tracing::info;

use crate::auth::{self, PlainOutcome, Principal};
use crate::broker::Broker;
use crate::codec::Request;
use crate::connection::{Listener, Session};
use crate::handler::{self, Reply};
use crate::namespace::TenantId;
use crate::scram::{Mechanism, ScramServer, ScramStep};

/// Where a connection is in SASL authentication.
#[derive(Debug)]
pub enum SaslState {
    /// Nothing yet: SaslHandshake is next.
    Start,
    /// PLAIN chosen: SaslAuthenticate is next.
    Plain,
    /// SCRAM chosen: SaslAuthenticate rounds until the server-final message.
    Scram(Box<ScramServer>),
    /// Authenticated (or a PLAINTEXT connection, which never does SASL).
    Done,
}

impl SaslState {
    pub fn is_done(&self) -> bool {
        matches!(self, SaslState::Done)
    }
}

fn fail(message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(E::SaslAuthenticationFailed.code())
        .with_error_message(Some(handler::s(message)))
}

/// One SASL request: the reply, and `Err(reason)` when the connection must close after it.
pub async fn step(
    broker: &Broker,
    session: &mut Session,
    state: &mut SaslState,
    request: Request,
) -> (Reply, Result<(), String>) {
    let version = request.version();
    let current = std::mem::replace(state, SaslState::Start);
    match (request.body, current) {
        (RequestKind::SaslHandshake(_), SaslState::Start) if version == 0 => (
            Reply::None,
            Err("SaslHandshake v0 (unframed tokens) is not supported; use v1".to_string()),
        ),
        (RequestKind::SaslHandshake(req), SaslState::Start) => {
            let mechanisms = auth::MECHANISMS.iter().map(|m| handler::s(m)).collect();
            let resp = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
            let chosen = req.mechanism.as_str();
            if chosen == "PLAIN" {
                *state = SaslState::Plain;
                (Reply::ready(resp), Ok(()))
            } else if let Some(m) = Mechanism::from_name(chosen) {
                *state = SaslState::Scram(Box::new(ScramServer::new(m)));
                (Reply::ready(resp), Ok(()))
            } else {
                let reason = format!("SASL mechanism {chosen} is not offered");
                let resp = resp.with_error_code(E::UnsupportedSaslMechanism.code());
                (Reply::ready(resp), Err(reason))
            }
        }
        (RequestKind::SaslAuthenticate(req), SaslState::Plain) => {
            if let Some(refused) = blocked(broker, session) {
                return refused;
            }
            let outcome = match &broker.cell {
                Some(cell) => auth::authenticate_plain(&cell.image(), &req.auth_bytes),
                None => PlainOutcome::Rejected,
            };
            match outcome {
                PlainOutcome::Authenticated(tenant, principal) => {
                    match bind(broker, session, tenant, principal) {
                        Ok(()) => {
                            *state = SaslState::Done;
                            (Reply::ready(SaslAuthenticateResponse::default()), Ok(()))
                        }
                        Err(msg) => (Reply::ready(fail(&msg)), Err(msg)),
                    }
                }
                PlainOutcome::Malformed(why) => refuse(broker, session, why).await,
                PlainOutcome::Rejected => {
                    refuse(broker, session, "invalid API key or secret").await
                }
            }
        }
        (RequestKind::SaslAuthenticate(req), SaslState::Scram(mut server)) => {
            if let Some(refused) = blocked(broker, session) {
                return refused;
            }
            let Some(cell) = &broker.cell else {
                return refuse(broker, session, "invalid API key or secret").await;
            };
            match server.step(&cell.image(), &req.auth_bytes) {
                ScramStep::Continue(reply) => {
                    *state = SaslState::Scram(server);
                    let resp = SaslAuthenticateResponse::default().with_auth_bytes(reply.into());
                    (Reply::ready(resp), Ok(()))
                }
                ScramStep::Authenticated(reply, tenant, principal) => {
                    match bind(broker, session, tenant, principal) {
                        Ok(()) => {
                            *state = SaslState::Done;
                            let resp =
                                SaslAuthenticateResponse::default().with_auth_bytes(reply.into());
                            (Reply::ready(resp), Ok(()))
                        }
                        Err(msg) => (Reply::ready(fail(&msg)), Err(msg)),
                    }
                }
                ScramStep::Failed(why) => refuse(broker, session, why).await,
            }
        }
        (_, SaslState::Done) if session.listener == Listener::Plaintext => (
            Reply::ready(
                SaslHandshakeResponse::default().with_error_code(E::IllegalSaslState.code()),
            ),
            Err("SASL on the PLAINTEXT listener".to_string()),
        ),
        (body, state) => (
            Reply::None,
            Err(format!(
                "unexpected {:?} in SASL state {state:?}",
                std::mem::discriminant(&body)
            )),
        ),
    }
}

/// An address with too many recent failures is refused at once.
fn blocked(broker: &Broker, session: &Session) -> Option<(Reply, Result<(), String>)> {
    if !broker.auth_failures.blocked(session.peer.ip()) {
        return None;
    }
    let msg = "too many failed authentications from this address; retry in a minute";
    Some((Reply::ready(fail(msg)), Err(msg.to_string())))
}

/// A failed authentication: counted, answered after the delay, then the connection closes.
async fn refuse(broker: &Broker, session: &Session, why: &str) -> (Reply, Result<(), String>) {
    broker.auth_failures.record_failure(session.peer.ip());
    tokio::time::sleep(auth::FAILURE_DELAY).await;
    let msg = format!("Authentication failed: {why}");
    (Reply::ready(fail(&msg)), Err(msg))
}

/// Bind the session to `tenant` as `principal`, within the tenant's connection limits.
fn bind(
    broker: &Broker,
    session: &mut Session,
    tenant: TenantId,
    principal: Principal,
) -> Result<(), String> {
    let quota = broker.quotas.tenant(&tenant);
    let slot = quota.open_connection().inspect_err(|msg| {
        info!(%tenant, reason = %msg, "connection refused by the tenant's limits");
    })?;
    info!(%tenant, principal = %principal.name, api_key = %principal.api_key, "authenticated");
    crate::metrics::connection_opened(&broker.usage, &tenant);
    session.connection_slot = Some(Arc::new(slot));
    session.quota = Some(quota);
    session.tenant = Some(tenant);
    session.principal = Some(Arc::new(principal));
    Ok(())
}
