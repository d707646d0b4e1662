//! Client subcommands of the `quill` binary: `topic`, `produce`, `consume`, `group`, `bench`,
//! `cluster`.
//! Each talks to brokers through `quill-client` only (the wire protocol), so each works against
//! Apache Kafka too.
//!
//! Exit codes: 0 success; 1 the operation failed (one line on stderr says what and where);
//! 2 invalid arguments (clap's usage error).

/// `println!` for command output: when the reader has gone (`quill … | head`), stop quietly
/// with status 0, as `cat` does, instead of panicking on the broken pipe.
macro_rules! out {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` (no newline added) with `out!`'s handling of a closed reader.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

mod bench;
mod broker_metrics;
mod cluster;
mod consume;
mod group;
mod interrupt;
mod local;
mod output;
mod produce;
mod topic;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use quill_client::{Client, ClientConfig};

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write records read from stdin (one per line, or JSON objects) to a topic.
    #[command(after_help = produce::EXAMPLES)]
    Produce(produce::ProduceArgs),
    /// Print records of one or more topics to stdout.
    #[command(after_help = consume::EXAMPLES)]
    Consume(consume::ConsumeArgs),
    /// List, describe (with lag), delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Measure produce or consume throughput and latency (like kafka-producer-perf-test).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Show the cluster: id, controller, brokers.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// How to reach the cluster; shared by every client subcommand.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Bootstrap brokers, comma-separated HOST:PORT
    #[arg(
        short = 'b',
        long = "brokers",
        env = "QUILL_BROKERS",
        default_value = "localhost:9092",
        value_delimiter = ',',
        value_name = "HOST:PORT,…"
    )]
    pub brokers: Vec<String>,
    /// Give up on a broker that does not accept the connection within this many seconds
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub connect_timeout: u64,
}

impl ConnectionArgs {
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut config = ClientConfig::new(self.brokers.iter().map(|b| b.trim().to_string()));
        config.client_id = "quill-cli".into();
        config.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        Ok(Client::connect(config).await?)
    }
}

/// Runs a client subcommand to completion and maps the outcome to an exit code.
pub fn run(command: ClientCommand) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quill-client")
        .build()
        .context("cannot start the async runtime");
    let result = runtime.and_then(|runtime| runtime.block_on(dispatch(command)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quill: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Topic(command) => topic::run(command).await,
        ClientCommand::Produce(args) => produce::run(args).await,
        ClientCommand::Consume(args) => consume::run(args).await,
        ClientCommand::Group(command) => group::run(command).await,
        ClientCommand::Bench(command) => bench::run(command).await,
        ClientCommand::Cluster(command) => cluster::run(command).await,
    }
}

/// Parses `key=value` (the value may contain `=`).
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got `{text}`")),
    }
}

/// Parses a compression codec name as Kafka spells it.
pub fn parse_compression(text: &str) -> Result<quill_client::Compression, String> {
    use quill_client::Compression;
    match text.to_ascii_lowercase().as_str() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!(
            "unknown compression `{text}` (none, gzip, snappy, lz4, zstd)"
        )),
    }
}

pub fn parse_acks(text: &str) -> Result<quill_client::Acks, String> {
    quill_client::Acks::parse(text)
        .ok_or_else(|| format!("acks must be 0, 1, -1 or all, got `{text}`"))
}

/// Writes command output (see `out!`).
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("quill: cannot write the output: {error}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_keeps_equals_in_the_value() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn compression_and_acks_names() {
        assert_eq!(
            parse_compression("ZSTD"),
            Ok(quill_client::Compression::Zstd)
        );
        assert!(parse_compression("brotli").is_err());
        assert_eq!(parse_acks("all"), Ok(quill_client::Acks::All));
        assert!(parse_acks("2").is_err());
    }
}
