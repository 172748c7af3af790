//! HTTP API: health endpoints, metrics (checked with `promtool` when installed), status, peers,
//! the test endpoints and the error envelope on bad input.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bzzz_tests::{TestCluster, bounded, wait_for};
use serde_json::Value;

/// Health, checks, status and peers answer with the documented fields on a 3-node mesh, and the
/// active checks really ran (latency and last success set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_peers_endpoints() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(3).await?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        let n = cluster.node(1);
        let api = format!("http://{}", n.api_addr().context("agent has an api")?);
        wait_for("node 1 healthy", Duration::from_secs(20), || async {
            n.check_health_now().await;
            n.health().summary().status == bzzz_node::health::Status::Healthy
        })
        .await?;

        let h: Value = reqwest::get(format!("{api}/health")).await?.json().await?;
        for f in ["status", "score", "peer_id", "version", "uptime_seconds"] {
            ensure!(h.get(f).is_some(), "/health lacks {f}: {h}");
        }
        ensure!(h["status"] == "healthy", "expected healthy: {h}");
        ensure!(h["peer_id"] == n.peer_id().to_string());

        let all: Value = reqwest::get(format!("{api}/health/checks")).await?.json().await?;
        ensure!(
            all["status"] == "healthy",
            "/health/checks names the overall status: {all}"
        );
        let c = &all["checks"];
        for check in ["p2p-connectivity", "pubsub-health", "dht-health", "storage-health"] {
            let r = &c[check];
            ensure!(r["status"] == "healthy", "{check} not healthy: {r}");
            ensure!(r["latency_ms"].as_f64().is_some(), "{check} has no latency: {r}");
            ensure!(r["last_success"].as_u64().is_some(), "{check} has no last_success: {r}");
            ensure!(r["message"].as_str().is_some(), "{check} has no message: {r}");
        }
        ensure!(
            c["pubsub-health"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("acknowledged"),
            "pubsub check must be a real probe round trip: {}",
            c["pubsub-health"]
        );
        ensure!(
            c["dht-health"]["message"] == "put and get verified",
            "dht check must be a real put/get: {}",
            c["dht-health"]
        );

        let live = reqwest::get(format!("{api}/health/live")).await?.status().as_u16();
        ensure!(live == 200, "/health/live: {live}");

        let s: Value = reqwest::get(format!("{api}/api/status")).await?.json().await?;
        ensure!(s["agent_id"] == "test-agent-1", "agent id from config: {s}");
        ensure!(s["role"] == "agent", "role from config: {s}");
        ensure!(s["peers"] == 2, "peers count: {s}");
        ensure!(
            s["listen_addrs"].as_array().is_some_and(|a| !a.is_empty()),
            "listen addrs: {s}"
        );

        let p: Value = reqwest::get(format!("{api}/api/peers")).await?.json().await?;
        let peers = p["peers"].as_array().context("peers array")?;
        ensure!(peers.len() == 2, "expected 2 peers: {p}");
        for peer in peers {
            ensure!(
                peer["peer_id"].is_string() && peer["addresses"].is_array(),
                "peer fields: {peer}"
            );
            ensure!(
                peer["connected_since_unix_ms"].as_u64().is_some(),
                "connected since: {peer}"
            );
        }
        wait_for("a ping latency is measured", Duration::from_secs(20), || async {
            let p: Value = match reqwest::get(format!("{api}/api/peers")).await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => return false,
            };
            p["peers"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["latency_ms"].as_f64().is_some()))
        })
        .await?;

        let t: Value = reqwest::Client::new()
            .post(format!("{api}/api/test/p2p-message"))
            .json(&serde_json::json!({"timeout_ms": 3000}))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            t["receivers"].as_array().map(|r| r.len()) == Some(2),
            "probe receivers: {t}"
        );
        let d: Value = reqwest::Client::new()
            .post(format!("{api}/api/test/dht-operations"))
            .send()
            .await?
            .json()
            .await?;
        ensure!(d["verified"] == true && d["replicated"] == true, "dht test: {d}");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// `/metrics` exposes the contract metrics with HELP text and passes `promtool check metrics`
/// (required when `BZZZ_REQUIRE_PROMTOOL=1`, as in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start(2).await?;
        cluster.wait_connected(1, Duration::from_secs(20)).await?;
        cluster.node(0).check_health_now().await;
        let text = reqwest::get(format!("http://{}/metrics", cluster.node(0).health_addr()))
            .await?
            .text()
            .await?;
        let names = bzzz_node::metrics::CONTRACT_METRICS
            .into_iter()
            .chain(["libp2p_swarm_connections_established_total"]);
        for name in names {
            ensure!(
                text.contains(&format!("# HELP {name} ")),
                "{name} missing or without HELP"
            );
        }
        let peers_line = text
            .lines()
            .find(|l| l.starts_with("bzzz_p2p_connected_peers "))
            .context("peers gauge")?;
        ensure!(
            peers_line.ends_with(" 1"),
            "connected peers gauge should be 1: {peers_line}"
        );

        let required = std::env::var("BZZZ_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
        match Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                use std::io::Write;
                child.stdin.take().context("stdin")?.write_all(text.as_bytes())?;
                let out = child.wait_with_output()?;
                ensure!(
                    out.status.success(),
                    "promtool check metrics failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Err(e) if !required => eprintln!("NOTICE: promtool not installed ({e}); skipped the promtool check"),
            Err(e) => anyhow::bail!("promtool required but not runnable: {e}"),
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// Bad input over HTTP gets a 4xx with the JSON error envelope and a stable code, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_4xx_errors() -> Result<()> {
    bounded(async {
        let mut cluster = TestCluster::start_with(1, |_, c| c.api.max_body_bytes = 4096).await?;
        let api = format!("http://{}", cluster.node(0).api_addr().context("api")?);
        let http = reqwest::Client::new();
        let long_key = "k".repeat(600);
        let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
            (http.get(format!("{api}/no/such/thing")), 404, "BZZZ-404-NOT_FOUND"),
            (
                http.post(format!("{api}/api/test/p2p-message")).body("{not json"),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.post(format!("{api}/api/test/p2p-message"))
                    .body(r#"{"timeout_ms": 0}"#),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.post(format!("{api}/api/test/p2p-message"))
                    .body(r#"{"timeout_ms": "soon"}"#),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.post(format!("{api}/api/test/p2p-message")).body(r#"{"bogus": 1}"#),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.post(format!("{api}/api/test/dht-operations"))
                    .body(r#"{"size_bytes": 0}"#),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.post(format!("{api}/api/test/dht-operations"))
                    .body(r#"{"size_bytes": -5}"#),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.get(format!("{api}/api/dht/records/absent-key")),
                404,
                "BZZZ-404-NOT_FOUND",
            ),
            (
                http.get(format!("{api}/api/dht/records/{long_key}")),
                400,
                "BZZZ-400-BAD_REQUEST",
            ),
            (
                http.put(format!("{api}/api/dht/records/big")).body(vec![0u8; 8192]),
                413,
                "",
            ),
        ];
        for (i, (req, want, code)) in cases.into_iter().enumerate() {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            ensure!(status == want, "case {i}: expected {want}, got {status}: {body}");
            if !code.is_empty() {
                let v: Value = serde_json::from_str(&body).with_context(|| format!("case {i}: not JSON: {body}"))?;
                ensure!(v["error"]["code"] == code, "case {i}: expected code {code}: {body}");
                ensure!(
                    v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "case {i}: no message"
                );
                ensure!(v["error"]["request_id"].is_string(), "case {i}: no request id");
            }
        }
        // A record within limits round-trips over HTTP.
        let put = http
            .put(format!("{api}/api/dht/records/notes"))
            .body("hello")
            .send()
            .await?;
        ensure!(put.status().as_u16() == 200, "put: {}", put.status());
        let got = http
            .get(format!("{api}/api/dht/records/notes"))
            .send()
            .await?
            .text()
            .await?;
        ensure!(got == "hello", "get returned {got}");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}
