//! Everything a request handler can reach: configuration and the services.

use crate::config::BrokerConfig;

/// Shared by every connection and request task (behind an `Arc`).
pub struct BrokerState {
    pub config: BrokerConfig,
}
