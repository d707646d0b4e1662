//! Feature versions as KRaft has them (KIP-584, KIP-778): which levels this software supports,
//! the levels finalized for the cluster (kept in the image through `FeatureLevel` records), and
//! Kafka's rules for changing them (`FeatureControlManager.updateFeatures`).
//!
//! What Quill supports is stated honestly: `metadata.version` at one level, 4.0-IV3 (25), the
//! level whose client-visible behaviour Quill's advertised API versions match. Quill's metadata
//! log has its own record format, so another level would change nothing and is not offered.
//! `kraft.version` (Quill's quorum has static voters only), `group.version` (no KIP-848
//! consumer protocol), `transaction.version` (no KIP-890 part 2) and
//! `eligible.leader.replicas.version` (no ELR) are at level 0, which Kafka does not advertise.

use std::collections::BTreeMap;

use crate::{MetaError, MetadataImage, MetadataRecord};

/// Kafka's name of the metadata version feature.
pub const METADATA_VERSION: &str = "metadata.version";

/// 4.0-IV3: the only metadata.version Quill supports, finalized on a fresh cluster.
pub const QUILL_METADATA_VERSION_LEVEL: i16 = 25;

/// Upper bound on finalized features in an image (Kafka has six names; the state machine
/// refuses more so a log cannot grow the map without bound).
pub const MAX_FINALIZED_FEATURES: usize = 64;
/// Upper bound on a feature name, in bytes.
pub const MAX_FEATURE_NAME_BYTES: usize = 255;

/// Kafka's feature names other than metadata.version (`org.apache.kafka.server.common.Feature`).
/// A level-0 update of one of these is valid (it removes nothing); an unknown name is not.
const KNOWN_FEATURES: &[&str] = &[
    "kraft.version",
    "transaction.version",
    "group.version",
    "eligible.leader.replicas.version",
    "share.version",
];

/// Kafka's metadata versions from 3.3-IV3 (the first a KRaft cluster can run) to 4.0-IV3:
/// feature level, name, and whether metadata records changed at that level (a downgrade across
/// such a level could lose metadata and is refused).
const METADATA_VERSIONS: &[(i16, &str, bool)] = &[
    (7, "3.3-IV3", true),
    (8, "3.4-IV0", true),
    (9, "3.5-IV0", false),
    (10, "3.5-IV1", false),
    (11, "3.5-IV2", true),
    (12, "3.6-IV0", false),
    (13, "3.6-IV1", true),
    (14, "3.6-IV2", true),
    (15, "3.7-IV0", true),
    (16, "3.7-IV1", false),
    (17, "3.7-IV2", true),
    (18, "3.7-IV3", false),
    (19, "3.7-IV4", false),
    (20, "3.8-IV0", false),
    (21, "3.9-IV0", false),
    (22, "4.0-IV0", false),
    (23, "4.0-IV1", true),
    (24, "4.0-IV2", false),
    (25, "4.0-IV3", false),
];

/// The lowest metadata.version a cluster may be set to (Kafka's `MINIMUM_VERSION`).
const MINIMUM_METADATA_VERSION_LEVEL: i16 = 7;

/// A range of supported levels, inclusive (Kafka's `VersionRange`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

impl VersionRange {
    /// Kafka's `QuorumFeatures.DISABLED`: a feature the software does not know.
    pub const DISABLED: VersionRange = VersionRange { min: 0, max: 0 };

    pub fn contains(&self, level: i16) -> bool {
        self.min <= level && level <= self.max
    }
}

impl std::fmt::Display for VersionRange {
    /// Kafka's `VersionRange.toString`: "25", "7-25" or "7+".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else if self.max == i16::MAX {
            write!(f, "{}+", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// The features this software supports, by name. Only levels Quill really implements.
pub fn supported_features() -> BTreeMap<&'static str, VersionRange> {
    BTreeMap::from([(
        METADATA_VERSION,
        VersionRange {
            min: QUILL_METADATA_VERSION_LEVEL,
            max: QUILL_METADATA_VERSION_LEVEL,
        },
    )])
}

/// How a level may move (UpdateFeatures v1+ `upgrade_type`; v0's `allow_downgrade` maps to
/// `SafeDowngrade`/`Upgrade`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    /// A code this software does not know: refused.
    Unknown,
}

impl UpgradeType {
    /// Kafka's `FeatureUpdate.UpgradeType.fromCode`.
    pub fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One requested change: `name` to `level` (0 removes a feature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureUpdate {
    pub name: String,
    pub level: i16,
    pub upgrade_type: UpgradeType,
}

/// The records that apply `updates` (in order; the first invalid one fails the whole request
/// with INVALID_UPDATE_VERSION and Kafka's message), checked against the finalized levels in
/// `image` and the levels `supported` by controller `node_id`. The caller appends them unless
/// the request is validate-only.
pub fn plan_update_features(
    image: &MetadataImage,
    node_id: i32,
    supported: &BTreeMap<&'static str, VersionRange>,
    updates: &[FeatureUpdate],
) -> Result<Vec<MetadataRecord>, MetaError> {
    // Levels as they would be after every update (for dependency checks).
    let mut proposed: BTreeMap<&str, i16> = image
        .features
        .iter()
        .map(|(name, level)| (name.as_str(), *level))
        .collect();
    for update in updates {
        proposed.insert(update.name.as_str(), update.level);
    }
    updates
        .iter()
        .map(|update| plan_one(image, node_id, supported, update, &proposed))
        .collect()
}

fn plan_one(
    image: &MetadataImage,
    node_id: i32,
    supported: &BTreeMap<&'static str, VersionRange>,
    update: &FeatureUpdate,
    proposed: &BTreeMap<&str, i16>,
) -> Result<MetadataRecord, MetaError> {
    let FeatureUpdate {
        name,
        level,
        upgrade_type,
    } = update;
    let invalid = |reason: String| {
        MetaError::InvalidUpdateVersion(format!(
            "Invalid update version {level} for feature {name}. {reason}"
        ))
    };
    if *upgrade_type == UpgradeType::Unknown {
        return Err(invalid(
            "The controller does not support the given upgrade type.".into(),
        ));
    }
    let current = image.finalized_level(name);
    if *level < 0 {
        return Err(invalid("A feature version cannot be less than 0.".into()));
    }
    let range = supported
        .get(name.as_str())
        .copied()
        .unwrap_or(VersionRange::DISABLED);
    if !range.contains(*level) {
        return Err(invalid(if range.max == 0 {
            format!("Local controller {node_id} does not support this feature.")
        } else {
            format!("Local controller {node_id} only supports versions {range}")
        }));
    }
    if *level < current && *upgrade_type == UpgradeType::Upgrade {
        return Err(invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to \
             either safe or unsafe downgrade."
                .into(),
        ));
    }
    if *level > current && *upgrade_type != UpgradeType::Upgrade {
        return Err(invalid("Can't downgrade to a newer version.".into()));
    }
    if name == METADATA_VERSION {
        check_metadata_version_change(current, *level, *upgrade_type)?;
    } else {
        check_feature_dependencies(name, *level, proposed).map_err(invalid)?;
    }
    Ok(MetadataRecord::FeatureLevel {
        name: name.clone(),
        level: *level,
    })
}

/// Kafka's `updateMetadataVersion` checks.
fn check_metadata_version_change(
    current: i16,
    level: i16,
    upgrade_type: UpgradeType,
) -> Result<(), MetaError> {
    let invalid = |reason: String| {
        MetaError::InvalidUpdateVersion(format!("Invalid metadata.version {level}. {reason}"))
    };
    // Levels below 3.3-IV3 are unknown here, which covers Kafka's "less than the minimum".
    if metadata_version_name(level).is_none() {
        return Err(invalid("Unknown metadata.version.".into()));
    }
    if level < current && metadata_changed_between(level, current) {
        return Err(invalid(if upgrade_type == UpgradeType::UnsafeDowngrade {
            "Unsafe metadata downgrade is not supported in this version.".into()
        } else {
            "Refusing to perform the requested downgrade because it might delete metadata \
             information."
                .into()
        }));
    }
    Ok(())
}

/// Kafka's `Features.validateVersion` for a feature other than metadata.version. Quill
/// supports none of them above level 0, which has no dependencies, so only the name is checked.
fn check_feature_dependencies(
    name: &str,
    level: i16,
    proposed: &BTreeMap<&str, i16>,
) -> Result<(), String> {
    if !KNOWN_FEATURES.contains(&name) {
        return Err(format!("Feature {name} not found."));
    }
    let metadata_version = proposed.get(METADATA_VERSION).copied().unwrap_or(0);
    if level >= 1 && metadata_version < MINIMUM_METADATA_VERSION_LEVEL {
        return Err(format!(
            "{name} could not be set to {level} because it depends on metadata.version={} ({})",
            MINIMUM_METADATA_VERSION_LEVEL,
            metadata_version_name(MINIMUM_METADATA_VERSION_LEVEL).unwrap_or_default()
        ));
    }
    Ok(())
}

/// "4.0-IV3" for 25; None for a level Kafka never defined (within what Quill knows).
pub fn metadata_version_name(level: i16) -> Option<&'static str> {
    METADATA_VERSIONS
        .iter()
        .find(|(known, _, _)| *known == level)
        .map(|(_, name, _)| *name)
}

/// Kafka's `MetadataVersion.checkIfMetadataChanged` for `low < high`: whether any level in
/// `(low, high]` changed metadata records.
fn metadata_changed_between(low: i16, high: i16) -> bool {
    METADATA_VERSIONS
        .iter()
        .any(|(level, _, changed)| *changed && low < *level && *level <= high)
}

/// The records a cluster needs at start: metadata.version finalized at Quill's level if it is
/// not yet (a fresh cluster, or a data directory written before features existed).
pub fn bootstrap_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    if image.features.contains_key(METADATA_VERSION) {
        return Vec::new();
    }
    vec![MetadataRecord::FeatureLevel {
        name: METADATA_VERSION.to_string(),
        level: QUILL_METADATA_VERSION_LEVEL,
    }]
}

/// The state machine's check of a `FeatureLevel` record: a bounded name, a level that is not
/// negative, metadata.version never removed, and a bounded number of finalized features.
pub(crate) fn check_feature_level(
    image: &MetadataImage,
    name: &str,
    level: i16,
) -> Result<(), MetaError> {
    if name.is_empty() || name.len() > MAX_FEATURE_NAME_BYTES {
        return Err(MetaError::InvalidRequest(format!(
            "feature name must be 1 to {MAX_FEATURE_NAME_BYTES} bytes"
        )));
    }
    if level < 0 {
        return Err(MetaError::InvalidRequest(format!(
            "feature {name} cannot be at level {level}"
        )));
    }
    if name == METADATA_VERSION && level == 0 {
        return Err(MetaError::InvalidRequest(
            "metadata.version cannot be removed".into(),
        ));
    }
    if level > 0
        && !image.features.contains_key(name)
        && image.features.len() >= MAX_FINALIZED_FEATURES
    {
        return Err(MetaError::InvalidRequest(format!(
            "at most {MAX_FINALIZED_FEATURES} features can be finalized"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_at(levels: &[(&str, i16)]) -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for (name, level) in levels {
            image.features.insert(name.to_string(), *level);
        }
        image
    }

    fn update(name: &str, level: i16, upgrade_type: UpgradeType) -> FeatureUpdate {
        FeatureUpdate {
            name: name.into(),
            level,
            upgrade_type,
        }
    }

    fn error_of(result: Result<Vec<MetadataRecord>, MetaError>) -> (i16, String) {
        let error = result.unwrap_err();
        (error.kafka_error_code(), error.to_string())
    }

    /// A wider table than Quill's, to reach the downgrade rules Kafka applies.
    fn wide() -> BTreeMap<&'static str, VersionRange> {
        BTreeMap::from([
            (METADATA_VERSION, VersionRange { min: 7, max: 25 }),
            ("group.version", VersionRange { min: 0, max: 1 }),
        ])
    }

    #[test]
    fn quill_supports_only_its_metadata_version() {
        let image = image_at(&[(METADATA_VERSION, 25)]);
        let same = plan_update_features(
            &image,
            1,
            &supported_features(),
            &[update(METADATA_VERSION, 25, UpgradeType::Upgrade)],
        );
        assert_eq!(
            same.unwrap(),
            vec![MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: 25
            }]
        );
        let down = plan_update_features(
            &image,
            1,
            &supported_features(),
            &[update(METADATA_VERSION, 24, UpgradeType::SafeDowngrade)],
        );
        assert_eq!(
            error_of(down),
            (
                95,
                "Invalid update version 24 for feature metadata.version. Local controller 1 only \
                 supports versions 25"
                    .into()
            )
        );
        let unsupported = plan_update_features(
            &image,
            3,
            &supported_features(),
            &[update("transaction.version", 2, UpgradeType::Upgrade)],
        );
        assert_eq!(
            error_of(unsupported).1,
            "Invalid update version 2 for feature transaction.version. Local controller 3 does \
             not support this feature."
        );
    }

    #[test]
    fn level_zero_is_valid_for_known_features_only() {
        let image = image_at(&[(METADATA_VERSION, 25)]);
        let known = plan_update_features(
            &image,
            1,
            &supported_features(),
            &[update("group.version", 0, UpgradeType::Upgrade)],
        );
        assert!(known.is_ok());
        let unknown = plan_update_features(
            &image,
            1,
            &supported_features(),
            &[update("no.such.feature", 0, UpgradeType::Upgrade)],
        );
        assert_eq!(
            error_of(unknown).1,
            "Invalid update version 0 for feature no.such.feature. Feature no.such.feature not \
             found."
        );
    }

    #[test]
    fn checks_run_in_kafkas_order() {
        let image = image_at(&[(METADATA_VERSION, 25)]);
        let cases = [
            (
                update(METADATA_VERSION, 25, UpgradeType::Unknown),
                "Invalid update version 25 for feature metadata.version. The controller does not \
                 support the given upgrade type.",
            ),
            (
                update(METADATA_VERSION, -1, UpgradeType::Upgrade),
                "Invalid update version -1 for feature metadata.version. A feature version \
                 cannot be less than 0.",
            ),
            (
                update(METADATA_VERSION, 22, UpgradeType::Upgrade),
                "Invalid update version 22 for feature metadata.version. Can't downgrade the \
                 version of this feature without setting the upgrade type to either safe or \
                 unsafe downgrade.",
            ),
            (
                update("group.version", 1, UpgradeType::SafeDowngrade),
                "Invalid update version 1 for feature group.version. Can't downgrade to a newer \
                 version.",
            ),
            (
                update(METADATA_VERSION, 22, UpgradeType::SafeDowngrade),
                "Invalid metadata.version 22. Refusing to perform the requested downgrade because \
                 it might delete metadata information.",
            ),
            (
                update(METADATA_VERSION, 22, UpgradeType::UnsafeDowngrade),
                "Invalid metadata.version 22. Unsafe metadata downgrade is not supported in this \
                 version.",
            ),
        ];
        for (request, message) in cases {
            let result = plan_update_features(&image, 1, &wide(), std::slice::from_ref(&request));
            assert_eq!(error_of(result), (95, message.to_string()), "{request:?}");
        }
    }

    #[test]
    fn a_downgrade_without_metadata_changes_is_safe() {
        // 24 and 25 changed no metadata records: 25 → 24 is allowed as a safe downgrade.
        let image = image_at(&[(METADATA_VERSION, 25)]);
        let records = plan_update_features(
            &image,
            1,
            &wide(),
            &[update(METADATA_VERSION, 24, UpgradeType::SafeDowngrade)],
        )
        .unwrap();
        assert_eq!(
            records,
            vec![MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: 24
            }]
        );
    }

    #[test]
    fn one_invalid_update_fails_the_whole_request() {
        let image = image_at(&[(METADATA_VERSION, 25)]);
        let result = plan_update_features(
            &image,
            1,
            &wide(),
            &[
                update("group.version", 1, UpgradeType::Upgrade),
                update(METADATA_VERSION, 26, UpgradeType::Upgrade),
            ],
        );
        assert_eq!(error_of(result).0, 95);
        let upgrade = plan_update_features(
            &image,
            1,
            &wide(),
            &[update("group.version", 1, UpgradeType::Upgrade)],
        );
        assert_eq!(upgrade.unwrap().len(), 1);
    }

    #[test]
    fn bootstrap_finalizes_metadata_version_once() {
        let fresh = MetadataImage::empty("c");
        assert_eq!(
            bootstrap_records(&fresh),
            vec![MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: QUILL_METADATA_VERSION_LEVEL
            }]
        );
        assert!(bootstrap_records(&image_at(&[(METADATA_VERSION, 25)])).is_empty());
    }

    #[test]
    fn the_state_machine_applies_and_bounds_feature_levels() {
        let level = |name: &str, level: i16| MetadataRecord::FeatureLevel {
            name: name.into(),
            level,
        };
        let image = crate::apply(&MetadataImage::empty("c"), &level(METADATA_VERSION, 25)).unwrap();
        assert_eq!(image.finalized_level(METADATA_VERSION), 25);
        let image = crate::apply(&image, &level("group.version", 1)).unwrap();
        let removed = crate::apply(&image, &level("group.version", 0)).unwrap();
        assert!(!removed.features.contains_key("group.version"));
        assert!(crate::apply(&image, &level(METADATA_VERSION, 0)).is_err());
        assert!(crate::apply(&image, &level("group.version", -1)).is_err());
        assert!(crate::apply(&image, &level("", 1)).is_err());
        assert!(crate::apply(&image, &level(&"x".repeat(256), 1)).is_err());
        let mut full = image.clone();
        for index in full.features.len()..MAX_FINALIZED_FEATURES {
            full.features.insert(format!("f{index}"), 1);
        }
        assert!(crate::apply(&full, &level("one.more", 1)).is_err());
        assert!(crate::apply(&full, &level("group.version", 2)).is_ok());
        full.check_invariants().unwrap();
    }

    #[test]
    fn version_ranges_print_as_kafka_does() {
        assert_eq!(VersionRange { min: 25, max: 25 }.to_string(), "25");
        assert_eq!(VersionRange { min: 7, max: 25 }.to_string(), "7-25");
        assert_eq!(
            VersionRange {
                min: 7,
                max: i16::MAX
            }
            .to_string(),
            "7+"
        );
        assert_eq!(metadata_version_name(25), Some("4.0-IV3"));
        assert_eq!(metadata_version_name(6), None);
    }
}
