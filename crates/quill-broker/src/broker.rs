//! Broker lifecycle: open the data directory and services, bind, serve, shut down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use quill_meta::MetadataRecord;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::metadata::{MetadataOpenError, MetadataService};
use crate::net;
use crate::offsets_store::{LogOffsetsStore, OFFSETS_TOPIC};
use crate::partitions::PartitionManager;
use crate::state::BrokerState;
use quill_group::GroupCoordinator;
use quill_txn::{TransactionCoordinator, TRANSACTION_STATE_TOPIC};

use crate::cleaner::CleanerService;
use crate::txn_store::{LogTxnMarkers, LogTxnStore, MetaProducerIds};

/// Name of the metadata log directory inside the data dir (Kafka KRaft's name).
pub const METADATA_DIR_NAME: &str = "__cluster_metadata";

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
    #[error("cannot open the metadata log: {0}")]
    Metadata(#[from] quill_meta::MetaError),
    #[error(transparent)]
    Quorum(#[from] crate::metadata::MetadataOpenError),
    #[error("cannot open partition logs: {0}")]
    Log(#[from] quill_log::LogError),
    #[error("advertised address {address} is not host:port")]
    AdvertisedAddress { address: String },
    #[error("cannot start the log cleaner: {0}")]
    Cleaner(String),
}

/// A started broker: bound and ready, not yet serving until [`Broker::run`].
pub struct Broker {
    state: Arc<BrokerState>,
    listeners: Vec<TcpListener>,
    local_addresses: Vec<SocketAddr>,
    /// The `metrics.listen` endpoint, when configured.
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    /// Compaction threads (`log.cleaner.*`), if enabled.
    cleaner: Option<CleanerService>,
}

impl Broker {
    /// Opens the data directory and binds the listen address. Everything that can fail at
    /// start-up fails here, before the broker reports that it is listening.
    pub async fn start(mut config: BrokerConfig) -> Result<Broker, BrokerError> {
        if config.cluster.controller_only {
            return Err(MetadataOpenError::Settings(
                "process.roles=controller runs a controller node, not a broker".to_string(),
            )
            .into());
        }
        config
            .cluster
            .check_roles(config.node_id, false)
            .map_err(MetadataOpenError::Settings)?;
        create_data_dir_durably(&config.data_dir).map_err(|source| BrokerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let listeners = bind_all(&config.listen).await?;
        let metrics_listener = match &config.metrics_listen {
            Some(address) => Some(bind_metrics(address).await?),
            None => None,
        };
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
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metadata = Arc::new(MetadataService::open_for(&config).await?);
        let opened_metadata = metadata.clone();
        let (config, metadata, partitions, reconciled_image) =
            tokio::task::spawn_blocking(move || open_services(config, opened_metadata))
                .await
                .map_err(|error| {
                    BrokerError::Log(quill_log::LogError::Io(std::io::Error::other(
                        error.to_string(),
                    )))
                })??;
        let groups = start_group_coordinator(&config, &metadata, &partitions);
        let producer_ids = Arc::new(MetaProducerIds::default());
        let markers = Arc::new(LogTxnMarkers::new(partitions.clone(), groups.clone()));
        let txn = start_transaction_coordinator(
            &config,
            &metadata,
            &partitions,
            &groups,
            producer_ids.clone(),
            markers.clone(),
        );
        let state = Arc::new(BrokerState::new(
            config,
            metadata,
            partitions,
            groups,
            txn,
            shutdown_rx,
            reconciled_image,
        ));
        producer_ids.attach(&state);
        markers.attach(&state);
        // Partitions this broker follows start fetching from their leaders.
        state.replica_fetchers.update(&state.partitions);
        if state.metadata.is_clustered() {
            tokio::spawn(register_in_background(state.clone()));
            tokio::spawn(crate::liveness::run(state.clone()));
            tokio::spawn(crate::isr::run(state.clone()));
        } else {
            register_this_broker(&state).await?;
            crate::handlers::features::finalize_bootstrap_features(&state).await?;
        }
        tokio::spawn(follow_metadata(state.clone()));
        // After a restart the coordinators' partitions this broker leads are marked loading
        // *before* it serves (so no request answers NOT_COORDINATOR) and load in the background,
        // concurrently: meanwhile their groups and transactional ids answer
        // COORDINATOR_LOAD_IN_PROGRESS, which clients retry. Prepared transactions resume
        // (markers) and timeouts restart once loaded. A broker of a cluster leads (and so
        // coordinates) nothing until it has caught up with the quorum; from then on its
        // coordinators follow every leadership change (`coordinator_leadership.rs`).
        if state.image().topic(OFFSETS_TOPIC).is_some() {
            state.ensure_offsets_topic().await?;
        }
        if state.image().topic(TRANSACTION_STATE_TOPIC).is_some() {
            state.ensure_transaction_topic().await?;
        }
        let cleaner = CleanerService::start(&state.config.cleaner, state.partitions.clone())
            .map_err(BrokerError::Cleaner)?;
        Ok(Broker {
            state,
            listeners,
            local_addresses,
            metrics_listener,
            shutdown,
            cleaner,
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// The address the metrics endpoint is bound to, when `metrics.listen` is set.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, address)| *address)
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
        let console_setting = self.state.config.console_enabled;
        let metrics_server = self.metrics_listener.map(|(listener, address)| {
            tracing::info!("metrics on http://{address}/metrics");
            let console = crate::metrics::http::console_enabled(console_setting, address);
            if console {
                tracing::info!("console on http://{address}/console");
                tokio::spawn(crate::metrics::history::run_sampler(
                    self.state.clone(),
                    self.shutdown.subscribe(),
                ));
            }
            tokio::spawn(crate::metrics::http::serve(
                listener,
                self.state.clone(),
                self.shutdown.subscribe(),
                console,
            ))
        });
        let server = tokio::spawn(net::serve(
            self.listeners,
            self.state.clone(),
            self.shutdown.subscribe(),
        ));
        let maintenance = tokio::spawn(run_maintenance(self.state.clone()));
        let flusher = tokio::spawn(run_flusher(self.state.clone()));
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        if self.state.metadata.is_clustered() {
            crate::liveness::controlled_shutdown(&self.state).await;
        }
        let _ = self.shutdown.send(true);
        // Parked JoinGroup/SyncGroup calls answer NOT_COORDINATOR now, so their connections
        // can drain instead of holding shutdown for a rebalance timeout.
        self.state.groups.shutdown();
        self.state.txn.unload_all();
        if let Err(error) = server.await {
            tracing::error!(%error, "network server task failed");
        }
        maintenance.abort();
        flusher.abort();
        if let Some(cleaner) = &self.cleaner {
            cleaner.request_stop();
        }
        if let Some(metrics_server) = metrics_server {
            if let Err(error) = metrics_server.await {
                tracing::error!(%error, "metrics server task failed");
            }
        }
        let partitions = self.state.partitions.clone();
        // Closing a log stops a cleaning round on it; then the cleaner threads can end.
        let cleaner = self.cleaner;
        if let Err(error) = tokio::task::spawn_blocking(move || {
            partitions.close_all();
            if let Some(cleaner) = cleaner {
                cleaner.stop();
            }
        })
        .await
        {
            tracing::error!(%error, "closing partition logs failed");
        }
        self.state.metadata.shutdown().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

type Services = (
    BrokerConfig,
    Arc<MetadataService>,
    Arc<PartitionManager>,
    Arc<quill_meta::MetadataImage>,
);

/// Blocking: opens the partition logs the metadata describes.
fn open_services(
    config: BrokerConfig,
    metadata: Arc<MetadataService>,
) -> Result<Services, BrokerError> {
    let partitions = Arc::new(PartitionManager::new(&config.data_dir, config.node_id)?);
    let image = metadata.image();
    // A one-voter quorum's image holds its whole log; a voter of a cluster may start behind
    // the quorum, so it removes orphans only once registered (see `register_in_background`).
    if !metadata.is_clustered() {
        partitions.remove_orphaned_dirs(&image);
    }
    // A full disk or descriptor shortage must not stop start-up: the logs that cannot open
    // now are retried by maintenance (their partitions unavailable meanwhile); anything else
    // (corruption) is fatal.
    if let Err(error) = partitions.reconcile(&image, &config) {
        if !crate::partitions::is_resource_exhaustion(&error) {
            return Err(error.into());
        }
        tracing::warn!(%error, "starting with partition logs that cannot be opened until the disk or file descriptor shortage passes");
    }
    Ok((config, metadata, partitions, image))
}

/// The group coordinator over `__consumer_offsets`. An existing topic keeps its partition count
/// whatever `offsets.topic.num.partitions` says now (group ids hash onto those partitions).
fn start_group_coordinator(
    config: &BrokerConfig,
    metadata: &MetadataService,
    partitions: &Arc<PartitionManager>,
) -> GroupCoordinator {
    let mut group_config = config.group.clone();
    if let Some(topic) = metadata.image().topic(OFFSETS_TOPIC) {
        group_config.offsets_topic_partitions =
            i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    }
    let store = Arc::new(LogOffsetsStore::new(partitions.clone()));
    let coordinator = GroupCoordinator::new(group_config, store);
    coordinator.spawn_offset_expiration();
    coordinator
}

/// The transaction coordinator over `__transaction_state`. As for groups, an existing topic
/// keeps its partition count (transactional ids hash onto those partitions).
fn start_transaction_coordinator(
    config: &BrokerConfig,
    metadata: &MetadataService,
    partitions: &Arc<PartitionManager>,
    groups: &GroupCoordinator,
    producer_ids: Arc<MetaProducerIds>,
    markers: Arc<LogTxnMarkers>,
) -> TransactionCoordinator {
    let mut txn_config = config.txn.clone();
    let image = metadata.image();
    if let Some(topic) = image.topic(TRANSACTION_STATE_TOPIC) {
        txn_config.transaction_state_partitions =
            i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    }
    txn_config.offsets_topic_partitions = groups.config().offsets_topic_partitions;
    let coordinator = TransactionCoordinator::new(
        txn_config,
        Arc::new(LogTxnStore::new(partitions.clone())),
        markers,
        producer_ids,
    );
    coordinator.spawn_timers();
    coordinator
}

/// Records this broker's advertised endpoint in the metadata log if it is new or changed.
async fn register_this_broker(state: &BrokerState) -> Result<(), BrokerError> {
    let config = &state.config;
    let address = config.advertised_address().to_string();
    let (host, port) = split_host_port(&address).ok_or_else(|| BrokerError::AdvertisedAddress {
        address: address.clone(),
    })?;
    let image = state.image();
    let rack = config.cluster.rack.clone();
    let incarnation_id = state.metadata.incarnation_id();
    let registered = image.broker(config.node_id);
    if registered.is_some_and(|broker| {
        broker.host == host
            && broker.port == port
            && broker.rack == rack
            && broker.incarnation_id == incarnation_id
    }) {
        return Ok(());
    }
    state
        .change_metadata(vec![MetadataRecord::RegisterBroker {
            node_id: config.node_id,
            host,
            port,
            rack,
            incarnation_id,
        }])
        .await?;
    Ok(())
}

/// Backoff between registration attempts of a voter whose quorum has no leader yet.
const REGISTRATION_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const REGISTRATION_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// A voter of a cluster registers once the quorum has a leader (the other voters may start
/// later), retrying with backoff until shutdown. Registration is committed after everything
/// this node applied before, so once it is applied here the image covers every partition
/// directory this node could have made: only then are orphaned directories removed.
async fn register_in_background(state: Arc<BrokerState>) {
    let mut backoff = REGISTRATION_RETRY_FIRST;
    let mut shutdown = state.shutdown.clone();
    loop {
        match register_this_broker(&state).await {
            Ok(()) => break,
            Err(error) => {
                tracing::debug!(%error, "broker registration not committed yet; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(REGISTRATION_RETRY_MAX);
    }
    tracing::info!(
        node_id = state.config.node_id,
        controller = ?state.metadata.leader(),
        "registered with the metadata quorum"
    );
    if let Err(error) = crate::handlers::features::finalize_bootstrap_features(&state).await {
        tracing::warn!(%error, "could not finalize metadata.version");
    }
    // The registration is applied here, so the image covers everything committed before it;
    // serve it before leading anything.
    state.follow_image(state.metadata.image()).await;
    state.mark_caught_up();
    let partitions = state.partitions.clone();
    let image = state.image();
    let _ = tokio::task::spawn_blocking(move || partitions.remove_orphaned_dirs(&image)).await;
}

/// Applies metadata changes made elsewhere (by other brokers, through the quorum) to this
/// broker: its partition logs and coordinators follow every new image.
async fn follow_metadata(state: Arc<BrokerState>) {
    let mut images = state.metadata.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        // The first round catches up with anything applied since start-up reconciled.
        let image = Arc::clone(&images.borrow_and_update());
        state.follow_image(image).await;
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// `host:port` or `[v6]:port` → (host without brackets, port).
pub fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

/// Creates the data directory; a new one is made durable in its parent, so that the logs and
/// metadata synced into it cannot vanish with its name after a power loss.
pub(crate) fn create_data_dir_durably(data_dir: &std::path::Path) -> std::io::Result<()> {
    let fs = quill_log::Fs::default();
    if fs.is_dir(data_dir) {
        return Ok(());
    }
    fs.create_dir_all(data_dir)?;
    match data_dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        Some(parent) => fs.sync_dir(parent),
        None => Ok(()),
    }
}

/// How often recovery points are checkpointed (Kafka's
/// `log.flush.offset.checkpoint.interval.ms` default): each costs two fsyncs per changed log.
const RECOVERY_CHECKPOINT_INTERVAL_MS: i64 = 60_000;

/// How often `flush.ms` is checked when `log.flush.scheduler.interval.ms` keeps Kafka's default
/// (`i64::MAX`, under which Kafka never checks and `flush.ms` would be ignored).
const DEFAULT_FLUSH_CHECK_INTERVAL_MS: u64 = 1000;

/// Kafka's log flusher: every `log.flush.scheduler.interval.ms`, asks each log whose `flush.ms`
/// has passed for a background sync (cheap: the fsync runs on the group-commit thread).
async fn run_flusher(state: Arc<BrokerState>) {
    let period_ms = match state.config.log_flush_scheduler_interval_ms {
        i64::MAX => DEFAULT_FLUSH_CHECK_INTERVAL_MS,
        configured_ms => configured_ms.max(1).unsigned_abs(),
    };
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(period_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let partitions = state.partitions.clone();
        let now_ms = crate::clock::now_ms();
        if let Err(error) =
            tokio::task::spawn_blocking(move || partitions.request_due_flushes(now_ms)).await
        {
            tracing::error!(%error, "log flusher task failed");
        }
    }
}

/// Periodic retention (every `log.retention.check.interval.ms`) and recovery-point checkpoints
/// about once a minute.
async fn run_maintenance(state: Arc<BrokerState>) {
    let period_ms = state
        .config
        .log_retention_check_interval_ms
        .max(1)
        .unsigned_abs()
        .min(RECOVERY_CHECKPOINT_INTERVAL_MS.unsigned_abs());
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(period_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint_ms = crate::clock::now_ms();
    loop {
        ticker.tick().await;
        let partitions = state.partitions.clone();
        let now_ms = crate::clock::now_ms();
        // producer.id.expiration.ms may change at runtime (as in Kafka).
        let producer_id_expiration_ms = crate::dynamic_broker_settings::runtime_value(
            &state.image(),
            state.config.node_id,
            "producer.id.expiration.ms",
            state.config.producer_id_expiration_ms,
        );
        let background_threads = crate::dynamic_broker_settings::runtime_value(
            &state.image(),
            state.config.node_id,
            "background.threads",
            i64::from(state.config.background_threads),
        );
        let threads = usize::try_from(background_threads).unwrap_or(1).max(1);
        let checkpoint = now_ms - last_checkpoint_ms >= RECOVERY_CHECKPOINT_INTERVAL_MS;
        if checkpoint {
            last_checkpoint_ms = now_ms;
        }
        if let Err(error) = tokio::task::spawn_blocking(move || {
            partitions.run_maintenance(now_ms, producer_id_expiration_ms, checkpoint, threads)
        })
        .await
        {
            tracing::error!(%error, "log maintenance task failed");
        }
        state.retry_missing_logs().await;
    }
}

/// Binds the metrics endpoint: the first address `address` resolves to, and only that one, so
/// it is reachable off the machine only when configured with such an address.
async fn bind_metrics(address: &str) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| BrokerError::Bind {
            address: address.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| BrokerError::Bind {
        address: address.to_string(),
        source,
    })?;
    Ok((listener, local))
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
