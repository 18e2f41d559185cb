//! `tributary cell`: an operator's view of one cell through its controller quorum: the
//! quorum and brokers with their load, creating a logical cluster by hand (tests, benchmarks,
//! the dev stack), and draining a broker.

use anyhow::{bail, Context};
use cells::client::{ClientOptions, ControllerClient};
use clap::{Args, Subcommand};
use proto::cell::v1::{
    BrokerState, CreateLogicalClusterRequest, DrainBrokerRequest, GetCellLoadRequest,
};

#[derive(Args)]
pub struct CellArgs {
    /// The cell's controller voters (gRPC `HOST:PORT`, comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    controllers: Vec<String>,
    #[command(subcommand)]
    command: CellCommand,
}

#[derive(Subcommand)]
enum CellCommand {
    /// The quorum's leader and term, and every broker with its state and load.
    Status,
    /// Create (or update) a logical cluster in the cell, with no limits.
    CreateCluster {
        /// Its id, e.g. `lkc-local`.
        id: String,
        #[arg(long, default_value = "org-operator")]
        organization: String,
    },
    /// Move leadership off a broker and give it no new replicas.
    Drain { broker_id: i32 },
}

pub async fn run(args: CellArgs) -> anyhow::Result<()> {
    let client = ControllerClient::new(&args.controllers, ClientOptions::default())
        .context("--controllers")?;
    match args.command {
        CellCommand::Status => {
            let q = client.describe_quorum().await.context("DescribeQuorum")?;
            println!(
                "quorum: leader {} ({}), term {}, committed offset {}, voters {:?}",
                q.leader_id, q.leader_address, q.term, q.committed_offset, q.voters
            );
            let load = client
                .get_cell_load(GetCellLoadRequest {})
                .await
                .context("GetCellLoad")?;
            println!(
                "cell {}: load {:.2}, {} logical clusters, {} partitions, metadata offset {}",
                load.cell_id,
                load.load,
                load.logical_clusters,
                load.partitions,
                load.metadata_offset
            );
            println!(
                "{:>6}  {:<8}  {:<20}  {:>7}  {:>8}  kafka",
                "broker", "zone", "state", "leaders", "replicas"
            );
            for b in &load.brokers {
                let state =
                    BrokerState::try_from(b.state).map_or("?".to_string(), |s| format!("{s:?}"));
                let kafka = b
                    .kafka
                    .as_ref()
                    .map_or(String::new(), |e| format!("{}:{}", e.host, e.port));
                println!(
                    "{:>6}  {:<8}  {:<20}  {:>7}  {:>8}  {kafka}",
                    b.broker_id, b.zone, state, b.leaders, b.replicas
                );
            }
        }
        CellCommand::CreateCluster { id, organization } => {
            let r = client
                .create_logical_cluster(CreateLogicalClusterRequest {
                    cluster_id: id.clone(),
                    organization_id: organization,
                    limits: None,
                })
                .await
                .context("CreateLogicalCluster")?;
            if r.error_code != 0 {
                bail!(
                    "the controller refused: {} (Kafka error {})",
                    r.error_message,
                    r.error_code
                );
            }
            println!(
                "logical cluster {id} committed at metadata offset {}",
                r.offset
            );
        }
        CellCommand::Drain { broker_id } => {
            let r = client
                .drain_broker(DrainBrokerRequest { broker_id })
                .await
                .context("DrainBroker")?;
            if r.error_code != 0 {
                bail!(
                    "the controller refused: {} (Kafka error {})",
                    r.error_message,
                    r.error_code
                );
            }
            println!("broker {broker_id} draining (metadata offset {})", r.offset);
        }
    }
    Ok(())
}
