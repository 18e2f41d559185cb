//! What `/readyz` (see [`crate::admin_http`]) checks for each role, from what the crates
//! already expose:
//!
//! - broker: its state is open (so its Kafka listener, bound before, serves); a broker of a
//!   cell must also be registered with the cell's controller and ACTIVE in the metadata it
//!   has applied (the controller makes a broker ACTIVE only once its heartbeat reports it
//!   caught up with its own registration, and the image is published here once
//!   reconciled);
//! - controller: its Raft group has a leader;
//! - control plane: its database answers `SELECT 1`.

use std::sync::{Arc, OnceLock};

use data_plane::broker::Broker;
use proto::cell::v1::BrokerState;

use crate::admin_http::{probe, Probe};

/// A role's state once opened (its logs, Raft log or database); not ready before. The
/// admin endpoint starts first, so `/livez` answers during a long recovery.
pub struct Opening<T>(Arc<OnceLock<T>>);

impl<T> Default for Opening<T> {
    fn default() -> Self {
        Opening(Arc::new(OnceLock::new()))
    }
}

impl<T: Send + Sync + 'static> Opening<T> {
    pub fn set(&self, value: T) {
        let _ = self.0.set(value);
    }

    fn check(&self, what: &'static str, ready: fn(&T) -> Result<(), String>) -> Probe {
        let opened = self.0.clone();
        probe(move || match opened.get() {
            None => Err(format!("opening {what}")),
            Some(v) => ready(v),
        })
    }
}

/// A broker: open, and in a cell registered and ACTIVE.
pub fn broker(opening: &Opening<Arc<Broker>>) -> Probe {
    opening.check("the broker's logs and state", |b| broker_ready(b))
}

fn broker_ready(broker: &Broker) -> Result<(), String> {
    let Some(cell) = &broker.cell else {
        return Ok(()); // standalone: open, and its listener is bound
    };
    let epoch = cell.broker_epoch();
    if epoch < 0 {
        return Err("not registered with the cell controller yet".into());
    }
    let image = cell.image();
    let me = image
        .brokers
        .get(&broker.config.node_id)
        .filter(|b| b.broker_epoch == epoch);
    match me.map(|b| BrokerState::try_from(b.state).unwrap_or(BrokerState::Unspecified)) {
        Some(BrokerState::Active) => Ok(()),
        Some(state) => Err(format!(
            "registered (broker epoch {epoch}) but {} in the cell's metadata (applied up to offset {})",
            state.as_str_name().trim_start_matches("BROKER_STATE_"),
            image.offset
        )),
        None => Err(format!(
            "registered (broker epoch {epoch}); catching up on the cell's metadata (applied up to offset {})",
            image.offset
        )),
    }
}

/// A controller voter: its quorum has a leader (itself or another).
pub fn controller(opening: &Opening<Arc<cells::controller::Controller>>) -> Probe {
    opening.check("the controller's Raft log", |controller| {
        let m = controller.raft().metrics().borrow().clone();
        match m.current_leader {
            Some(_) => Ok(()),
            None => Err(format!(
                "the controller quorum has no leader (term {}, this voter is {:?})",
                m.current_term, m.state
            )),
        }
    })
}

/// The control plane: its database answers `SELECT 1`.
pub fn control_plane(opening: &Opening<control_plane::Store>) -> Probe {
    let opened = opening.0.clone();
    Arc::new(move || {
        let store = opened.get().cloned();
        Box::pin(async move {
            let Some(store) = store else {
                return Err("connecting to the database and running its migrations".into());
            };
            store
                .ping()
                .await
                .map_err(|e| format!("the database does not answer: {e}"))
        })
    })
}
