//! `tributary`: one binary, many roles. `tributary broker --standalone` runs a single
//! broker with a PLAINTEXT listener and no authentication; `tributary control-plane` runs the
//! REST API; `tributary controller` runs one voter of a cell's controller quorum;
//! `tributary cell` operates a cell through its controllers; `tributary dev` runs all of
//! them as supervised processes on one machine. `signup`, `login`, `environment`, `kafka`,
//! `service-account` and `api-key` are the user CLI, a client of the REST API (`cli/`).
//! The long-running ones serve `/metrics`, `/livez` and `/readyz` on `--metrics-listen`
//! ([`admin_http`]); every one exports traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set ([`telemetry`]).

mod admin_http;
mod broker_cmd;
mod cell_cmd;
mod cli;
mod control_plane_cmd;
mod controller_cmd;
mod dev;
mod readiness;
mod telemetry;

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

impl Command {
    /// The role's name (`service.name` of its traces is `tributary-<name>`).
    fn name(&self) -> &'static str {
        match self {
            Command::Broker(_) => "broker",
            Command::ControlPlane(_) => "control-plane",
            Command::Controller(_) => "controller",
            Command::Cell(_) => "cell",
            Command::Dev(_) => "dev",
            Command::Signup(_)
            | Command::Login(_)
            | Command::Logout(_)
            | Command::Environment(_)
            | Command::Kafka(_)
            | Command::ServiceAccount(_)
            | Command::ApiKey(_) => "cli",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let telemetry = {
        let _context = runtime.enter();
        telemetry::init(cli.command.name())?
    };
    let result = match cli.command {
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
    };
    telemetry.shutdown();
    result
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
