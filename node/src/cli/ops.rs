//! The operator verbs: `reload`, `peers clear`, `dht reprovide`, `dht cache clear`, `backup`
//! (each sends the operator token of `--token-file` or `BZZZ_OPERATOR_TOKEN_FILE` and prints the
//! node's answer, `--json` for the raw answer), and the offline `restore`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{BackupArgs, ClientError, OperatorArgs, Payload, RestoreArgs, api_error, operator_answer, print_json};

/// Prints a JSON array of strings as indented lines, or `none`.
fn print_list(title: &str, v: &Value) {
    let items: Vec<&str> = v.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if items.is_empty() {
        println!("{title}: none");
    } else {
        println!("{title}:");
        for i in items {
            println!("  {i}");
        }
    }
}

/// `bzzz reload`.
pub(super) async fn reload(a: &OperatorArgs) -> Result<(), ClientError> {
    let Some(v) = operator_answer(a, reqwest::Method::POST, "/api/config/reload", None).await? else {
        return Ok(());
    };
    println!("reloaded {}", v["source"].as_str().unwrap_or("?"));
    println!("operator token: {}", v["operator_token"].as_str().unwrap_or("?"));
    print_list("applied", &v["applied"]);
    print_list("needs a restart", &v["needs_restart"]);
    print_list("not applied", &v["not_applied"]);
    Ok(())
}

/// `bzzz peers clear`.
pub(super) async fn peers_clear(a: &OperatorArgs) -> Result<(), ClientError> {
    let Some(v) = operator_answer(a, reqwest::Method::POST, "/api/peers/clear", None).await? else {
        return Ok(());
    };
    println!(
        "forgot {} routing-table peers, disconnected {} peers ({} connections)",
        v["routing_table_peers_forgotten"], v["peers_disconnected"], v["connections_closed"]
    );
    println!("re-bootstrap: {}", v["rebootstrap"].as_str().unwrap_or("?"));
    Ok(())
}

/// `bzzz dht reprovide`.
pub(super) async fn dht_reprovide(a: &OperatorArgs) -> Result<(), ClientError> {
    let Some(v) = operator_answer(a, reqwest::Method::POST, "/api/dht/reprovide", None).await? else {
        return Ok(());
    };
    println!(
        "{} records ({} context): {} provider announcements, {} republished, {} failed to start",
        v["records"], v["context_records"], v["provider_announcements"], v["republished"], v["failed"]
    );
    let check = &v["replication_check"];
    match check["status"].as_str() {
        Some("ran") => {
            let r = &check["report"];
            println!(
                "replication check on the admin: {} records, average {:.2} live holders (R = {}), {} below R before repair, {} after, {} unavailable, {} copies made",
                r["records"],
                r["average_replicas"].as_f64().unwrap_or(0.0),
                r["replication_factor"],
                r["below_r_before"],
                r["below_r"],
                r["unavailable"],
                r["copies_made"]
            );
        }
        Some("skipped") => println!(
            "replication check: skipped: {}",
            check["reason"].as_str().unwrap_or("?")
        ),
        _ => {
            return Err(ClientError::Api {
                code: "BZZZ-REPLICATION-CHECK-FAILED".into(),
                message: format!(
                    "records re-provided, but the admin's replication check failed: {}",
                    check["error"].as_str().unwrap_or("?")
                ),
            });
        }
    }
    Ok(())
}

/// `bzzz dht cache clear`.
pub(super) async fn dht_cache_clear(a: &OperatorArgs) -> Result<(), ClientError> {
    let Some(v) = operator_answer(a, reqwest::Method::POST, "/api/dht/cache/clear", None).await? else {
        return Ok(());
    };
    println!(
        "removed: {} cached records, {} expired records, {} expired provider records, {} provider records of records no longer held, {} corrupt entries",
        v["cached_records_removed"],
        v["expired_records_removed"],
        v["expired_provider_records_removed"],
        v["orphan_provider_records_removed"],
        v["corrupt_entries_removed"]
    );
    println!(
        "kept: {} context records, {} records this node published, {} provider records",
        v["context_records_kept"], v["own_records_kept"], v["provider_records_kept"]
    );
    Ok(())
}

fn local(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClientError {
    let what = what.into();
    move |e| ClientError::Local {
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
pub(super) async fn backup(a: &BackupArgs) -> Result<(), ClientError> {
    let output = &a.output;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ClientError::Local {
            what: format!("cannot write {}", output.display()),
            reason: "--output must name a file".into(),
        })?;
    let token = super::read_token_file(a.operator.token_file.as_ref())?;
    let (url, mut resp) = super::send(
        &a.operator.client,
        reqwest::Method::POST,
        "/api/backup",
        Payload::Empty,
        token.as_deref(),
    )
    .await?;
    if resp.status().as_u16() != 200 {
        let (_, v) = super::read_json(&url, resp).await?;
        return Err(api_error(&v));
    }
    let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = async {
        let mut file = create_private(&partial).map_err(local(format!("cannot create {}", partial.display())))?;
        loop {
            let chunk = resp.chunk().await.map_err(|e| ClientError::Protocol {
                url: url.clone(),
                reason: format!("the backup stream broke off: {e}"),
            })?;
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
            .map_err(|e| ClientError::Local {
                what: "cannot check the backup".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| ClientError::Protocol {
                url: url.clone(),
                reason: format!("the backup received is incomplete or damaged ({e}); nothing was written"),
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
pub(super) async fn restore(a: &RestoreArgs) -> Result<(), ClientError> {
    let input = a.input.clone();
    let db_dir = a.data_dir.join("db");
    let force = a.force;
    let outcome = tokio::task::spawn_blocking(move || bzzz_storage::backup::restore_data_dir(&input, &db_dir, force))
        .await
        .map_err(|e| ClientError::Local {
            what: "restore".into(),
            reason: e.to_string(),
        })?
        .map_err(|e| ClientError::Local {
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
            super::format_time_ms(outcome.info.created_unix_ms),
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
