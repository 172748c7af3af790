//! The HTTP API contract, checked in one place: every endpoint of a live 3-node mesh answers a
//! body that parses into its `bzzz_client::types` type and serialises back to exactly the JSON
//! the node sent (no field missing from the type, none extra, every value encoded the same), and
//! every `ApiClient` method reaches its endpoint and returns that type.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bzzz_client::types::*;
use bzzz_client::{ApiClient, Body, ClientError, Method};
use bzzz_tests::{TestCluster, bounded, exclusive, wait_for};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const TOKEN: &str = "contract-test-operator-token";

/// Sends a request with `client`, checks the status is one of `ok`, parses the body as `T` and
/// checks that `T` serialises back to the very JSON the node sent.
async fn contract<T: DeserializeOwned + Serialize>(
    client: &ApiClient,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Body<'_>,
    ok: &[u16],
) -> Result<T> {
    let r = client.raw(method.clone(), path, query, body).await?;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    ensure!(ok.contains(&r.status), "{method} {path}: http {} {text}", r.status);
    let raw: Value = serde_json::from_slice(&r.body).with_context(|| format!("{method} {path}: not JSON: {text}"))?;
    let typed: T = serde_json::from_value(raw.clone()).with_context(|| {
        format!(
            "{method} {path}: does not parse as {}: {text}",
            std::any::type_name::<T>()
        )
    })?;
    let back = serde_json::to_value(&typed)?;
    ensure!(
        back == raw,
        "{method} {path}: {} does not serialise back to what the node sent\nnode: {raw}\ntype: {back}",
        std::any::type_name::<T>()
    );
    Ok(typed)
}

/// Every response type of the API round-trips through the server and `ApiClient`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_response_type_round_trips_through_server_and_client() -> Result<()> {
    let _g = exclusive().await;
    bounded(async {
        let token_dir = tempfile::tempdir()?;
        let token_file = token_dir.path().join("operator.token");
        std::fs::write(&token_file, TOKEN)?;
        let mut cluster = TestCluster::start_with(3, |_, c| {
            c.election.eligible = true;
            c.election.bootstrap_expect = 3;
            c.api.operator_token_file = Some(token_file.clone());
        })
        .await?;
        cluster.wait_context_ready(Duration::from_secs(60)).await?;
        let n = cluster.node(0);
        let api = format!("http://{}", n.api_addr().context("node 0 has an API listener")?);
        let health = format!("http://{}", n.health_addr());
        let anonymous = ApiClient::new(&api)?;
        let c = ApiClient::new(&api)?.with_token(TOKEN);
        let h = ApiClient::new(&health)?;
        wait_for("node 0 healthy", Duration::from_secs(30), || async {
            n.check_health_now().await;
            n.health().summary().status == bzzz_node::health::Status::Healthy
        })
        .await?;

        // The health listener.
        let report: HealthReport = contract(&h, Method::GET, "/health", &[], Body::Empty, &[200]).await?;
        ensure!(report.peer_id == n.peer_id().to_string());
        ensure!(h.health().await?.status == HealthStatus::Healthy);
        let _: Liveness = contract(&h, Method::GET, "/health/live", &[], Body::Empty, &[200]).await?;
        ensure!(h.live().await?.status == "alive");
        let _: Readiness = contract(&h, Method::GET, "/health/ready", &[], Body::Empty, &[200]).await?;
        ensure!(h.ready().await?.ready);
        let checks: HealthChecks = contract(&h, Method::GET, "/health/checks", &[], Body::Empty, &[200]).await?;
        for name in [
            "p2p-connectivity",
            "pubsub-health",
            "dht-health",
            "storage-health",
            "election-health",
            "replication-health",
        ] {
            ensure!(
                checks.checks.contains_key(name),
                "/health/checks lacks {name}: {checks:?}"
            );
        }
        ensure!(h.health_checks().await?.checks.len() == checks.checks.len());
        let status: NodeStatus = contract(&h, Method::GET, "/api/status", &[], Body::Empty, &[200]).await?;
        ensure!(status.mode == NodeMode::Agent && status.agent_id == "test-agent-0");
        ensure!(h.status().await?.peer_id == status.peer_id);
        let peers: PeerList = contract(&h, Method::GET, "/api/peers", &[], Body::Empty, &[200]).await?;
        ensure!(peers.count == 2 && h.peers().await?.count == 2, "{peers:?}");
        let election: ElectionStatus =
            contract(&h, Method::GET, "/api/election/status", &[], Body::Empty, &[200]).await?;
        ensure!(election.admin.is_some() && h.election_status().await?.voters.len() == 3);
        ensure!(h.metrics_text().await?.contains("bzzz_system_health_score"));

        // The self-tests and raw records.
        let probe: ProbeReport = contract(
            &c,
            Method::POST,
            "/api/test/p2p-message",
            &[],
            Body::Json(serde_json::json!({"timeout_ms": 5000})),
            &[200],
        )
        .await?;
        ensure!(probe.receivers.len() == 2, "{probe:?}");
        ensure!(c.test_p2p_message(&P2pTestRequest::default()).await?.missing.is_empty());
        let dht: DhtTestReport =
            contract(&c, Method::POST, "/api/test/dht-operations", &[], Body::Empty, &[200]).await?;
        ensure!(dht.context.as_ref().is_some_and(|r| r.verified), "{dht:?}");
        let dht = c.test_dht_operations(&DhtTestRequest { size_bytes: Some(64) }).await?;
        ensure!(dht.size_bytes == 64 && dht.encrypted_round_trip_failure().is_none());
        let put: RecordPut = contract(
            &c,
            Method::PUT,
            "/api/dht/records/contract-a",
            &[],
            Body::Bytes(b"one"),
            &[200],
        )
        .await?;
        ensure!(put.key == "contract-a" && put.size_bytes == 3);
        ensure!(c.put_dht_record("contract b", b"two").await?.key == "contract b");
        ensure!(c.dht_record("contract b").await? == b"two");

        // Context.
        let address = "ucxl://contract:agent@api:contract/notes.md";
        let written: PutResult = contract(
            &c,
            Method::PUT,
            "/ucxi/v1/put",
            &[("address", address)],
            Body::Bytes(b"first"),
            &[201],
        )
        .await?;
        let second = c.context_put(address, b"second".to_vec()).await?;
        ensure!(second.version == written.version + 1, "{written:?} then {second:?}");
        let read = c.context_get(address).await?;
        ensure!(read.content == b"second" && read.version == second.version && read.latest == second.version);
        let history: History = contract(
            &c,
            Method::GET,
            "/ucxi/v1/navigate",
            &[("address", address)],
            Body::Empty,
            &[200],
        )
        .await?;
        ensure!(history.total == 2 && c.context_history(address, Some(1)).await?.versions.len() == 1);
        let pattern = "ucxl://any:any@api:any";
        let found: Discovered = contract(
            &c,
            Method::GET,
            "/ucxi/v1/discover",
            &[("pattern", pattern)],
            Body::Empty,
            &[200],
        )
        .await?;
        ensure!(found.addresses.len() == 1 && c.context_discover(pattern, None).await?.addresses.len() == 1);
        let cstatus: ContextStatus = contract(&c, Method::GET, "/ucxi/v1/status", &[], Body::Empty, &[200]).await?;
        ensure!(cstatus.roles.contains(&"agent".to_string()) && c.context_status().await?.replication_factor > 0);
        let deleted: PutResult = contract(
            &c,
            Method::DELETE,
            "/ucxi/v1/delete",
            &[("address", "ucxl://contract:agent@api:contract/gone.md")],
            Body::Empty,
            &[200],
        )
        .await?;
        ensure!(deleted.tombstone);

        // Roles.
        let roles: RolesView = contract(&c, Method::GET, "/api/roles", &[], Body::Empty, &[200]).await?;
        ensure!(roles.has_policy && c.roles().await?.grants.len() == roles.grants.len());
        let peer = cluster.node(1).peer_id().to_string();
        let granted: RoleGranted = contract(
            &c,
            Method::POST,
            "/api/roles/agent/grant",
            &[],
            Body::Json(serde_json::json!({"peer_id": peer})),
            &[200],
        )
        .await?;
        ensure!(granted.granted && c.grant_role("agent", &peer).await?.peer_id == peer);

        // The error envelope, and the operator check on the typed client.
        let missing: ErrorEnvelope = contract(&c, Method::GET, "/no/such/endpoint", &[], Body::Empty, &[404]).await?;
        ensure!(missing.error.code == "BZZZ-404-NOT_FOUND");
        let refused: ErrorEnvelope =
            contract(&anonymous, Method::POST, "/api/config/reload", &[], Body::Empty, &[401]).await?;
        ensure!(refused.error.code.starts_with("BZZZ-401"));
        match anonymous.reload_config().await {
            Err(ClientError::Api { status: 401, .. }) => {}
            other => anyhow::bail!("an operator action without the token must be refused, got {other:?}"),
        }
        let unknown: ErrorEnvelope = contract(
            &c,
            Method::GET,
            "/ucxi/v1/get",
            &[("address", "ucxl://contract:agent@api:contract/never.md")],
            Body::Empty,
            &[404],
        )
        .await?;
        ensure!(unknown.error.code.starts_with("UCXL-404"));

        // The operator actions.
        let reload: ReloadReport = contract(&c, Method::POST, "/api/config/reload", &[], Body::Empty, &[200]).await?;
        ensure!(reload.operator_token.contains("re-read") && c.reload_config().await?.applied.is_empty());
        let reprovide: ReprovideReport =
            contract(&c, Method::POST, "/api/dht/reprovide", &[], Body::Empty, &[200]).await?;
        ensure!(reprovide.records > 0 && c.dht_reprovide().await?.context_records > 0);
        let cleared: CacheClearReport =
            contract(&c, Method::POST, "/api/dht/cache/clear", &[], Body::Empty, &[200]).await?;
        ensure!(cleared.context_records_kept > 0);
        ensure!(c.dht_cache_clear().await?.context_records_kept > 0);
        let mut backup = c.backup().await?;
        ensure!(backup.format() == Some("1"));
        let mut bytes = Vec::new();
        while let Some(chunk) = backup.chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        let info = bzzz_storage::backup::verify(std::io::Cursor::new(bytes))?;
        ensure!(info.source == n.peer_id().to_string() && info.entries > 0);

        // Last, as they change the mesh: peers clear and an election.
        let peers_cleared: PeersCleared =
            contract(&c, Method::POST, "/api/peers/clear", &[], Body::Empty, &[200]).await?;
        ensure!(peers_cleared.peers_disconnected == 2, "{peers_cleared:?}");
        cluster.wait_connected(2, Duration::from_secs(30)).await?;
        let voter = ApiClient::new(&format!("http://{}", cluster.node(1).api_addr().context("api")?))?;
        let triggered: ElectionTriggered =
            contract(&voter, Method::POST, "/api/election/trigger", &[], Body::Empty, &[200]).await?;
        ensure!(triggered.triggered && triggered.node_id == cluster.node(1).consensus().node_id());

        cluster.shutdown().await;
        Ok(())
    })
    .await
}
