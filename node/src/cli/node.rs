//! The node verbs: `status`, `peers`, `health`, `election`, `trigger-election`,
//! `test-p2p-message`, `test-dht-operations`.

use std::process::ExitCode;

use bzzz_client::types::{DhtTestRequest, HealthReport, HealthStatus, P2pTestRequest};
use bzzz_client::{Body, Method};

use super::print::{print_json, printed_json};
use super::{CliError, ClientArgs, FailOn, HealthArgs, TestDhtArgs, TestP2pArgs};
use crate::config::Config;

/// An optional number as the node's JSON writes it (`null` when absent).
fn number(n: Option<u64>) -> String {
    n.map_or_else(|| "null".into(), |n| n.to_string())
}

/// A list of node ids as the node's JSON writes it (`[1,2,3]`).
fn ids(v: &[u64]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `bzzz status`.
pub(super) async fn status(a: &ClientArgs) -> Result<(), CliError> {
    let v = a.client()?.status().await?;
    if printed_json(a.json, &v) {
        return Ok(());
    }
    println!("peer id:    {}", v.peer_id);
    println!("agent:      {} (role {})", v.agent_id, v.role);
    println!("mode:       {}", v.mode);
    println!("version:    {}", v.version);
    println!("health:     {} (score {:.2})", v.health.status, v.health.score);
    println!("peers:      {}", v.peers);
    println!("routing:    {} peers in routing table", v.routing_table_size);
    println!("bootstrap:  {}", v.bootstrap.state);
    println!(
        "admin:      {} (term {}, this node {})",
        v.election.admin.as_deref().unwrap_or("none known"),
        v.election.term,
        v.election.state
    );
    println!("uptime:     {} s", v.uptime_seconds);
    for addr in &v.listen_addrs {
        println!("listening:  {addr}");
    }
    Ok(())
}

/// `bzzz peers`.
pub(super) async fn peers(a: &ClientArgs) -> Result<(), CliError> {
    let v = a.client()?.peers().await?;
    if printed_json(a.json, &v) {
        return Ok(());
    }
    println!("{} connected peers", v.count);
    for p in &v.peers {
        let latency = p.latency_ms.map(|l| format!("{l:.2} ms")).unwrap_or_else(|| "-".into());
        let addr = p.addresses.first().map_or("-", String::as_str);
        println!("  {}  latency {latency:>10}  {addr}", p.peer_id);
    }
    Ok(())
}

fn local_health_url(a: &HealthArgs) -> String {
    let mut port = 8081;
    let config = a.config.as_ref().and_then(|p| Config::from_file(p).ok());
    let listen = std::env::var("BZZZ_HEALTH_LISTEN")
        .ok()
        .or_else(|| config.map(|c| c.health.listen));
    if let Some(l) = listen
        && let Ok(addr) = l.parse::<std::net::SocketAddr>()
    {
        port = addr.port();
    }
    format!("http://127.0.0.1:{port}")
}

/// `GET /health` with its HTTP status: an unhealthy node answers 503 with its report.
async fn health_report(a: &ClientArgs) -> Result<(u16, HealthReport), CliError> {
    let r = a.client()?.raw(Method::GET, "/health", &[], Body::Empty).await?;
    if r.status != 200 && r.status != 503 {
        return Err(r.error().into());
    }
    Ok((r.status, r.json()?))
}

/// `bzzz health`: the exit code says whether the node passes `--fail-on`.
pub(super) async fn health(mut a: HealthArgs) -> ExitCode {
    if a.local {
        a.client.api = local_health_url(&a);
    }
    let (code, v) = match health_report(&a.client).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if a.client.json {
        print_json(&v);
    } else {
        println!("{} (score {:.2}, http {code})", v.status, v.score);
        for (name, s) in &v.components {
            println!("  {name:<12} {s}");
        }
    }
    let passes = match a.fail_on {
        FailOn::Degraded => v.status == HealthStatus::Healthy,
        FailOn::Unhealthy => matches!(v.status, HealthStatus::Healthy | HealthStatus::Degraded),
    };
    if passes { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `bzzz test-p2p-message`: fails unless some peer acknowledged and none is missing.
pub(super) async fn test_p2p(a: &TestP2pArgs) -> Result<(), CliError> {
    let req = P2pTestRequest {
        timeout_ms: Some(a.timeout_ms),
    };
    let v = a.client.client()?.test_p2p_message(&req).await?;
    if !printed_json(a.client.json, &v) {
        println!(
            "probe {} received by {} peers in {} ms",
            v.probe_id,
            v.receivers.len(),
            v.waited_ms
        );
        for r in &v.receivers {
            println!("  {}  {:.2} ms", r.peer_id, r.round_trip_ms);
        }
        for m in &v.missing {
            println!("  {m}  MISSING");
        }
    }
    let (received, missing) = (v.receivers.len(), v.missing.len());
    if received == 0 || missing > 0 {
        return Err(CliError::Failed {
            code: "BZZZ-TEST-FAILED".into(),
            message: format!("{received} peers acknowledged, {missing} missing"),
        });
    }
    Ok(())
}

/// `bzzz test-dht-operations`: fails when the encrypted round trip failed.
pub(super) async fn test_dht(a: &TestDhtArgs) -> Result<(), CliError> {
    let req = DhtTestRequest {
        size_bytes: Some(a.size_bytes),
    };
    let v = a.client.client()?.test_dht_operations(&req).await?;
    if !printed_json(a.client.json, &v) {
        println!(
            "put {:.2} ms (replicated: {}), get {:.2} ms, verified: {}  [{} bytes, key {}]",
            v.put_ms, v.replicated, v.get_ms, v.verified, v.size_bytes, v.key
        );
        if let Some(e) = &v.context_error {
            println!("encrypted round trip: FAILED: {e}");
        } else if let Some(why) = &v.context_skipped {
            println!("encrypted round trip: skipped: {why}");
        } else if let Some(c) = &v.context {
            println!(
                "encrypted round trip: put {:.2} ms, get {:.2} ms, verified: {}  [{}, version {}]",
                c.put_ms, c.get_ms, c.verified, c.address, c.version
            );
        }
    }
    match v.encrypted_round_trip_failure() {
        Some(message) => Err(CliError::Failed {
            code: "BZZZ-TEST-FAILED".into(),
            message,
        }),
        None => Ok(()),
    }
}

/// `bzzz trigger-election`.
pub(super) async fn trigger_election(a: &ClientArgs) -> Result<(), CliError> {
    let v = a.client()?.trigger_election().await?;
    if !printed_json(a.json, &v) {
        println!("election triggered on node {}", v.node_id);
    }
    Ok(())
}

/// `bzzz election`.
pub(super) async fn election(a: &ClientArgs) -> Result<(), CliError> {
    let v = a.client()?.election_status().await?;
    if printed_json(a.json, &v) {
        return Ok(());
    }
    println!("admin:    {}", v.admin.as_deref().unwrap_or("none known"));
    println!("term:     {}", v.term);
    println!("is admin: {}", v.is_admin);
    println!("state:    {}", v.state);
    println!("heard:    {} ms ago", number(v.last_heartbeat_ms_ago));
    println!("voters:   {}", ids(&v.voters));
    println!("learners: {}", ids(&v.learners));
    Ok(())
}
