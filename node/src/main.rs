//! The `bzzz` binary: see `bzzz --help`.

use std::process::ExitCode;

use bzzz_node::cli::{Cli, Command};
use bzzz_node::node::shutdown_signal;
use bzzz_node::{Node, logging};
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
    let node = match Node::start(config).await {
        Ok(n) => n,
        Err(e) => {
            let e = error_chain(&e);
            tracing::error!(error = %e, "node failed to start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = tokio::select! {
        _ = shutdown_signal() => false,
        _ = node.join() => true,
    };
    node.shutdown().await;
    if failed {
        eprintln!("error: a node task stopped unexpectedly; see the log");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The error and every cause under it, `outer: inner: ...`, so that e.g. a sled lock held by
/// another process is named, not only "cannot open sled database".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
