//! `meta.properties`: identifies the metadata directory (format version, cluster id).

use std::path::Path;

use quill_fs::Fs;

use crate::MetaError;

pub const PROPERTIES_FORMAT_VERSION: &str = "1";
/// The file is a handful of lines; anything bigger is not ours.
pub const MAX_PROPERTIES_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
}

impl MetaProperties {
    pub fn generate() -> MetaProperties {
        MetaProperties {
            cluster_id: new_cluster_id(),
        }
    }

    pub fn to_text(&self) -> String {
        format!(
            "# Quill metadata directory. Do not edit.\nversion={PROPERTIES_FORMAT_VERSION}\ncluster.id={}\n",
            self.cluster_id
        )
    }

    pub fn parse(text: &str) -> Result<MetaProperties, MetaError> {
        let mut version = None;
        let mut cluster_id = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                MetaError::Corrupt(format!("meta.properties: malformed line {line:?}"))
            })?;
            match key.trim() {
                "version" => version = Some(value.trim().to_string()),
                "cluster.id" => cluster_id = Some(value.trim().to_string()),
                _ => {}
            }
        }
        if version.as_deref() != Some(PROPERTIES_FORMAT_VERSION) {
            return Err(MetaError::Corrupt(format!(
                "meta.properties: unsupported version {version:?}, expected {PROPERTIES_FORMAT_VERSION}"
            )));
        }
        match cluster_id {
            Some(cluster_id) if !cluster_id.is_empty() => Ok(MetaProperties { cluster_id }),
            _ => Err(MetaError::Corrupt(
                "meta.properties: missing cluster.id".to_string(),
            )),
        }
    }

    pub fn read(fs: &Fs, path: &Path) -> Result<MetaProperties, MetaError> {
        let size_bytes = fs.file_len(path)?;
        if size_bytes > MAX_PROPERTIES_BYTES {
            return Err(MetaError::Corrupt(format!(
                "meta.properties is {size_bytes} bytes, more than {MAX_PROPERTIES_BYTES}"
            )));
        }
        let bytes = fs.read(path)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| MetaError::Corrupt("meta.properties is not UTF-8".to_string()))?;
        MetaProperties::parse(&text)
    }
}

/// A random cluster id in Kafka's format: 16 random bytes, URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    base64_url_no_pad(uuid::Uuid::new_v4().as_bytes())
}

fn base64_url_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        for (slot, byte) in group.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        let symbols = chunk.len() + 1;
        for position in 0..symbols {
            let index = (bits >> (18 - 6 * position)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_url_no_pad(b""), "");
        assert_eq!(base64_url_no_pad(b"f"), "Zg");
        assert_eq!(base64_url_no_pad(b"fo"), "Zm8");
        assert_eq!(base64_url_no_pad(b"foo"), "Zm9v");
        assert_eq!(base64_url_no_pad(&[0xfb, 0xff]), "-_8");
        assert_eq!(new_cluster_id().len(), 22);
    }

    #[test]
    fn round_trip() {
        let properties = MetaProperties::generate();
        assert_eq!(
            MetaProperties::parse(&properties.to_text()).unwrap(),
            properties
        );
    }

    #[test]
    fn rejects_bad_files() {
        for text in [
            "",
            "version=2\ncluster.id=x",
            "version=1",
            "version=1\ncluster.id=",
            "junk",
        ] {
            assert!(
                matches!(MetaProperties::parse(text), Err(MetaError::Corrupt(_))),
                "{text:?}"
            );
        }
    }
}
