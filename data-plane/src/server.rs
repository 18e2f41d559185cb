//! The accept loop: takes an already-bound listener (tests bind port 0), which kind of
//! listener it is, and a shutdown token; bounds open connections (across all listeners),
//! and runs each connection in its own task. On a SASL_SSL listener ([`serve_tls`]) that
//! task first does the TLS handshake ([`crate::tls`], bounded by
//! `tls_handshake_timeout`); a failed one is logged and closes only that connection.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::connection::{serve_connection, Listener, Session};
use crate::tls::{self, TlsAcceptor};

/// Accept connections of `kind` (PLAINTEXT or SASL_PLAINTEXT) until `shutdown` fires,
/// then wait for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    kind: Listener,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    accept_loop(listener, kind, None, broker, shutdown).await
}

/// [`serve`] for a SASL_SSL listener: each connection does its TLS handshake with
/// `acceptor` first.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    accept_loop(
        listener,
        Listener::SaslSsl,
        Some(acceptor),
        broker,
        shutdown,
    )
    .await
}

async fn accept_loop(
    listener: TcpListener,
    kind: Listener,
    tls: Option<TlsAcceptor>,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let connections = broker.connection_slots.clone();
    let tracker = TaskTracker::new();
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, listener = ?kind, node_id = broker.config.node_id, "broker listening");
    }
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A connection in its TLS handshake holds a slot too, so handshakes are bounded.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, max = broker.config.max_connections, "connection limit reached; refusing");
            drop(stream);
            continue;
        };
        let id = broker.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(&broker, peer, id, kind);
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (reader, writer) = stream.into_split();
                    serve_connection(broker, reader, writer, session, shutdown).await;
                }
                Some(acceptor) => {
                    serve_over_tls(broker, &acceptor, stream, peer, session, shutdown).await
                }
            }
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    info!(listener = ?kind, "broker stopped accepting; all connections closed");
}

/// Handshake (bounded; abandoned on shutdown), then serve the connection over TLS.
async fn serve_over_tls(
    broker: Arc<Broker>,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    shutdown: CancellationToken,
) {
    let timeout = broker.config.tls_handshake_timeout;
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        h = tls::handshake(acceptor, stream, timeout) => h,
    };
    match handshake {
        Ok(stream) => {
            let (reader, writer) = tokio::io::split(stream);
            serve_connection(broker, reader, writer, session, shutdown).await;
        }
        Err(reason) => {
            info!(%peer, id = session.connection_id, listener = ?session.listener, %reason, "closing connection")
        }
    }
}
