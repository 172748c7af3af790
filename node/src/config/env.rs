//! `BZZZ_*` environment variables that override config fields, as one table: each entry names
//! the variable, the field it sets (as documented) and how it sets it.

use std::path::PathBuf;

use super::{Config, ConfigError, invalid};

/// Sets one field from a variable's value.
type Apply = fn(&mut Config, String) -> Result<(), ConfigError>;

/// One override: the variable, the field it sets, and how.
struct Override {
    /// The variable, e.g. `BZZZ_API_LISTEN`.
    var: &'static str,
    /// The field it sets, as a YAML path with a note on the format if any.
    field: &'static str,
    /// Sets the field from the value.
    apply: Apply,
}

/// Every override, applied in this order.
const OVERRIDES: [Override; 23] = [
    Override {
        var: "BZZZ_AGENT_ID",
        field: "agent.id",
        apply: |c, v| set(&mut c.agent.id, v),
    },
    Override {
        var: "BZZZ_AGENT_ROLE",
        field: "agent.role",
        apply: |c, v| set(&mut c.agent.role, v),
    },
    Override {
        var: "BZZZ_DATA_DIR",
        field: "node.data_dir",
        apply: |c, v| set(&mut c.node.data_dir, PathBuf::from(v)),
    },
    Override {
        var: "BZZZ_MODE",
        field: "node.mode",
        apply: |c, v| {
            c.node.mode = v
                .parse()
                .map_err(|e: bzzz_bootstrap::ParseModeError| invalid("BZZZ_MODE", e.to_string()))?;
            Ok(())
        },
    },
    Override {
        var: "BZZZ_IDENTITY_KEY_FILE",
        field: "node.identity_key_file",
        apply: |c, v| set(&mut c.node.identity_key_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_SWARM_KEY_FILE",
        field: "p2p.swarm_key_file",
        apply: |c, v| set(&mut c.p2p.swarm_key_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_INSECURE_OPEN_MESH",
        field: "p2p.insecure_open_mesh (true or false)",
        apply: |c, v| {
            c.p2p.insecure_open_mesh = match v.trim() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                _ => return Err(invalid("BZZZ_INSECURE_OPEN_MESH", "must be true or false")),
            };
            Ok(())
        },
    },
    Override {
        var: "BZZZ_CA_CERT_FILE",
        field: "admission.ca_cert_file",
        apply: |c, v| set(&mut c.admission.ca_cert_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_CERT_FILE",
        field: "admission.cert_file",
        apply: |c, v| set(&mut c.admission.cert_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_CA_FINGERPRINT",
        field: "admission.ca_fingerprint",
        apply: |c, v| {
            c.admission.ca_fingerprint = Some(v.trim().to_owned()).filter(|s| !s.is_empty());
            Ok(())
        },
    },
    Override {
        var: "BZZZ_JOIN_TOKEN_FILE",
        field: "admission.join_token_file",
        apply: |c, v| set(&mut c.admission.join_token_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_JOIN_TIMEOUT_MS",
        field: "admission.join_timeout_ms",
        apply: |c, v| {
            c.admission.join_timeout_ms = v
                .trim()
                .parse()
                .map_err(|_| invalid("BZZZ_JOIN_TIMEOUT_MS", "must be a number of milliseconds"))?;
            Ok(())
        },
    },
    Override {
        var: "BZZZ_SEED_JOIN_TOKEN_FILE",
        field: "admission.seed_join_token_file",
        apply: |c, v| set(&mut c.admission.seed_join_token_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_ISSUER_KEY_FILE",
        field: "admission.issuer_key_file",
        apply: |c, v| set(&mut c.admission.issuer_key_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_ISSUER_CERT_FILE",
        field: "admission.issuer_cert_file",
        apply: |c, v| set(&mut c.admission.issuer_cert_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_P2P_LISTEN",
        field: "p2p.listen (comma-separated)",
        apply: |c, v| set(&mut c.p2p.listen, split_list(&v)),
    },
    Override {
        var: "BZZZ_EXTERNAL_ADDRESSES",
        field: "p2p.external_addresses (comma-separated)",
        apply: |c, v| set(&mut c.p2p.external_addresses, split_list(&v)),
    },
    Override {
        var: "BZZZ_BOOTSTRAP_PEERS",
        field: "p2p.bootstrap_peers (comma-separated)",
        apply: |c, v| set(&mut c.p2p.bootstrap_peers, split_list(&v)),
    },
    Override {
        var: "BZZZ_API_LISTEN",
        field: "api.listen",
        apply: |c, v| set(&mut c.api.listen, v),
    },
    Override {
        var: "BZZZ_OPERATOR_TOKEN_FILE",
        field: "api.operator_token_file",
        apply: |c, v| set(&mut c.api.operator_token_file, optional_path(v)),
    },
    Override {
        var: "BZZZ_HEALTH_LISTEN",
        field: "health.listen",
        apply: |c, v| set(&mut c.health.listen, v),
    },
    Override {
        var: "BZZZ_LOG_LEVEL",
        field: "log.level",
        apply: |c, v| set(&mut c.log.level, v),
    },
    Override {
        var: "BZZZ_LOG_FORMAT",
        field: "log.format",
        apply: |c, v| set(&mut c.log.format, v),
    },
];

/// The environment variables that override config fields, with the field they set.
pub const ENV_VARS: &[(&str, &str)] = &env_vars();

/// [`OVERRIDES`] as (variable, field) pairs.
const fn env_vars() -> [(&'static str, &'static str); OVERRIDES.len()] {
    let mut out = [("", ""); OVERRIDES.len()];
    let mut i = 0;
    while i < OVERRIDES.len() {
        out[i] = (OVERRIDES[i].var, OVERRIDES[i].field);
        i += 1;
    }
    out
}

/// Stores `value` in `field`; never fails.
fn set<T>(field: &mut T, value: T) -> Result<(), ConfigError> {
    *field = value;
    Ok(())
}

/// An empty value unsets an optional path.
fn optional_path(v: String) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

/// A comma-separated list, items trimmed, empty items dropped.
fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl Config {
    /// Applies `BZZZ_*` variables from `lookup` (pass `|k| std::env::var(k).ok()`).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for o in &OVERRIDES {
            if let Some(v) = lookup(o.var) {
                (o.apply)(self, v)?;
            }
        }
        Ok(())
    }
}
