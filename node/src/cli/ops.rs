//! The operator verbs: `reload`, `peers clear`, `dht reprovide`, `dht cache clear`. Each sends the operator token of `--token-file` (or
//! `BZZZ_OPERATOR_TOKEN_FILE`) and prints the node's answer (`--json` for the raw answer).

use serde_json::Value;

use super::{ClientError, OperatorArgs, operator_answer};

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
