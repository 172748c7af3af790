//! Config reload (`SIGHUP`, `POST /api/config/reload`, `bzzz reload`): re-read the config the
//! node started from, validate all of it, apply what can change live, report the rest.
//!
//! Applied live ([`crate::config::RELOADABLE_FIELDS`]):
//! - `log.level`: the log filter is swapped at once (unless `RUST_LOG` was set at start: it wins);
//! - `api.operator_token_file`: the token file is re-read on *every* reload, so rotating the
//!   secret behind an unchanged path takes effect too; the old token is refused from then on;
//! - `p2p.bootstrap_peers`: the join loop dials them from its next re-bootstrap on.
//!
//! Every other changed field is reported by name as needing a restart, and keeps its running
//! value until then (so a later reload reports it again). Token contents never reach a log line,
//! an error or an answer: only the file's path.

use std::sync::Arc;

use super::Inner;
use crate::auth::OperatorToken;
use crate::config::{Config, ConfigError, RELOADABLE_FIELDS};

type Loader = dyn Fn() -> Result<Config, ConfigError> + Send + Sync;

/// Where a node's configuration comes from, read again on every reload: for `bzzz run`, the
/// config file, the `BZZZ_*` environment and the command-line flags, in that order.
#[derive(Clone)]
pub struct ConfigSource {
    describe: String,
    load: Arc<Loader>,
}

impl ConfigSource {
    /// A source described as `describe` (named in errors and answers, e.g. "config file
    /// /app/config/config.yaml") that `load` reads.
    pub fn new(
        describe: impl Into<String>,
        load: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            describe: describe.into(),
            load: Arc::new(load),
        }
    }

    /// A configuration given in code (tests, embedders): a reload re-validates it and re-reads
    /// the operator token file, nothing else can change.
    pub fn fixed(config: Config) -> Self {
        Self::new("the configuration given at start", move || Ok(config.clone()))
    }

    /// What the source is, for messages.
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Why a reload was refused. The running configuration is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration could not be read, parsed or validated.
    #[error("{source_description}: {error}")]
    Config {
        /// Where it was read from.
        source_description: String,
        /// What is wrong (names the file or the field).
        error: ConfigError,
    },
    /// The operator token file named by the new configuration could not be used.
    #[error("cannot read operator token file {path} (api.operator_token_file): {reason}")]
    TokenFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why (never the file's content).
        reason: String,
    },
}

pub use bzzz_client::types::ReloadReport;

pub(crate) async fn reload(inner: &Inner) -> Result<ReloadReport, ReloadError> {
    let result = attempt(inner).await;
    inner.metrics.reload(result.is_ok());
    match &result {
        Ok(r) => tracing::info!(
            source = %r.source,
            applied = ?r.applied,
            needs_restart = ?r.needs_restart,
            not_applied = ?r.not_applied,
            operator_token = %r.operator_token,
            "configuration reloaded"
        ),
        Err(e) => tracing::warn!(error = %e, "configuration reload refused; the running configuration stays"),
    }
    result
}

async fn attempt(inner: &Inner) -> Result<ReloadReport, ReloadError> {
    let mut running = inner.running.lock().await;
    let describe = inner.source.describe().to_string();
    let config_error = |error| ReloadError::Config {
        source_description: describe.clone(),
        error,
    };
    // Everything is read and checked before anything is applied.
    let load = inner.source.load.clone();
    let new = tokio::task::spawn_blocking(move || load())
        .await
        .map_err(|e| {
            config_error(ConfigError::Invalid {
                field: "<config>".into(),
                problem: format!("the reading task failed: {e}"),
            })
        })?
        .map_err(config_error)?;
    let resolved = new.validate().map_err(config_error)?;
    let token = match &new.api.operator_token_file {
        None => None,
        Some(path) => Some(OperatorToken::read_file(path).map_err(|reason| ReloadError::TokenFile {
            path: path.clone(),
            reason,
        })?),
    };

    let changed = running.changed_fields(&new);
    let mut report = ReloadReport {
        source: describe,
        applied: Vec::new(),
        needs_restart: Vec::new(),
        not_applied: Vec::new(),
        operator_token: match &new.api.operator_token_file {
            Some(p) => format!("re-read from {}", p.display()),
            None => "none configured".into(),
        },
    };
    // The token, always: rotation behind an unchanged path counts.
    inner.auth.replace(token);
    running.api.operator_token_file = new.api.operator_token_file.clone();
    for field in changed {
        let live = RELOADABLE_FIELDS
            .iter()
            .find(|f| field == **f || field.starts_with(&format!("{f}.")));
        match live.copied() {
            Some("api.operator_token_file") => report.applied.push(field),
            Some("log.level") => match crate::logging::set_level(&new.log.level) {
                Ok(()) => {
                    running.log.level = new.log.level.clone();
                    report.applied.push(field);
                }
                Err(e) => report.not_applied.push(format!("{field}: {e}")),
            },
            Some("p2p.bootstrap_peers") => {
                let peers: Vec<_> = resolved
                    .bootstrap
                    .iter()
                    .filter(|p| p.peer_id() != Some(inner.client.local_peer_id()))
                    .cloned()
                    .collect();
                inner.join_targets.send_modify(|t| t.peers = peers);
                running.p2p.bootstrap_peers = new.p2p.bootstrap_peers.clone();
                report.applied.push(field);
            }
            _ => report.needs_restart.push(field),
        }
    }
    Ok(report)
}
