//! What the binary's /readyz and /metrics read from the store, on SQLite and PostgreSQL:
//! `Store::ping` and the clusters-by-phase count.

mod common;

use common::{start_api_only, test_config, Db};
use control_plane::store::Phase;
use control_plane::Store;

on_every_backend!(ping_and_clusters_by_phase);

async fn ping_and_clusters_by_phase(db: Db) {
    // No reconciler: the clusters stay PROVISIONING.
    let s = start_api_only(&db, test_config()).await;
    let store = Store::connect(&s.db_url).await.unwrap();
    store.ping().await.expect("SELECT 1");
    assert_eq!(store.count_clusters_by_phase().await.unwrap(), vec![]);
    let a = s.account("ada@example.com").await;
    let env = s.create_env(&a.token, "prod").await;
    for kind in ["Basic", "Standard"] {
        s.create_cluster(&a.token, env["id"].as_str().unwrap(), kind)
            .await;
    }
    assert_eq!(
        store.count_clusters_by_phase().await.unwrap(),
        vec![(Phase::Provisioning, 2)]
    );
}
