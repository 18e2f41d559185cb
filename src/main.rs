//! `tributary`: one binary, many roles. `tributary broker --standalone` runs a single
//! broker with a PLAINTEXT listener and no authentication; later roles (controller, control
//! plane, dev stack) are further subcommands.

mod broker_cmd;

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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Broker(args) => runtime.block_on(broker_cmd::run(args)),
    }
}
