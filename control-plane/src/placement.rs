//! Placement of a new logical cluster into a cell by two random choices (Kora): ask two
//! random cells for their load (`GetCellLoad`) and take the less loaded one that can hold
//! the cluster. A cell can hold it when it answers, reports at least one active broker
//! with a SASL listener for tenants to bootstrap from, and its load is below the
//! configured ceiling.

use crate::cells::Cells;
use crate::store::Store;
use crate::util::random_below;
use proto::cell::v1::{CellLoad, GetCellLoadRequest};

/// What asking one cell gave.
pub struct Probe {
    pub cell_id: String,
    pub load: Result<CellLoad, String>,
}

/// Up to two distinct random cell ids.
pub fn two_random(ids: &[&str]) -> Vec<String> {
    match ids.len() {
        0 => Vec::new(),
        1 => vec![ids[0].to_string()],
        n => {
            let a = random_below(n);
            let b = (a + 1 + random_below(n - 1)) % n;
            vec![ids[a].to_string(), ids[b].to_string()]
        }
    }
}

/// The less loaded of the probed cells that can hold a cluster, or why none can.
pub fn choose(probes: Vec<Probe>, max_load: f64) -> Result<(String, CellLoad), String> {
    let mut best: Option<(String, CellLoad)> = None;
    let mut why = Vec::new();
    for p in probes {
        match p.load {
            Err(e) => why.push(e),
            Ok(load) if load.sasl_bootstrap.is_empty() => why.push(format!(
                "cell {} has no active broker with a SASL listener",
                p.cell_id
            )),
            // A NaN load counts as full.
            Ok(load) if load.load.is_nan() || load.load >= max_load => why.push(format!(
                "cell {} is full (load {:.2}, ceiling {:.2})",
                p.cell_id, load.load, max_load
            )),
            Ok(load) => {
                if best.as_ref().is_none_or(|(_, b)| load.load < b.load) {
                    best = Some((p.cell_id, load));
                }
            }
        }
    }
    best.ok_or_else(|| format!("no cell can take the cluster: {}", why.join("; ")))
}

/// Probes two random cells at once, records the loads they report, and chooses.
pub async fn place(
    store: &Store,
    cells: &Cells,
    max_load: f64,
) -> Result<(String, CellLoad), String> {
    let picks = two_random(&cells.ids());
    let probes = picks.into_iter().map(|id| async move {
        let load = match cells.get(&id) {
            None => Err(format!("cell {id} is not configured")),
            Some(client) => client
                .call("GetCellLoad", |mut c| async move {
                    c.get_cell_load(GetCellLoadRequest {}).await
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|load| {
                    if load.cell_id.is_empty() || load.cell_id == id {
                        Ok(load)
                    } else {
                        Err(format!(
                            "cell {id}'s controllers say they are cell {}; fix the --cell option",
                            load.cell_id
                        ))
                    }
                }),
        };
        Probe { cell_id: id, load }
    });
    let probes = futures_join_all(probes).await;
    for p in &probes {
        if let Ok(load) = &p.load {
            if let Err(e) = store.record_cell_load(&p.cell_id, load.load).await {
                tracing::warn!(cell = %p.cell_id, error = %e, "could not record cell load");
            }
        }
    }
    choose(probes, max_load)
}

/// Runs at most two probes concurrently (all this module needs of `join_all`).
async fn futures_join_all<F: std::future::Future<Output = Probe>>(
    probes: impl Iterator<Item = F>,
) -> Vec<Probe> {
    let mut probes: Vec<F> = probes.collect();
    match probes.len() {
        0 => Vec::new(),
        1 => vec![probes.remove(0).await],
        _ => {
            let b = probes.remove(1);
            let a = probes.remove(0);
            let (a, b) = tokio::join!(a, b);
            vec![a, b]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cell::v1::Endpoint;

    fn load(l: f64, brokers: usize) -> CellLoad {
        CellLoad {
            load: l,
            sasl_bootstrap: (0..brokers)
                .map(|i| Endpoint {
                    host: "h".into(),
                    port: 9102 + i as u32,
                })
                .collect(),
            ..CellLoad::default()
        }
    }

    fn probe(id: &str, l: Result<CellLoad, String>) -> Probe {
        Probe {
            cell_id: id.into(),
            load: l,
        }
    }

    #[test]
    fn takes_the_less_loaded_cell_that_can_hold_it() {
        let (id, _) = choose(
            vec![probe("a", Ok(load(0.5, 3))), probe("b", Ok(load(0.2, 3)))],
            0.8,
        )
        .unwrap();
        assert_eq!(id, "b");
        let (id, _) = choose(
            vec![probe("a", Ok(load(0.5, 3))), probe("b", Ok(load(0.1, 0)))],
            0.8,
        )
        .unwrap();
        assert_eq!(id, "a", "a cell without brokers cannot hold it");
        let (id, _) = choose(
            vec![probe("a", Err("down".into())), probe("b", Ok(load(0.7, 1)))],
            0.8,
        )
        .unwrap();
        assert_eq!(id, "b");
    }

    #[test]
    fn says_why_no_cell_can() {
        let why = choose(
            vec![
                probe("a", Err("cell a is unreachable".into())),
                probe("b", Ok(load(0.9, 3))),
            ],
            0.8,
        )
        .unwrap_err();
        assert!(why.contains("cell a is unreachable"), "{why}");
        assert!(why.contains("cell b is full (load 0.90"), "{why}");
        assert!(choose(vec![], 0.8).is_err());
    }

    #[test]
    fn two_random_distinct_cells() {
        assert!(two_random(&[]).is_empty());
        assert_eq!(two_random(&["a"]), vec!["a"]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = two_random(&["a", "b", "c"]);
            assert_eq!(p.len(), 2);
            assert_ne!(p[0], p[1]);
            seen.insert(p[0].clone());
        }
        assert_eq!(seen.len(), 3, "every cell gets picked");
    }
}
