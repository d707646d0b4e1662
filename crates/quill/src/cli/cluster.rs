//! `quill cluster info`: cluster id, controller and brokers, from Metadata; the metadata quorum
//! (leader, epoch, voters and their lag), from DescribeQuorum; the API versions the broker
//! speaks, from ApiVersions. `quill cluster local` (local.rs) runs a cluster on loopback.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use quill_client::admin::{QuorumDescription, QuorumReplica};
use quill_client::ApiKey;
use serde_json::json;

use super::output::{render_table, OutputFormat};
use super::ConnectionArgs;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers, and the API versions the broker speaks.
    #[command(after_help = "Examples:
  quill cluster info
  quill cluster info -b broker1:9092 --output json")]
    Info(InfoArgs),
    /// Print a new random cluster id for `cluster.id` (as `kafka-storage.sh random-uuid`).
    #[command(
        after_help = "Example (a three-node cluster; every node gets the same id):
  ID=$(quill cluster new-id)
  quill --node-id 1 --listen 127.0.0.1:9092 --data-dir d1 \\
    --set controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097 \\
    --set cluster.id=$ID"
    )]
    NewId,
    /// Run a cluster of N nodes (each a broker and a controller) on this machine, in the
    /// foreground, until Ctrl-C; the next run with the same --data-dir restarts it.
    #[command(after_help = "Examples:
  quill cluster local
  quill cluster local --nodes 5 --base-port 19092 --data-dir /tmp/quill-cluster")]
    Local(super::local::LocalArgs),
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    let args = match command {
        ClusterCommand::Info(args) => args,
        ClusterCommand::NewId => {
            out!("{}", quill_broker::new_cluster_id());
            return Ok(());
        }
        ClusterCommand::Local(args) => return super::local::run(args).await,
    };
    let client = args.connection.connect().await?;
    let metadata = client.refresh_metadata(Some(&[]), false).await?;
    let cluster_id = metadata.cluster_id.clone().unwrap_or_default();
    let quorum = quill_client::Admin::new(client.clone())
        .describe_quorum()
        .await
        .map_err(|error| error.to_string());
    let broker_ids: std::collections::BTreeSet<i32> = metadata.brokers.keys().copied().collect();
    let connection = client.any_connection().await?;
    let versions = broker_versions(connection.address(), &connection.api_versions());
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
            "quorum": quorum_json(&quorum, &broker_ids),
            "client_version": env!("CARGO_PKG_VERSION"),
            "broker_versions": versions.json(),
        });
        out!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    out!("Cluster id: {cluster_id}");
    out!("Controller: {}", metadata.controller_id);
    out!("Version:    not reported ({VERSION_NOTE})");
    out!("APIs:       {}", versions.headline());
    out!("Features:   {}", versions.features_line());
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
    out_raw!("{}", render_table(&["BROKER", "ADDRESS", "RACK"], &rows));
    print_quorum(&quorum, &broker_ids);
    Ok(())
}

/// Kafka's `process.roles` of a quorum member: a voter registered as a broker is combined, one
/// that is not is controller-only; observers are brokers.
fn process_roles(
    is_voter: bool,
    node_id: i32,
    broker_ids: &std::collections::BTreeSet<i32>,
) -> &'static str {
    match (is_voter, broker_ids.contains(&node_id)) {
        (true, true) => "broker,controller",
        (true, false) => "controller",
        (false, _) => "broker",
    }
}

fn quorum_json(
    quorum: &Result<QuorumDescription, String>,
    broker_ids: &std::collections::BTreeSet<i32>,
) -> serde_json::Value {
    let quorum = match quorum {
        Ok(quorum) => quorum,
        Err(error) => return json!({ "error": error }),
    };
    let replica = |is_voter: bool, replica: &QuorumReplica| {
        json!({
            "node_id": replica.replica_id,
            "process_roles": process_roles(is_voter, replica.replica_id, broker_ids),
            "log_end_offset": replica.log_end_offset,
            "lag": replica.lag(quorum.high_watermark),
            "last_fetch_timestamp_ms": replica.last_fetch_timestamp_ms,
            "last_caught_up_timestamp_ms": replica.last_caught_up_timestamp_ms,
            "endpoints": quorum.voter_endpoints.get(&replica.replica_id),
        })
    };
    json!({
        "leader_id": quorum.leader_id,
        "leader_epoch": quorum.leader_epoch,
        "high_watermark": quorum.high_watermark,
        "voters": quorum.voters.iter().map(|voter| replica(true, voter)).collect::<Vec<_>>(),
        "observers": quorum.observers.iter().map(|observer| replica(false, observer)).collect::<Vec<_>>(),
    })
}

fn print_quorum(
    quorum: &Result<QuorumDescription, String>,
    broker_ids: &std::collections::BTreeSet<i32>,
) {
    let quorum = match quorum {
        Ok(quorum) => quorum,
        Err(error) => {
            out!("Quorum:     unknown ({error})");
            return;
        }
    };
    out!(
        "Quorum:     leader {}, epoch {}, high watermark {}",
        quorum.leader_id,
        quorum.leader_epoch,
        quorum.high_watermark
    );
    let rows: Vec<Vec<String>> = quorum
        .voters
        .iter()
        .map(|voter| ("voter", voter))
        .chain(
            quorum
                .observers
                .iter()
                .map(|observer| ("observer", observer)),
        )
        .map(|(role, replica)| {
            let role = if replica.replica_id == quorum.leader_id {
                "leader"
            } else {
                role
            };
            vec![
                replica.replica_id.to_string(),
                role.to_string(),
                process_roles(role != "observer", replica.replica_id, broker_ids).to_string(),
                known(replica.log_end_offset),
                replica
                    .lag(quorum.high_watermark)
                    .map_or_else(|| "unknown".to_string(), |lag| lag.to_string()),
                quorum
                    .voter_endpoints
                    .get(&replica.replica_id)
                    .map(|endpoints| endpoints.join(","))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    out_raw!(
        "{}",
        render_table(
            &[
                "NODE",
                "QUORUM ROLE",
                "PROCESS ROLES",
                "LOG END OFFSET",
                "LAG",
                "CONTROLLER ENDPOINT"
            ],
            &rows
        )
    );
}

/// A value Kafka reports as -1 when unknown.
fn known(value: i64) -> String {
    if value < 0 {
        "unknown".to_string()
    } else {
        value.to_string()
    }
}

/// What ApiVersions can honestly tell about a broker. The Kafka protocol carries the client's
/// software name and version (KIP-511) but not the broker's, so neither Quill nor Kafka
/// releases can be named from the wire; the API version ranges and the protocol features
/// they imply are facts.
struct BrokerVersions {
    address: String,
    /// (API name, min version, max version), by API key.
    apis: Vec<(String, i16, i16)>,
    /// Protocol features the advertised versions imply, each with whether it is there.
    features: Vec<(&'static str, bool)>,
}

/// APIs shown on the table's version line (all of them are in the JSON output).
const HEADLINE_APIS: [ApiKey; 6] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::JoinGroup,
    ApiKey::EndTxn,
];

/// A protocol feature, named by its KIP, present when the broker speaks `api` at `min_version`
/// or newer. Only version facts from the Kafka message definitions, no release guesses.
struct ProtocolFeature {
    name: &'static str,
    api: ApiKey,
    min_version: i16,
}

const PROTOCOL_FEATURES: [ProtocolFeature; 7] = [
    ProtocolFeature {
        name: "transactions (KIP-98)",
        api: ApiKey::EndTxn,
        min_version: 0,
    },
    ProtocolFeature {
        name: "static membership (KIP-345, JoinGroup v5+)",
        api: ApiKey::JoinGroup,
        min_version: 5,
    },
    ProtocolFeature {
        name: "fetch by topic id (KIP-516, Fetch v13+)",
        api: ApiKey::Fetch,
        min_version: 13,
    },
    ProtocolFeature {
        name: "static leader restart (KIP-814, JoinGroup v9)",
        api: ApiKey::JoinGroup,
        min_version: 9,
    },
    ProtocolFeature {
        name: "DescribeCluster (KIP-700)",
        api: ApiKey::DescribeCluster,
        min_version: 0,
    },
    ProtocolFeature {
        name: "transactions v2 (KIP-890, EndTxn v5+)",
        api: ApiKey::EndTxn,
        min_version: 5,
    },
    ProtocolFeature {
        name: "consumer group protocol (KIP-848)",
        api: ApiKey::ConsumerGroupHeartbeat,
        min_version: 0,
    },
];

fn broker_versions(address: &str, advertised: &BTreeMap<i16, (i16, i16)>) -> BrokerVersions {
    let apis = advertised
        .iter()
        .map(|(&key, &(min, max))| (api_name(key), min, max))
        .collect();
    let features = PROTOCOL_FEATURES
        .iter()
        .map(|feature| {
            let present = advertised
                .get(&(feature.api as i16))
                .is_some_and(|&(_, max)| max >= feature.min_version);
            (feature.name, present)
        })
        .collect();
    BrokerVersions {
        address: address.to_string(),
        apis,
        features,
    }
}

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(api) => format!("{api:?}"),
        Err(_) => format!("api-{key}"),
    }
}

impl BrokerVersions {
    /// `Produce v3-12, Fetch v4-17, …` for the headline APIs the broker has.
    fn headline(&self) -> String {
        let headline: Vec<String> = HEADLINE_APIS
            .iter()
            .filter_map(|api| {
                let name = format!("{api:?}");
                let (_, min, max) = self
                    .apis
                    .iter()
                    .find(|(candidate, _, _)| *candidate == name)?;
                Some(format!("{name} v{min}-{max}"))
            })
            .collect();
        format!(
            "{} ({} in all, from {})",
            headline.join(", "),
            self.apis.len(),
            self.address
        )
    }

    fn features_line(&self) -> String {
        let names = |present: bool| -> Vec<&str> {
            self.features
                .iter()
                .filter(|(_, has)| *has == present)
                .map(|(name, _)| *name)
                .collect()
        };
        let (with, without) = (names(true), names(false));
        if without.is_empty() {
            return with.join(", ");
        }
        format!("{}; not: {}", with.join(", "), without.join(", "))
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "reported_by": self.address,
            "software": serde_json::Value::Null,
            "note": VERSION_NOTE,
            "apis": self.apis.iter().map(|(name, min, max)| json!({
                "api": name, "min_version": min, "max_version": max,
            })).collect::<Vec<_>>(),
            "features": self.features.iter().map(|(name, present)| json!({
                "feature": name, "supported": present,
            })).collect::<Vec<_>>(),
        })
    }
}

const VERSION_NOTE: &str =
    "the Kafka protocol carries the client's software version (KIP-511), never the broker's";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_the_advertised_versions() {
        let advertised: BTreeMap<i16, (i16, i16)> = [
            (ApiKey::Produce as i16, (3, 12)),
            (ApiKey::Fetch as i16, (4, 17)),
            (ApiKey::JoinGroup as i16, (0, 4)),
            (ApiKey::EndTxn as i16, (0, 4)),
            (999, (0, 1)),
        ]
        .into_iter()
        .collect();
        let versions = broker_versions("b:9092", &advertised);
        assert_eq!(
            versions.headline(),
            "Produce v3-12, Fetch v4-17, JoinGroup v0-4, EndTxn v0-4 (5 in all, from b:9092)"
        );
        let line = versions.features_line();
        assert!(
            line.starts_with("transactions (KIP-98), fetch by topic id"),
            "{line}"
        );
        assert!(line.contains("not: static membership"), "{line}");
        assert!(line.contains("transactions v2"), "{line}");
        assert_eq!(versions.apis.last().unwrap().0, "api-999");
    }
}
