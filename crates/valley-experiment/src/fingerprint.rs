//! Fingerprints of what a cell ran: the hash of its resolved config (a finished cell with the same
//! hash is skipped) and the hash of its training order.

use sha2::{Digest, Sha256};

/// The hash that tells whether a finished cell still matches its configuration: SHA-256 of the
/// cell's resolved config without its `tracking` section (where results are sent does not change
/// the results), first 16 hex digits.
pub fn config_hash(config: &serde_json::Value) -> String {
    let mut config = config.clone();
    if let Some(map) = config.as_object_mut() {
        map.remove("tracking");
    }
    let digest = Sha256::digest(serde_json::to_vec(&config).unwrap_or_default());
    hex(&digest[..8])
}

/// SHA-256 of the ids in training order, one per line: the order hash of a training file.
pub fn order_hash(ids: &[&str]) -> String {
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_hash_ignores_the_tracking_section_only() {
        let a = serde_json::json!({"cell": {"seed": 1}, "tracking": {"uri": "http://a"}});
        let b = serde_json::json!({"cell": {"seed": 1}, "tracking": {"uri": "http://b"}});
        let c = serde_json::json!({"cell": {"seed": 2}, "tracking": {"uri": "http://a"}});
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&a), config_hash(&c));
        assert_eq!(config_hash(&a).len(), 16);
    }

    #[test]
    fn order_hash_is_sha256_of_the_ids_one_per_line() {
        // printf 'a\nb\n' | sha256sum
        assert_eq!(
            order_hash(&["a", "b"]),
            "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2"
        );
        assert_eq!(order_hash(&["a", "b"]).len(), 64);
        assert_ne!(order_hash(&["a", "b"]), order_hash(&["b", "a"]));
    }
}
