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

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::broker::Broker;
use crate::codec::{decode_request, encode_response, DecodeError};
use crate::handler::{self, api_versions, Reply};

/// Who is on the other end of a connection. Authentication and tenant binding (a later
/// layer) fill in more of this; handlers read it, never the socket.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    pub connection_id: u64,
}

/// A reply waiting its turn in the write queue.
struct Outgoing {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: Reply,
}

/// Serve one connection until the peer closes it, it misbehaves, or `shutdown` fires.
pub async fn serve_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    session: Session,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(broker.config.max_in_flight_per_connection.max(1));
    let span = tracing::info_span!("conn", peer = %session.peer, id = session.connection_id);
    let writer_task = tokio::spawn(write_replies(writer, rx).instrument(span.clone()));
    let result = read_requests(&broker, reader, &session, tx, &shutdown)
        .instrument(span.clone())
        .await;
    if let Err(reason) = result {
        span.in_scope(|| info!(%reason, "closing connection"));
    }
    // The writer drains what was already dispatched, then ends when the queue closes.
    let _ = writer_task.await;
}

async fn read_requests(
    broker: &Arc<Broker>,
    mut reader: OwnedReadHalf,
    session: &Session,
    tx: mpsc::Sender<Outgoing>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let max = broker.config.max_request_bytes;
    loop {
        let mut len_buf = [0u8; 4];
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            read = reader.read_exact(&mut len_buf) => match read {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read error: {e}")),
            },
        }
        let len = i32::from_be_bytes(len_buf);
        if len < 0 || len as usize > max {
            warn!(len, max, "request frame size out of bounds");
            return Err(format!(
                "frame of {len} bytes exceeds socket.request.max.bytes={max}"
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
        let outgoing = match decode_request(frame.freeze()) {
            Ok(request) => {
                let (api_key, version, correlation_id) =
                    (request.api_key, request.version(), request.correlation_id());
                debug!(?api_key, version, correlation_id, "request");
                let reply = handler::dispatch(broker, session, request).await;
                Outgoing {
                    api_key,
                    version,
                    correlation_id,
                    reply,
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
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    reply: Reply::ready(unsupported_api_versions()),
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

fn unsupported_api_versions() -> ApiVersionsResponse {
    let mut resp = api_versions::response();
    resp.error_code = kafka_protocol::ResponseError::UnsupportedVersion.code();
    resp
}

async fn write_replies(writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(out) = rx.recv().await {
        let body = match out.reply {
            Reply::Ready(body) => *body,
            Reply::Later(handle) => match handle.await {
                Ok(body) => body,
                Err(e) => {
                    warn!(error = %e, api_key = ?out.api_key, "request handler failed; closing connection");
                    return;
                }
            },
            Reply::None => continue,
        };
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
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        if rx.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
}
