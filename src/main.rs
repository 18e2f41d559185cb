//! `tributary`: one binary, many roles. `tributary broker --standalone` runs a single
//! broker with a PLAINTEXT listener and no authentication; `tributary control-plane` runs the
//! REST API; `tributary controller` runs one voter of a cell's controller quorum;
//! `tributary cell` operates a cell through its controllers; `tributary dev` runs all of
//! them as supervised processes on one machine. `signup`, `login`, `environment`, `kafka`,
//! `service-account` and `api-key` are the user CLI, a client of the REST API (`cli/`).

mod broker_cmd;
mod cell_cmd;
mod cli;
mod control_plane_cmd;
mod controller_cmd;
mod dev;

use clap::{Parser, Subcommand};

/// Decoders size buffers from wire counts; see `data_plane::alloc_guard`.
#[global_allocator]
static ALLOC: data_plane::alloc_guard::GuardedAlloc = data_plane::alloc_guard::GuardedAlloc;

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Tributary: Kafka-compatible multi-tenant streaming"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Broker(broker_cmd::BrokerArgs),
    /// Run the control plane: the Cloud API over REST (and gRPC with --grpc-listen), the
    /// provisioning reconciler and the operator API.
    ControlPlane(control_plane_cmd::ControlPlaneArgs),
    /// Run one voter of a cell's controller quorum (Raft metadata).
    Controller(controller_cmd::ControllerArgs),
    /// Operate a cell through its controllers: status, create a logical cluster, drain.
    Cell(cell_cmd::CellArgs),
    /// Run the whole service on this machine: a cell (controller + 3 brokers) and the
    /// control plane, each its own supervised process, data under one directory.
    Dev(dev::DevArgs),
    /// Sign up: a new organisation and its first user (through the REST API, --url).
    Signup(cli::SignupArgs),
    /// Log in and save a token for the other commands (per API URL, in a 0600 file under
    /// $XDG_CONFIG_HOME/tributary or ~/.config/tributary).
    Login(cli::LoginArgs),
    /// Forget the saved token for the API URL.
    Logout(cli::LogoutArgs),
    /// Manage environments.
    Environment(cli::EnvironmentArgs),
    /// Manage Kafka clusters and their topics.
    Kafka(cli::KafkaArgs),
    /// Manage service accounts.
    ServiceAccount(cli::ServiceAccountArgs),
    /// Manage API keys (Cloud API keys and cluster API keys).
    ApiKey(cli::ApiKeyArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // No colour codes in log files (`tributary dev` sends each piece's stderr to one).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Broker(args) => runtime.block_on(broker_cmd::run(args)),
        Command::ControlPlane(args) => runtime.block_on(control_plane_cmd::run(args)),
        Command::Controller(args) => runtime.block_on(controller_cmd::run(args)),
        Command::Cell(args) => runtime.block_on(cell_cmd::run(args)),
        Command::Dev(args) => runtime.block_on(dev::run(args)),
        Command::Signup(args) => cli::finish(runtime.block_on(cli::signup(args))),
        Command::Login(args) => cli::finish(runtime.block_on(cli::login(args))),
        Command::Logout(args) => cli::finish(runtime.block_on(cli::logout(args))),
        Command::Environment(args) => cli::finish(runtime.block_on(cli::environment(args))),
        Command::Kafka(args) => cli::finish(runtime.block_on(cli::kafka(args))),
        Command::ServiceAccount(args) => cli::finish(runtime.block_on(cli::service_account(args))),
        Command::ApiKey(args) => cli::finish(runtime.block_on(cli::api_key(args))),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
