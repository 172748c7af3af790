//! The `bzzz` binary: see `bzzz --help`.

use std::process::ExitCode;

use bzzz_node::cli::{Cli, Command};
use bzzz_node::node::shutdown_signal;
use bzzz_node::{Node, logging};
use bzzz_storage::util::error_chain;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Dev(args) => {
                logging::init("warn", false);
                match bzzz_node::dev::run(args).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            other => bzzz_node::cli::run_client(other).await,
        }
    })
}

async fn run(args: bzzz_node::cli::RunArgs) -> ExitCode {
    let config = match args.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    logging::init(&config.log.level, config.log.format == "json");
    // Listen for SIGHUP before anything can send one: its default action ends the process.
    let mut reload = ReloadSignal::new();
    let describe = match &args.config {
        Some(p) => format!("config file {} (with BZZZ_* environment and flags)", p.display()),
        None => "built-in defaults (with BZZZ_* environment and flags; no config file)".to_string(),
    };
    let source = bzzz_node::ops::ConfigSource::new(describe, move || args.load_config());
    let node = match Node::start_with(config, source).await {
        Ok(n) => n,
        Err(e) => {
            let e = error_chain(&e);
            tracing::error!(error = %e, "node failed to start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break false,
                _ = node.join() => break true,
                _ = reload.recv() => {
                    tracing::info!("SIGHUP received, reloading the configuration");
                    // The reload logs its outcome and counts it in bzzz_config_reloads_total.
                    let _ = node.ops().reload().await;
                }
            }
        }
    };
    node.shutdown().await;
    if failed {
        eprintln!("error: a node task stopped unexpectedly; see the log");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `SIGHUP` (config reload) on Unix; never fires elsewhere.
struct ReloadSignal {
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl ReloadSignal {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGHUP; reload with `bzzz reload` instead");
                    None
                }
            };
            Self { hup }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Resolves at the next `SIGHUP`.
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(hup) = &mut self.hup
            && hup.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}
