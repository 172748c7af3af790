//! Log setup: `tracing` with an env filter (`RUST_LOG` wins over `log.level`), text or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
/// openraft logs routine protocol steps at info and warn; unless the filter names it, only its
/// errors are shown.
pub fn init(level: &str, json: bool) {
    let level = if level.contains("openraft") {
        level.to_string()
    } else {
        format!("{level},openraft=error")
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: `docker logs`, journald and files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
