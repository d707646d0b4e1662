//! Broker lifecycle: open the data directory and services, bind, serve, shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::net;
use crate::state::BrokerState;

/// Start-up and shutdown failures (each message names what failed and where).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resolve listen address {address}: {source}")]
    Resolve {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// A started broker: bound and ready, not yet serving until [`Broker::run`].
pub struct Broker {
    state: Arc<BrokerState>,
    listeners: Vec<TcpListener>,
    local_addresses: Vec<SocketAddr>,
}

impl Broker {
    /// Opens the data directory and binds the listen address. Everything that can fail at
    /// start-up fails here, before the broker reports that it is listening.
    pub async fn start(mut config: BrokerConfig) -> Result<Broker, BrokerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| BrokerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let listeners = bind_all(&config.listen).await?;
        let mut local_addresses = Vec::with_capacity(listeners.len());
        for listener in &listeners {
            let address = listener.local_addr().map_err(|source| BrokerError::Bind {
                address: config.listen.clone(),
                source,
            })?;
            local_addresses.push(address);
        }
        if config.advertise.is_none() {
            config.advertise = Some(default_advertised_address(&config.listen, &local_addresses));
        }
        let state = Arc::new(BrokerState { config });
        Ok(Broker {
            state,
            listeners,
            local_addresses,
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (bounded by `shutdown.timeout.ms`) and closes the logs cleanly.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        let config = &self.state.config;
        let listening_on: Vec<String> = self
            .local_addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            "quill broker {} listening on {} (advertised as {}), data in {}",
            config.node_id,
            listening_on.join(", "),
            config.advertised_address(),
            config.data_dir.display()
        );
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(net::serve(self.listeners, self.state.clone(), shutdown_rx));
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = shutdown_tx.send(true);
        if let Err(error) = server.await {
            tracing::error!(%error, "network server task failed");
        }
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Binds every address `listen` resolves to (so `localhost` serves both IPv4 and IPv6 clients).
/// With port 0 only the first address is bound, so there is a single ephemeral port to report.
async fn bind_all(listen: &str) -> Result<Vec<TcpListener>, BrokerError> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|source| BrokerError::Resolve {
            address: listen.to_string(),
            source,
        })?
        .collect();
    let mut unique = Vec::new();
    for address in resolved {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    if unique.first().is_some_and(|address| address.port() == 0) {
        unique.truncate(1);
    }
    let mut listeners = Vec::new();
    let mut first_error = None;
    for address in unique {
        match TcpListener::bind(address).await {
            Ok(listener) => listeners.push(listener),
            Err(source) => {
                tracing::debug!(%address, %source, "could not bind one resolved address");
                first_error.get_or_insert(source);
            }
        }
    }
    if listeners.is_empty() {
        let source = first_error.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "resolved to no address")
        });
        return Err(BrokerError::Bind {
            address: listen.to_string(),
            source,
        });
    }
    Ok(listeners)
}

/// The listen host with the port actually bound (differs from the configured one with port 0).
fn default_advertised_address(listen: &str, bound: &[SocketAddr]) -> String {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    match bound.first() {
        Some(address) => format!("{host}:{}", address.port()),
        None => listen.to_string(),
    }
}
