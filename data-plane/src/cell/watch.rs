//! Following the cell's committed metadata: a WatchMetadata stream from any voter,
//! applied in order to this broker's [`CellImage`], each new image reconciled.
//! A broken stream is reopened from the last applied offset on the next voter.

use std::sync::Arc;
use std::time::Duration;

use proto::cell::v1::WatchMetadataRequest;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{reconcile, Cell};
use crate::broker::Broker;

pub async fn run(broker: Arc<Broker>, cell: Arc<Cell>, shutdown: CancellationToken) {
    let mut rotate = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let after = cell.image().offset;
        let stream = match cell.link.streaming_client(rotate) {
            Ok(mut client) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = tokio::time::timeout(
                        Duration::from_secs(3),
                        client.watch_metadata(WatchMetadataRequest { after_offset: after }),
                    ) => r.ok().and_then(|r| r.ok()),
                }
            }
            Err(_) => None,
        };
        rotate = true;
        let Some(stream) = stream else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
            }
        };
        debug!(after, "metadata watch open");
        let mut stream = stream.into_inner();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                n = stream.message() => n,
            };
            let update = match next {
                Ok(Some(u)) => u,
                Ok(None) => break,
                Err(status) => {
                    warn!(%status, "metadata watch broke; reopening");
                    break;
                }
            };
            let current = cell.image();
            if !update.is_snapshot && update.offset <= current.offset {
                continue;
            }
            let mut next_image = (*current).clone();
            next_image.apply(update.offset, update.is_snapshot, &update.records);
            if update.is_snapshot {
                info!(offset = update.offset, "metadata snapshot applied");
            }
            let next_image = Arc::new(next_image);
            *cell.image.write().unwrap_or_else(|e| e.into_inner()) = next_image.clone();
            reconcile::apply(&broker, &cell, &next_image, &shutdown);
            cell.applied.send_replace(next_image.offset);
            // Followers' and leaders' state changed: wake long polls and waiters.
            broker.data_changed.notify_waiters();
        }
    }
}
