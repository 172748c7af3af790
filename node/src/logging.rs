//! Log setup: `tracing` with an env filter (`RUST_LOG` wins over `log.level`), text or JSON.
//!
//! The filter sits behind a `tracing-subscriber` reload handle, so a config reload can change
//! `log.level` without a restart ([`set_level`]).

use std::sync::OnceLock;

use tokio_util::task::TaskTracker;
use tracing::Instrument;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// The installed filter's reload handle, and whether `RUST_LOG` chose the filter.
struct Installed {
    handle: reload::Handle<EnvFilter, Registry>,
    from_rust_log: bool,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Why [`set_level`] did not change the level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// `RUST_LOG` was set when the node started; it wins over `log.level`.
    #[error("RUST_LOG is set and wins over log.level")]
    RustLogWins,
    /// This process's logger was not installed by [`init`] (e.g. an embedding program's own).
    #[error("this process's logger cannot be reloaded (it was not installed by bzzz)")]
    NotReloadable,
    /// The level is not a valid filter.
    #[error("`{0}` is not a valid tracing filter")]
    Invalid(String),
    /// The subscriber is gone (the process is exiting).
    #[error("the logger is gone")]
    Gone,
}

/// The filter for a `log.level` value: openraft logs routine protocol steps at info and warn, so
/// unless the filter names it, only its errors are shown.
fn filter_for(level: &str) -> Result<EnvFilter, LevelError> {
    let level = if level.contains("openraft") {
        level.to_string()
    } else {
        format!("{level},openraft=error")
    };
    EnvFilter::try_new(&level).map_err(|_| LevelError::Invalid(level))
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(level: &str, json: bool) {
    let (filter, from_rust_log) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, true),
        Err(_) => (filter_for(level).unwrap_or_else(|_| EnvFilter::new("info")), false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    // Colour codes only on a terminal: `docker logs`, journald and files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = (!json).then(|| fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let json = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    if tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init()
        .is_ok()
    {
        let _ = INSTALLED.set(Installed { handle, from_rust_log });
    }
}

/// Replaces the log filter with the one for `level` (a `log.level` value), effective at once.
pub fn set_level(level: &str) -> Result<(), LevelError> {
    let installed = INSTALLED.get().ok_or(LevelError::NotReloadable)?;
    if installed.from_rust_log {
        return Err(LevelError::RustLogWins);
    }
    let filter = filter_for(level)?;
    installed.handle.reload(filter).map_err(|_| LevelError::Gone)
}

/// Spawns `task` on `tracker` inside a span `task{task = name}` whose parent is the current span:
/// the node's `bzzz{peer}` span where the node starts, or the spawning task's own span. So every
/// log line of every task names its node and its task, even with many nodes in one process.
pub fn spawn<F>(tracker: &TaskTracker, name: &'static str, task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tracker.spawn(task.instrument(tracing::info_span!("task", task = name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad level is refused with the filter named; openraft is quietened unless named.
    #[test]
    fn filters_are_built_from_levels() {
        assert!(filter_for("debug").is_ok());
        assert!(filter_for("bzzz_node=debug,openraft=info").is_ok());
        assert!(matches!(filter_for("bzzz=loud"), Err(LevelError::Invalid(_))));
    }
}
