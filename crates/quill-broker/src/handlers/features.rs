//! Feature versions (KIP-584): what ApiVersions v3+ reports, and UpdateFeatures (API 57).
//!
//! The finalized levels live in the metadata image (`FeatureLevel` records), so every broker
//! reports the same levels; the supported ranges are this software's (`quill_meta::features`).
//! Changes go through `BrokerState::change_metadata` like every other metadata change.

use std::collections::BTreeMap;

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{
    ApiVersionsResponse, UpdateFeaturesRequest, UpdateFeaturesResponse,
};
use kafka_protocol::protocol::StrBytes;
use quill_meta::features::{self, FeatureUpdate, UpgradeType};
use quill_meta::{MetaError, MetadataImage};

use crate::state::BrokerState;

/// ApiVersions v4 is the first version whose clients accept a supported minimum of 0 and a
/// finalized level of 0 (older Java clients reject them, so Kafka leaves such entries out).
const FIRST_VERSION_WITH_LEVEL_ZERO: i16 = 4;
/// UpdateFeatures v1 replaced `allow_downgrade` with `upgrade_type`.
const FIRST_VERSION_WITH_UPGRADE_TYPE: i16 = 1;
/// UpdateFeatures v2 stopped listing per-feature results when the request succeeds.
const FIRST_VERSION_WITHOUT_RESULTS: i16 = 2;
/// Kafka's "finalized features epoch unknown".
const UNKNOWN_FINALIZED_FEATURES_EPOCH: i64 = -1;

/// Adds the supported and finalized features to an ApiVersions v3+ response, as a KRaft
/// broker does: supported ranges of this software, finalized levels of the cluster, and as
/// their epoch the offset of the metadata image they were read from.
pub fn with_features(
    response: ApiVersionsResponse,
    image: &MetadataImage,
    api_version: i16,
) -> ApiVersionsResponse {
    let level_zero_allowed = api_version >= FIRST_VERSION_WITH_LEVEL_ZERO;
    let supported = features::supported_features()
        .into_iter()
        .filter(|(_, range)| level_zero_allowed || range.min > 0)
        .map(|(name, range)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    let finalized: Vec<FinalizedFeatureKey> = image
        .features
        .iter()
        .filter(|(_, level)| level_zero_allowed || **level > 0)
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_min_version_level(*level)
                .with_max_version_level(*level)
        })
        .collect();
    let epoch = if image.features.is_empty() {
        UNKNOWN_FINALIZED_FEATURES_EPOCH
    } else {
        i64::try_from(image.offset).unwrap_or(i64::MAX)
    };
    response
        .with_supported_features(supported)
        .with_finalized_features(finalized)
        .with_finalized_features_epoch(epoch)
}

/// Finalizes metadata.version at start-up if the image has none yet (a fresh data directory,
/// or one written before features existed), as `kafka-storage format` does for Kafka.
///
/// A storage failure (full disk) does not stop the broker, which starts and serves reads on a
/// full disk: ApiVersions then reports no finalized features (epoch -1) until a later start, or
/// an UpdateFeatures to metadata.version 25, writes the record.
pub async fn finalize_bootstrap_features(state: &BrokerState) -> Result<(), MetaError> {
    let records = features::bootstrap_records(&state.image());
    if records.is_empty() {
        return Ok(());
    }
    match state.change_metadata(records).await {
        Ok(_) => Ok(()),
        Err(error) if !error.is_validation_error() => {
            tracing::warn!(%error, "could not finalize metadata.version; retried at the next start");
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// UpdateFeatures: Kafka's `FeatureControlManager.updateFeatures`. One invalid update fails
/// the whole request with a top-level error; otherwise all updates are appended as one
/// metadata entry (nothing with `validate_only`). The change is durable before the answer,
/// well within any `timeout_ms` (which bounds Kafka's wait for its controller).
pub async fn update_features(
    state: &BrokerState,
    request: UpdateFeaturesRequest,
    api_version: i16,
) -> UpdateFeaturesResponse {
    let updates = requested_updates(&request, api_version);
    let image = state.image();
    let planned = features::plan_update_features(
        &image,
        state.config.node_id,
        &features::supported_features(),
        &updates,
    );
    let outcome = match planned {
        Ok(_) if request.validate_only => Ok(()),
        Ok(records) => state.change_metadata(records).await.map(|_| ()),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => {
            let results = if api_version < FIRST_VERSION_WITHOUT_RESULTS {
                updates
                    .iter()
                    .map(|update| {
                        UpdatableFeatureResult::default()
                            .with_feature(StrBytes::from_string(update.name.clone()))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            UpdateFeaturesResponse::default().with_results(results)
        }
        Err(error) => {
            if !error.is_validation_error() {
                tracing::warn!(%error, "UpdateFeatures could not be stored");
            }
            UpdateFeaturesResponse::default()
                .with_error_code(error.kafka_error_code())
                .with_error_message(Some(StrBytes::from_string(error.to_string())))
        }
    }
}

/// The request's updates, one per feature name in first-seen order; a name given twice takes
/// its last level and upgrade type (Kafka's controller collects them into maps).
fn requested_updates(request: &UpdateFeaturesRequest, api_version: i16) -> Vec<FeatureUpdate> {
    let mut order: Vec<String> = Vec::new();
    let mut latest: BTreeMap<String, (i16, UpgradeType)> = BTreeMap::new();
    for update in &request.feature_updates {
        let name = update.feature.to_string();
        let upgrade_type = if api_version >= FIRST_VERSION_WITH_UPGRADE_TYPE {
            UpgradeType::from_code(update.upgrade_type)
        } else if update.allow_downgrade {
            UpgradeType::SafeDowngrade
        } else {
            UpgradeType::Upgrade
        };
        if latest
            .insert(name.clone(), (update.max_version_level, upgrade_type))
            .is_none()
        {
            order.push(name);
        }
    }
    order
        .into_iter()
        .filter_map(|name| {
            let (level, upgrade_type) = latest.get(&name).copied()?;
            Some(FeatureUpdate {
                name,
                level,
                upgrade_type,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;

    fn key(name: &str, level: i16, allow_downgrade: bool, upgrade_type: i8) -> FeatureUpdateKey {
        FeatureUpdateKey::default()
            .with_feature(StrBytes::from_string(name.into()))
            .with_max_version_level(level)
            .with_allow_downgrade(allow_downgrade)
            .with_upgrade_type(upgrade_type)
    }

    #[test]
    fn v0_maps_allow_downgrade_and_later_versions_read_the_upgrade_type() {
        let request = UpdateFeaturesRequest::default().with_feature_updates(vec![
            key("a", 1, true, 1),
            key("b", 2, false, 3),
            key("c", 3, false, 9),
        ]);
        let v0: Vec<UpgradeType> = requested_updates(&request, 0)
            .into_iter()
            .map(|update| update.upgrade_type)
            .collect();
        assert_eq!(
            v0,
            [
                UpgradeType::SafeDowngrade,
                UpgradeType::Upgrade,
                UpgradeType::Upgrade
            ]
        );
        let v1: Vec<UpgradeType> = requested_updates(&request, 1)
            .into_iter()
            .map(|update| update.upgrade_type)
            .collect();
        assert_eq!(
            v1,
            [
                UpgradeType::Upgrade,
                UpgradeType::UnsafeDowngrade,
                UpgradeType::Unknown
            ]
        );
    }

    #[test]
    fn a_repeated_feature_takes_its_last_update() {
        let request = UpdateFeaturesRequest::default().with_feature_updates(vec![
            key("a", 1, false, 1),
            key("b", 1, false, 1),
            key("a", 7, false, 2),
        ]);
        let updates = requested_updates(&request, 1);
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[0].name, "a");
        assert_eq!(updates[0].level, 7);
        assert_eq!(updates[0].upgrade_type, UpgradeType::SafeDowngrade);
    }

    #[test]
    fn api_versions_reports_supported_and_finalized_features_with_the_image_offset() {
        let mut image = MetadataImage::empty("c");
        let empty = with_features(ApiVersionsResponse::default(), &image, 3);
        assert!(empty.finalized_features.is_empty());
        assert_eq!(empty.finalized_features_epoch, -1);
        image.features.insert("metadata.version".into(), 25);
        image.offset = 12;
        let response = with_features(ApiVersionsResponse::default(), &image, 3);
        assert_eq!(response.supported_features.len(), 1);
        assert_eq!(
            response.supported_features[0].name.as_str(),
            "metadata.version"
        );
        assert_eq!(
            (
                response.supported_features[0].min_version,
                response.supported_features[0].max_version
            ),
            (25, 25)
        );
        assert_eq!(response.finalized_features.len(), 1);
        assert_eq!(response.finalized_features[0].max_version_level, 25);
        assert_eq!(response.finalized_features[0].min_version_level, 25);
        assert_eq!(response.finalized_features_epoch, 12);
    }
}
