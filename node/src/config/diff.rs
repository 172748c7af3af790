//! What a config reload compares: the fields that differ between the running and the new
//! configuration, and which of them a running node applies.

use super::Config;

/// The fields a running node applies on a config reload (`SIGHUP`, `POST /api/config/reload`);
/// a change to any other field is reported as needing a restart.
pub const RELOADABLE_FIELDS: [&str; 3] = ["log.level", "api.operator_token_file", "p2p.bootstrap_peers"];

impl Config {
    /// The fields (YAML paths such as `dht.max_records` or `roles.policy.dev`) whose values differ
    /// between `self` and `other`. Lists compare whole; maps and sections field by field.
    pub fn changed_fields(&self, other: &Config) -> Vec<String> {
        let mut out = Vec::new();
        match (serde_json::to_value(self), serde_json::to_value(other)) {
            (Ok(a), Ok(b)) => diff_values("", &a, &b, &mut out),
            // Unreachable for this plain data type; never hide a change if it happens.
            _ => out.push("<config>".into()),
        }
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_values(&sub, va, vb, out),
                    _ => out.push(sub),
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}
