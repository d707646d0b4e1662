//! `quill`: the command-line entry point: the broker, and the client subcommands in `cli`.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use quill_broker::{Broker, BrokerConfig};

const PRECEDENCE_HELP: &str = "\
Settings are resolved in this order, first match wins:
  1. command-line flags (--data-dir, --listen, --advertise, --node-id, --set NAME=VALUE)
  2. environment variables (QUILL_DATA_DIR, QUILL_LISTEN, QUILL_ADVERTISE, QUILL_NODE_ID)
  3. the TOML file given with --config (Kafka setting names, e.g. \"num.partitions\" = 3)
  4. built-in defaults (Kafka's, see `quill broker --list-settings`)
Unknown or invalid settings stop the broker at start-up with a message naming the setting.
QUILL_LOG sets the log filter (e.g. QUILL_LOG=debug); default `info` with the storage\ncrates at `warn`. --log-format json (or QUILL_LOG_FORMAT=json) logs one JSON object per line.";

#[derive(Parser, Debug)]
#[command(
    name = "quill",
    version,
    about = "Quill: a Kafka-compatible event streaming broker",
    after_help = PRECEDENCE_HELP,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    broker: BrokerArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a single-node broker (the default when no subcommand is given).
    #[command(after_help = PRECEDENCE_HELP)]
    Broker(BrokerArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Args, Debug, Default)]
struct BrokerArgs {
    /// Data directory: partition logs and cluster metadata [default: ./quill-data]
    #[arg(long, env = "QUILL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: localhost:9092]
    #[arg(long, env = "QUILL_LISTEN", value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address clients are told to connect to [default: the listen address]
    #[arg(long, env = "QUILL_ADVERTISE", value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// This broker's node id [default: 1]
    #[arg(long, env = "QUILL_NODE_ID", value_name = "N")]
    node_id: Option<String>,
    /// TOML file of Kafka-named broker settings
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Any broker setting by its Kafka name, e.g. --set num.partitions=3 (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE")]
    settings: Vec<String>,
    /// Print every accepted setting with its description and exit
    #[arg(long)]
    list_settings: bool,
    /// Log lines as human-readable text (default) or one JSON object per line
    #[arg(long, env = "QUILL_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and fields.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Broker(args)) => args,
        Some(Command::Client(command)) => {
            init_logging(LogFormat::Text);
            return cli::run(command);
        }
        None => cli.broker,
    };
    init_logging(args.log_format.unwrap_or_default());
    match run_broker(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quill: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Start-up prints one line (where the broker listens, where data lives); the storage crates'
/// own open/recovery reports are debug detail unless something is wrong, and so is openraft's
/// narration of every election and replication step: quill-meta reports what matters (an
/// unreachable controller peer, a member stopped by a storage error) itself, rate-limited.
const DEFAULT_LOG_FILTER: &str = "info,quill_meta=warn,quill_log=warn,openraft=off";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // Flattened, so `message` and the event's fields are top-level keys a log shipper
        // indexes directly; spans are not used by the broker.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn run_broker(args: BrokerArgs) -> anyhow::Result<()> {
    if args.list_settings {
        for setting in quill_broker::config::SETTINGS {
            println!("{:34} {}", setting.name, setting.description);
        }
        println!("\nAlso accepted, as broker-wide defaults of the matching topic configs:");
        for name in quill_broker::config::topic_default_setting_names() {
            println!("  {name}");
        }
        return Ok(());
    }
    let config = resolve_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quill-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = install_shutdown_signal()?;
        if config.cluster.controller_only {
            let controller = quill_broker::controller_node::ControllerNode::start(config).await?;
            controller.run(shutdown).await?;
        } else {
            let broker = Broker::start(config).await?;
            broker.run(shutdown).await?;
        }
        anyhow::Ok(())
    })
}

/// Defaults, then the TOML file, then environment and flags (clap already prefers a flag over
/// its environment variable).
fn resolve_config(args: &BrokerArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = BrokerConfig::default();
    if let Some(path) = &args.config {
        apply_config_file(&mut config, path)?;
    }
    if let Some(data_dir) = &args.data_dir {
        config
            .set("log.dirs", &data_dir.to_string_lossy())
            .context("--data-dir / QUILL_DATA_DIR")?;
    }
    if let Some(listen) = &args.listen {
        config
            .set_client_listener(listen)
            .context("--listen / QUILL_LISTEN")?;
    }
    if let Some(advertise) = &args.advertise {
        config
            .set("advertised.listeners", advertise)
            .context("--advertise / QUILL_ADVERTISE")?;
    }
    if let Some(node_id) = &args.node_id {
        config
            .set("node.id", node_id)
            .context("--node-id / QUILL_NODE_ID")?;
    }
    for setting in &args.settings {
        let Some((name, value)) = setting.split_once('=') else {
            anyhow::bail!("--set expects NAME=VALUE, got `{setting}`");
        };
        config.set(name.trim(), value).context("--set")?;
    }
    Ok(config)
}

fn apply_config_file(config: &mut BrokerConfig, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    config
        .apply_toml(&text)
        .with_context(|| format!("in config file {}", path.display()))
}

/// Installs the SIGINT/SIGTERM handlers now (before the broker reports it is listening, so an
/// early signal is never lost to the default action) and returns a future completing on either.
#[cfg(unix)]
fn install_shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

#[cfg(not(unix))]
fn install_shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
