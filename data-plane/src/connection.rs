//! One client connection: frames in, responses out, in request order.
//!
//! The reader half reads a 4-byte length, checks it against `socket.request.max.bytes`,
//! takes that many bytes from the broker-wide request memory budget (so many connections
//! cannot together exhaust memory), reads the frame, decodes and dispatches it. Dispatch
//! applies order-sensitive effects (appends) inline, so pipelined produce requests land in
//! the order they were sent, and may hand back a deferred reply (an acks=-1 produce waiting
//! for fsync, a long-polling fetch, a JoinGroup). Replies go through a bounded queue to the
//! writer half, which awaits each in turn: responses leave in request order, at most
//! `max_in_flight_per_connection` requests are read ahead.
//!
//! A malformed or oversized frame closes the connection with a log line; nothing here
//! panics on input.
//!
//! The connection is generic over its two halves: a TCP stream's (PLAINTEXT,
//! SASL_PLAINTEXT) or a TLS stream's (SASL_SSL, after [`crate::tls`]'s handshake); nothing
//! here knows which.
//!
//! On the SASL listeners a connection must authenticate (SaslHandshake, SaslAuthenticate,
//! answered here rather than by a handler since they change the session) before any
//! other request but ApiVersions; it is then bound to its key's logical cluster, and
//! closed as soon as that key is revoked ([`crate::auth`]).
//!
//! Every request of a tenant is charged to its quotas ([`crate::throttle`]); a throttled
//! connection reads nothing until its throttle time has passed. Once authenticated, frames
//! are also bounded by the tenant's plan (`max_request_bytes`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::auth::{self, Principal};
use crate::broker::Broker;
use crate::codec::{decode_request, encode_response, DecodeError};
use crate::handler::{self, api_versions, Reply};
use crate::namespace::TenantId;
use crate::quota::{ConnectionSlot, QuotaKind, TenantQuota};
use crate::sasl::{self, SaslState};
use crate::throttle::{self, Admission, Mute};

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// PLAINTEXT: replication between the brokers of a cell, and the unauthenticated
    /// clients of one logical cluster (a standalone broker's, or `--tenant` in local
    /// development).
    Plaintext,
    /// SASL_PLAINTEXT: tenants' clients, each connection bound to its key's cluster.
    Sasl,
    /// SASL_SSL: the same as SASL_PLAINTEXT, over TLS.
    SaslSsl,
}

impl Listener {
    /// Whether clients must authenticate with SASL before anything but ApiVersions.
    pub fn authenticates(self) -> bool {
        match self {
            Listener::Plaintext => false,
            Listener::Sasl | Listener::SaslSsl => true,
        }
    }
}

/// Who is on the other end of a connection; handlers read it, never the socket.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    pub connection_id: u64,
    pub listener: Listener,
    /// The logical cluster every request of this connection works in; `None` until a
    /// SASL connection authenticates (or for good on a replication-only listener).
    pub tenant: Option<TenantId>,
    /// Who authenticated (SASL connections); shared with every request's `Caller`.
    pub principal: Option<Arc<Principal>>,
    /// The tenant's quotas on this broker (set with `tenant`).
    pub quota: Option<Arc<TenantQuota>>,
    /// This connection's place in its tenant's connection limit (SASL connections).
    pub connection_slot: Option<Arc<ConnectionSlot>>,
}

impl Session {
    pub fn new(broker: &Broker, peer: SocketAddr, connection_id: u64, listener: Listener) -> Self {
        Session {
            peer,
            connection_id,
            listener,
            tenant: if listener.authenticates() {
                None
            } else {
                broker.plaintext_tenant.clone()
            },
            principal: None,
            quota: if listener.authenticates() {
                None
            } else {
                broker
                    .plaintext_tenant
                    .as_ref()
                    .map(|t| broker.quotas.tenant(t))
            },
            connection_slot: None,
        }
    }
}

/// A reply waiting its turn in the write queue.
struct Outgoing {
    /// When the request was read (for the latency histogram).
    arrived: std::time::Instant,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: Reply,
    /// Throttle already earned by the request (see `throttle::admit`).
    throttle: Duration,
    /// The tenant quota charged with the request's handling time.
    quota: Option<Arc<TenantQuota>>,
    /// Time spent decoding and handling the request so far.
    handling: Duration,
    /// A consumer fetch's tenant quota, charged with the response's bytes.
    egress: Option<Arc<TenantQuota>>,
}

/// Serve one connection, given the two halves of its stream, until the peer closes it,
/// it misbehaves, or `shutdown` fires.
pub async fn serve_connection<R, W>(
    broker: Arc<Broker>,
    reader: R,
    writer: W,
    session: Session,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(broker.config.max_in_flight_per_connection.max(1));
    let span = tracing::info_span!(
        "conn",
        peer = %session.peer,
        id = session.connection_id,
        listener = ?session.listener,
        tenant = tracing::field::Empty,
    );
    if let Some(tenant) = &session.tenant {
        span.record("tenant", tenant.as_ref());
    }
    let mute = Arc::new(Mute::default());
    let writer_task =
        tokio::spawn(write_replies(writer, rx, mute.clone()).instrument(span.clone()));
    let mut session = session;
    if let Some(tenant) = &session.tenant {
        crate::metrics::connection_opened(&broker.usage, tenant);
    }
    let result = read_requests(&broker, reader, &mut session, tx, &shutdown, &span, &mute)
        .instrument(span.clone())
        .await;
    if let Err(reason) = result {
        span.in_scope(|| info!(%reason, "closing connection"));
    }
    if let Some(tenant) = &session.tenant {
        crate::metrics::connection_closed(&broker.usage, tenant);
    }
    // The writer drains what was already dispatched, then ends when the queue closes.
    let _ = writer_task.await;
}

async fn read_requests<R: AsyncRead + Unpin>(
    broker: &Arc<Broker>,
    mut reader: R,
    session: &mut Session,
    tx: mpsc::Sender<Outgoing>,
    shutdown: &CancellationToken,
    span: &tracing::Span,
    mute: &Mute,
) -> Result<(), String> {
    let mut sasl = if session.listener.authenticates() {
        SaslState::Start
    } else {
        SaslState::Done
    };
    // Metadata changes wake an authenticated connection to re-check its key.
    let mut image_rx = broker.cell.as_ref().map(|c| c.subscribe_image());
    loop {
        if let Some(wait) = mute.remaining() {
            // KIP-219: a throttled client's next request waits out its throttle here.
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let mut len_buf = [0u8; 4];
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = revoked(&mut image_rx, session) => {
                return Err("its API key was revoked or its cluster deleted".to_string());
            }
            read = reader.read_exact(&mut len_buf) => match read {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read error: {e}")),
            },
        }
        let len = i32::from_be_bytes(len_buf);
        let max = broker.config.max_request_bytes;
        if len < 0 || len as usize > max {
            warn!(len, max, "request frame size out of bounds");
            return Err(format!(
                "frame of {len} bytes exceeds socket.request.max.bytes={max}"
            ));
        }
        if let Some(plan_max) = session
            .quota
            .as_ref()
            .map(|q| q.max_request_bytes())
            .filter(|&m| m > 0 && len as usize > m)
        {
            warn!(
                len,
                plan_max, "request frame larger than the tenant's plan allows"
            );
            return Err(format!(
                "frame of {len} bytes exceeds the cluster's max_request_bytes={plan_max}"
            ));
        }
        let len = len as usize;
        // Reserve the bytes before allocating them; released when the request is handled.
        let permit = broker
            .request_memory
            .clone()
            .acquire_many_owned(len.max(1) as u32)
            .await
            .map_err(|_| "broker shutting down".to_string())?;
        let mut frame = BytesMut::zeroed(len);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            read = reader.read_exact(&mut frame) => {
                read.map_err(|e| format!("read error mid-frame: {e}"))?;
            }
        }
        let arrived = std::time::Instant::now();
        let decoded = decode_request(frame.freeze());
        let mut handling = arrived.elapsed();
        let outgoing = match decoded {
            Ok(request) => {
                let (api_key, version, correlation_id) =
                    (request.api_key, request.version(), request.correlation_id());
                debug!(?api_key, version, correlation_id, "request");
                let mut admission = Admission::default();
                let reply = if matches!(api_key, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
                    let (reply, outcome) = sasl::step(broker, session, &mut sasl, request).await;
                    if let Some(tenant) = &session.tenant {
                        span.record("tenant", tenant.as_ref());
                    }
                    if let Err(reason) = outcome {
                        // Answer, then close: the writer drains what is queued.
                        let _ = tx
                            .send(Outgoing {
                                arrived,
                                api_key,
                                version,
                                correlation_id,
                                reply,
                                throttle: Duration::ZERO,
                                quota: None,
                                handling: Duration::ZERO,
                                egress: None,
                            })
                            .await;
                        return Err(reason);
                    }
                    reply
                } else if !sasl.is_done() && api_key != ApiKey::ApiVersions {
                    return Err(format!("{api_key:?} before SASL authentication"));
                } else if !key_still_valid(broker, session) {
                    return Err("its API key was revoked or its cluster deleted".to_string());
                } else {
                    admission = throttle::admit(broker, session, &request, len);
                    mute.extend(admission.throttle);
                    match admission.reply.take() {
                        Some(reply) => reply,
                        None => {
                            let (reply, spent) =
                                throttle::timed(handler::dispatch(broker, session, request)).await;
                            handling += spent;
                            reply
                        }
                    }
                };
                if let Reply::Close(reason) = reply {
                    return Err(reason);
                }
                if let Some(tenant) = &session.tenant {
                    crate::metrics::request(&broker.usage, tenant, api_key);
                }
                Outgoing {
                    arrived,
                    api_key,
                    version,
                    correlation_id,
                    reply,
                    throttle: admission.throttle,
                    quota: admission.quota,
                    handling,
                    egress: admission.egress,
                }
            }
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                version,
                correlation_id,
            }) => {
                // KIP-511: answer a too-new ApiVersions with v0, UNSUPPORTED_VERSION and our ranges.
                debug!(
                    version,
                    "ApiVersions at an unsupported version; answering v0"
                );
                Outgoing {
                    arrived,
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    reply: Reply::ready(unsupported_api_versions()),
                    throttle: Duration::ZERO,
                    quota: None,
                    handling,
                    egress: None,
                }
            }
            Err(e) => {
                warn!(error = %e, "undecodable request");
                return Err(e.to_string());
            }
        };
        drop(permit);
        if tx.send(outgoing).await.is_err() {
            return Err("writer closed".to_string());
        }
    }
}

/// Resolves once the session's API key is revoked or its cluster deleted; never for a
/// connection that did not authenticate.
async fn revoked(
    image_rx: &mut Option<tokio::sync::watch::Receiver<Arc<cells::image::CellImage>>>,
    session: &Session,
) {
    let (Some(rx), Some(tenant), Some(principal)) =
        (image_rx.as_mut(), &session.tenant, &session.principal)
    else {
        return std::future::pending().await;
    };
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        if !auth::still_valid(&rx.borrow_and_update(), tenant, principal) {
            return;
        }
    }
}

fn key_still_valid(broker: &Broker, session: &Session) -> bool {
    match (&broker.cell, &session.tenant, &session.principal) {
        (Some(cell), Some(tenant), Some(principal)) => {
            auth::still_valid(&cell.image(), tenant, principal)
        }
        _ => true,
    }
}

fn unsupported_api_versions() -> ApiVersionsResponse {
    let mut resp = api_versions::response();
    resp.error_code = kafka_protocol::ResponseError::UnsupportedVersion.code();
    resp
}

async fn write_replies<W: AsyncWrite + Unpin>(
    writer: W,
    mut rx: mpsc::Receiver<Outgoing>,
    mute: Arc<Mute>,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(out) = rx.recv().await {
        let mut handling = out.handling;
        let mut body = match out.reply {
            Reply::Ready(body) => *body,
            Reply::Later(handle) => match handle.await {
                Ok((body, spent)) => {
                    handling += spent;
                    body
                }
                Err(e) => {
                    warn!(error = %e, api_key = ?out.api_key, "request handler failed; closing connection");
                    return;
                }
            },
            Reply::None | Reply::Close(_) => continue,
        };
        crate::metrics::latency(out.api_key, out.arrived.elapsed().as_secs_f64());
        mute.extend(throttle::finish(
            &mut body,
            out.throttle,
            out.quota.as_deref(),
            handling,
            out.egress.as_deref(),
        ));
        let encoding = std::time::Instant::now();
        let frame: Bytes = match encode_response(
            out.api_key,
            out.version,
            out.correlation_id,
            &body,
        ) {
            Ok(frame) => frame,
            Err(e) => {
                warn!(error = %e, api_key = ?out.api_key, version = out.version, "cannot encode response; closing connection");
                return;
            }
        };
        if let Some(q) = &out.quota {
            // Encoding is work too; its cost throttles what comes next.
            mute.extend(q.charge(QuotaKind::RequestTime, encoding.elapsed().as_secs_f64()));
        }
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
}
