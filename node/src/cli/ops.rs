//! The operator verbs: `reload`, `peers clear`, `dht reprovide`, `dht cache clear`, `backup`
//! (each sends the operator token of `--token-file` or `BZZZ_OPERATOR_TOKEN_FILE` and prints the
//! node's answer, `--json` for the answer as JSON), and the offline `restore`.

use std::path::{Path, PathBuf};

use bzzz_client::types::ReplicationCheck;

use super::print::{format_time_ms, print_json, print_list, printed_json};
use super::{BackupArgs, CliError, OperatorArgs, RestoreArgs};

/// `bzzz reload`.
pub(super) async fn reload(a: &OperatorArgs) -> Result<(), CliError> {
    let v = a.client()?.reload_config().await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!("reloaded {}", v.source);
    println!("operator token: {}", v.operator_token);
    print_list("applied", &v.applied);
    print_list("needs a restart", &v.needs_restart);
    print_list("not applied", &v.not_applied);
    Ok(())
}

/// `bzzz peers clear`.
pub(super) async fn peers_clear(a: &OperatorArgs) -> Result<(), CliError> {
    let v = a.client()?.clear_peers().await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!(
        "forgot {} routing-table peers, disconnected {} peers ({} connections)",
        v.routing_table_peers_forgotten, v.peers_disconnected, v.connections_closed
    );
    println!("re-bootstrap: {}", v.rebootstrap);
    Ok(())
}

/// `bzzz dht reprovide`: fails when the admin's replication check failed.
pub(super) async fn dht_reprovide(a: &OperatorArgs) -> Result<(), CliError> {
    let v = a.client()?.dht_reprovide().await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!(
        "{} records ({} context): {} provider announcements, {} republished, {} failed to start",
        v.records, v.context_records, v.provider_announcements, v.republished, v.failed
    );
    match &v.replication_check {
        ReplicationCheck::Ran { report: r } => println!(
            "replication check on the admin: {} records, average {:.2} live holders (R = {}), {} below R before repair, {} after, {} unavailable, {} copies made",
            r.records,
            r.average_replicas,
            r.replication_factor,
            r.below_r_before,
            r.below_r,
            r.unavailable,
            r.copies_made
        ),
        ReplicationCheck::Skipped { reason } => println!("replication check: skipped: {reason}"),
        ReplicationCheck::Failed { error } => {
            return Err(CliError::Failed {
                code: "BZZZ-REPLICATION-CHECK-FAILED".into(),
                message: format!("records re-provided, but the admin's replication check failed: {error}"),
            });
        }
    }
    Ok(())
}

/// `bzzz dht cache clear`.
pub(super) async fn dht_cache_clear(a: &OperatorArgs) -> Result<(), CliError> {
    let v = a.client()?.dht_cache_clear().await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!(
        "removed: {} cached records, {} expired records, {} expired provider records, {} provider records of records no longer held, {} corrupt entries",
        v.cached_records_removed,
        v.expired_records_removed,
        v.expired_provider_records_removed,
        v.orphan_provider_records_removed,
        v.corrupt_entries_removed
    );
    println!(
        "kept: {} context records, {} records this node published, {} provider records",
        v.context_records_kept, v.own_records_kept, v.provider_records_kept
    );
    Ok(())
}

fn local(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |e| CliError::Local {
        what,
        reason: e.to_string(),
    }
}

/// Creates `path` for writing, readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// `bzzz backup --output FILE`.
pub(super) async fn backup(a: &BackupArgs) -> Result<(), CliError> {
    let output = &a.output;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::Local {
            what: format!("cannot write {}", output.display()),
            reason: "--output must name a file".into(),
        })?;
    let mut stream = a.operator.client()?.backup().await?;
    let url = stream.url().to_owned();
    let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = async {
        let mut file = create_private(&partial).map_err(local(format!("cannot create {}", partial.display())))?;
        loop {
            let chunk = stream.chunk().await?;
            let Some(chunk) = chunk else { break };
            std::io::Write::write_all(&mut file, &chunk)
                .map_err(local(format!("cannot write {}", partial.display())))?;
        }
        file.sync_all()
            .map_err(local(format!("cannot sync {}", partial.display())))?;
        drop(file);
        let checked = partial.clone();
        let info = tokio::task::spawn_blocking(move || bzzz_storage::backup::verify_file(&checked))
            .await
            .map_err(|e| CliError::Local {
                what: "cannot check the backup".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| {
                CliError::Client(bzzz_client::ClientError::Protocol {
                    url: url.clone(),
                    reason: format!("the backup received is incomplete or damaged ({e}); nothing was written"),
                })
            })?;
        std::fs::rename(&partial, output)
            .map_err(local(format!("cannot rename the backup to {}", output.display())))?;
        // Make the rename durable; a failure here leaves a complete file, so it is not an error.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(info)
    }
    .await;
    let info = match result {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if a.operator.client.json {
        print_json(&serde_json::json!({"output": output, "backup": info}));
        return Ok(());
    }
    println!(
        "wrote {} ({} bytes, {} entries in {} trees, sha256 {}) from node {}",
        output.display(),
        info.bytes,
        info.entries,
        info.trees.len(),
        info.sha256,
        info.source
    );
    println!("not included (back them up separately, as secrets): the identity key and x25519.key");
    Ok(())
}

/// Warnings about the key files a restored data dir needs beside its database.
fn identity_warnings(data_dir: &Path, source: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let identity = data_dir.join(crate::identity::KEY_FILE);
    if identity.exists() {
        match crate::identity::load_or_create(data_dir, None) {
            Ok(key) if key.public().to_peer_id().to_string() != source => warnings.push(format!(
                "{} is the identity of node {}, but the backup is of node {source}: the restored Raft and DHT state belong to another node",
                identity.display(),
                key.public().to_peer_id()
            )),
            Ok(_) => {}
            Err(e) => warnings.push(format!("cannot read {}: {e}", identity.display())),
        }
    } else {
        warnings.push(format!(
            "{} is missing: restore node {source}'s identity key there (or set node.identity_key_file), or the node starts as a new peer",
            identity.display()
        ));
    }
    let x25519 = data_dir.join(crate::crypto::keyring::X25519_KEY_FILE);
    if !x25519.exists() {
        warnings.push(format!(
            "{} is missing: restore it too, or the node makes a new one and needs its role keys sealed again",
            x25519.display()
        ));
    }
    warnings
}

/// `bzzz restore --input FILE --data-dir DIR`.
pub(super) async fn restore(a: &RestoreArgs) -> Result<(), CliError> {
    let input = a.input.clone();
    let db_dir = a.data_dir.join("db");
    let force = a.force;
    let outcome = tokio::task::spawn_blocking(move || bzzz_storage::backup::restore_data_dir(&input, &db_dir, force))
        .await
        .map_err(|e| CliError::Local {
            what: "restore".into(),
            reason: e.to_string(),
        })?
        .map_err(|e| CliError::Local {
            what: format!("cannot restore {} into {}", a.input.display(), a.data_dir.display()),
            reason: e.to_string(),
        })?;
    let warnings = identity_warnings(&a.data_dir, &outcome.info.source);
    if a.json {
        print_json(&serde_json::json!({"restore": outcome, "warnings": warnings}));
    } else {
        println!(
            "restored {} entries in {} trees from node {} (taken {}) into {}",
            outcome.info.entries,
            outcome.info.trees.len(),
            outcome.info.source,
            format_time_ms(outcome.info.created_unix_ms),
            outcome.db_dir.display()
        );
        if let Some(old) = &outcome.replaced_kept_at {
            println!("the database that was there is kept at {}", old.display());
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
