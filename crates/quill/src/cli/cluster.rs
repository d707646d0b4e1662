//! `quill cluster info`: cluster id, controller and brokers, from Metadata.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{render_table, OutputFormat};
use super::ConnectionArgs;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller and brokers.
    #[command(after_help = "Examples:
  quill cluster info
  quill cluster info -b broker1:9092 --output json")]
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    let ClusterCommand::Info(args) = command;
    let client = args.connection.connect().await?;
    let metadata = client.refresh_metadata(Some(&[]), false).await?;
    let cluster_id = metadata.cluster_id.clone().unwrap_or_default();
    if args.output == OutputFormat::Json {
        let document = json!({
            "cluster_id": cluster_id,
            "controller_id": metadata.controller_id,
            "brokers": metadata.brokers.values().map(|broker| json!({
                "node_id": broker.node_id,
                "host": broker.host,
                "port": broker.port,
                "rack": broker.rack,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!("Cluster id: {cluster_id}");
    println!("Controller: {}", metadata.controller_id);
    let rows: Vec<Vec<String>> = metadata
        .brokers
        .values()
        .map(|broker| {
            vec![
                broker.node_id.to_string(),
                broker.address(),
                broker.rack.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!("{}", render_table(&["BROKER", "ADDRESS", "RACK"], &rows));
    Ok(())
}
