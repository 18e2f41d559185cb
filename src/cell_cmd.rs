//! `tributary cell`: an operator's view of one cell through its controller quorum: the
//! quorum and brokers with their load, creating a logical cluster by hand (tests, benchmarks,
//! the dev stack), and draining a broker.

use anyhow::{bail, Context};
use cells::client::{ClientOptions, ControllerClient};
use clap::{Args, Subcommand};
use proto::cell::v1::{
    BrokerState, ClusterLimits, CreateLogicalClusterRequest, CredentialRecord, DrainBrokerRequest,
    GetCellLoadRequest, PutCredentialRequest,
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
    /// Create (or update) a logical cluster in the cell, with the given limits (0 or
    /// absent: unlimited).
    CreateCluster {
        /// Its id, e.g. `lkc-local`.
        id: String,
        #[arg(long, default_value = "org-operator")]
        organization: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Give a logical cluster an API key (SASL username `key`, password `secret`, for PLAIN
    /// and SCRAM-SHA-256/512; only the secret's SHA-256 and SCRAM verifiers are sent), as
    /// the control plane does for its users.
    PutKey {
        /// The logical cluster, e.g. `lkc-local`.
        cluster: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        secret: String,
        /// Who owns it: `User:u-...` has full access, `User:sa-...` only its ACLs'.
        #[arg(long, default_value = "User:u-operator")]
        principal: String,
    },
    /// Move leadership off a broker and give it no new replicas.
    Drain { broker_id: i32 },
}

/// A logical cluster's limits, cell-wide (what a plan gives it; 0: unlimited).
#[derive(Args)]
struct LimitArgs {
    #[arg(long, default_value_t = 0)]
    ingress_bytes_per_sec: u64,
    #[arg(long, default_value_t = 0)]
    egress_bytes_per_sec: u64,
    #[arg(long, default_value_t = 0)]
    requests_per_sec: u32,
    #[arg(long, default_value_t = 0)]
    max_partitions: u32,
    #[arg(long, default_value_t = 0)]
    max_connections: u32,
    #[arg(long, default_value_t = 0)]
    connection_attempts_per_sec: u32,
    #[arg(long, default_value_t = 0)]
    max_message_bytes: u32,
    #[arg(long, default_value_t = 0)]
    partition_mutations_per_5min: u32,
    /// Request handling time, percent of one second per second (Kafka's request_percentage).
    #[arg(long, default_value_t = 0)]
    request_time_percent: u32,
    #[arg(long, default_value_t = 0)]
    max_request_bytes: u32,
}

impl LimitArgs {
    fn to_proto(&self) -> Option<ClusterLimits> {
        let l = ClusterLimits {
            ingress_bytes_per_sec: self.ingress_bytes_per_sec,
            egress_bytes_per_sec: self.egress_bytes_per_sec,
            max_partitions: self.max_partitions,
            max_connections: self.max_connections,
            connection_attempts_per_sec: self.connection_attempts_per_sec,
            requests_per_sec: self.requests_per_sec,
            max_message_bytes: self.max_message_bytes,
            partition_mutations_per_5min: self.partition_mutations_per_5min,
            request_time_percent: self.request_time_percent,
            max_request_bytes: self.max_request_bytes,
        };
        (l != ClusterLimits::default()).then_some(l)
    }
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
        CellCommand::PutKey {
            cluster,
            key,
            secret,
            principal,
        } => {
            use sha2::{Digest, Sha256};
            let hash: String = Sha256::digest(secret.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let r = client
                .put_credential(PutCredentialRequest {
                    credential: Some(CredentialRecord {
                        api_key: key.clone(),
                        cluster_id: cluster.clone(),
                        owner_is_user: principal.starts_with("User:u-"),
                        principal,
                        secret_sha256: hash,
                        scram: control_plane::scram::credentials(&secret),
                    }),
                })
                .await
                .context("PutCredential")?;
            if r.error_code != 0 {
                bail!(
                    "the controller refused: {} (Kafka error {})",
                    r.error_message,
                    r.error_code
                );
            }
            println!("key {key} for {cluster}");
        }
        CellCommand::CreateCluster {
            id,
            organization,
            limits,
        } => {
            let r = client
                .create_logical_cluster(CreateLogicalClusterRequest {
                    cluster_id: id.clone(),
                    organization_id: organization,
                    limits: limits.to_proto(),
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
