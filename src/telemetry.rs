//! Logs and traces for every subcommand, set up in one place.
//!
//! - Logs: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`); no colour
//!   codes unless stderr is a terminal (`tributary dev` sends each piece's stderr to a file).
//! - Traces: only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://collector:4317`),
//!   the same spans (after the same filter) are exported over OTLP/gRPC in batches. The
//!   exporter reads the other standard `OTEL_EXPORTER_OTLP_*` variables itself;
//!   `service.name` is `OTEL_SERVICE_NAME` or `tributary-<subcommand>`. Unset: nothing
//!   OpenTelemetry is initialised.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// What must be flushed before the process exits.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// Where traces go, if anywhere.
fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Installs the global subscriber. Call inside the Tokio runtime's context (the OTLP
/// exporter's gRPC channel starts a task on it).
pub fn init(service: &str) -> anyhow::Result<Telemetry> {
    let traces = match otlp_endpoint() {
        Some(endpoint) => Some(tracer_provider(service).with_context(|| {
            format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: cannot set up the OTLP trace exporter")
        })?),
        None => None,
    };
    let otel = traces
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("tributary")));
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(otel)
        .init();
    if let Some(endpoint) = otlp_endpoint().filter(|_| traces.is_some()) {
        tracing::info!(%endpoint, "exporting traces over OTLP/gRPC");
    }
    Ok(Telemetry { traces })
}

fn tracer_provider(service: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(format!("tributary-{service}"));
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

impl Telemetry {
    /// Exports the spans still queued (bounded by the SDK's own timeouts). Call while the
    /// runtime is still alive, outside `block_on`.
    pub fn shutdown(self) {
        if let Some(p) = self.traces {
            if let Err(e) = p.shutdown() {
                eprintln!("tributary: flushing traces over OTLP failed: {e}");
            }
        }
    }
}
