//! A controller-only node (`process.roles=controller`): Kafka's ControllerServer without a
//! BrokerServer. It is a voter of the metadata quorum and serves only its controller listener
//! (Raft RPCs, forwarded proposals, brokers' heartbeats and observer joins): no client
//! listener, no partitions, no coordinators, and it never registers as a broker, so clients
//! never see it in Metadata. While it is the active controller it fences and unfences the
//! brokers by their heartbeats, as a combined node does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::broker::{create_data_dir_durably, BrokerError};
use crate::config::BrokerConfig;
use crate::metadata::{MetadataOpenError, MetadataService};

/// A started controller-only node: its quorum member runs and its listener is bound.
pub struct ControllerNode {
    config: BrokerConfig,
    metadata: Arc<MetadataService>,
}

impl ControllerNode {
    /// Checks the settings as Kafka does for a controller-only node, opens the metadata log
    /// and binds the controller listener.
    pub async fn start(config: BrokerConfig) -> Result<ControllerNode, BrokerError> {
        let advertised = config.explicitly_set.contains("advertised.listeners");
        config
            .cluster
            .check_roles(config.node_id, advertised)
            .map_err(MetadataOpenError::Settings)?;
        if config.metrics_listen.is_some() {
            return Err(MetadataOpenError::Settings(
                "metrics.listen is served by brokers, not by a controller-only node (process.roles=controller)"
                    .to_string(),
            )
            .into());
        }
        create_data_dir_durably(&config.data_dir).map_err(|source| BrokerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let metadata = Arc::new(MetadataService::open_for(&config).await?);
        Ok(ControllerNode { config, metadata })
    }

    /// The bound controller listener.
    pub fn controller_address(&self) -> Option<SocketAddr> {
        self.metadata.controller_address()
    }

    /// Serves until `shutdown` completes, then stops the quorum member.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        tracing::info!(
            "quill controller {} listening on {} (process.roles=controller: no client listener), data in {}",
            self.config.node_id,
            self.controller_address()
                .map_or_else(|| "-".to_string(), |address| address.to_string()),
            self.config.data_dir.display()
        );
        let (stop, stopped) = watch::channel(false);
        let sessions = tokio::spawn(crate::liveness::run_controller(
            Arc::clone(&self.metadata),
            self.config.clone(),
            stopped,
        ));
        shutdown.await;
        tracing::info!("shutting down the controller");
        let _ = stop.send(true);
        if let Err(error) = sessions.await {
            tracing::error!(%error, "broker session task failed");
        }
        self.metadata.shutdown().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
