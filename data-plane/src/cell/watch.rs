//! Following the cell's committed metadata: `cells::client::watch_metadata` keeps an
//! image current from any voter (resuming from its last offset after errors); every new
//! image is installed and reconciled here, in order.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{reconcile, Cell};
use crate::broker::Broker;

pub async fn run(broker: Arc<Broker>, cell: Arc<Cell>, shutdown: CancellationToken) {
    let (mut images, task) =
        cells::client::watch_metadata(cell.controller.clone(), shutdown.child_token());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = images.changed() => if changed.is_err() { break },
        }
        let image = images.borrow_and_update().clone();
        if image.offset <= cell.image().offset && image.offset != 0 {
            continue;
        }
        debug!(offset = image.offset, "metadata applied");
        reconcile::apply(&broker, &cell, &image, &shutdown);
        cell.image.send_replace(image);
        // Followers' and leaders' state changed: wake long polls and waiters.
        broker.data_changed.notify_waiters();
    }
    task.abort();
}
