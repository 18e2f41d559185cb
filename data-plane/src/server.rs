//! The accept loop: takes an already-bound listener (tests bind port 0), which kind of
//! listener it is, and a shutdown token; bounds open connections (across all listeners),
//! and runs each connection in its own task.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::connection::{serve_connection, Listener, Session};

/// Accept connections until `shutdown` fires, then wait for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    kind: Listener,
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
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(%peer, max = broker.config.max_connections, "connection limit reached; refusing");
            drop(stream);
            continue;
        };
        let id = broker.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(&broker, peer, id, kind);
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(broker, stream, session, shutdown).await;
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    info!("broker stopped accepting; all connections closed");
}
