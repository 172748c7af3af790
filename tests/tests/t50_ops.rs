//! Operator actions (the runbook's commands): config reload over HTTP and on `SIGHUP` of a real
//! `bzzz run` process, `bzzz reload`, `bzzz peers clear`, `bzzz dht reprovide`,
//! `bzzz dht cache clear`, `bzzz backup` / `bzzz restore`, and the process metrics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_node::Config;
use bzzz_node::node::Node;
use bzzz_node::ops::ConfigSource;
use bzzz_tests::{bounded, bzzz_binary, free_ports, test_config, wait_for};
use serde_json::Value;

/// POSTs to `path` of `api` with an optional bearer token and an optional JSON body; returns the
/// status and the JSON answer.
async fn post(api: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Result<(u16, Value)> {
    let mut req = reqwest::Client::new().post(format!("{api}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.with_context(|| format!("POST {path}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).with_context(|| format!("POST {path}: not JSON: {text}"))?;
    Ok((status, v))
}

/// The value of the sample `series` (name with labels, as exposed) in a Prometheus text scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(health: &str) -> Result<String> {
    Ok(reqwest::get(format!("{health}/metrics")).await?.text().await?)
}

/// Runs the `bzzz` client verb `args` against `api` (a clean environment for its variables).
async fn cli(bin: &Path, args: &[&str], api: &str) -> Result<std::process::Output> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .args(["--api", api, "--timeout-secs", "20"])
        .env_remove("BZZZ_API")
        .env_remove("BZZZ_OPERATOR_TOKEN_FILE");
    let what = args.join(" ");
    tokio::task::spawn_blocking(move || cmd.output())
        .await?
        .with_context(|| format!("running bzzz {what}"))
}

/// Writes `config` as the YAML file `path`.
fn write_config(path: &Path, config: &Config) -> Result<()> {
    std::fs::write(path, serde_yaml_ng::to_string(config)?)?;
    Ok(())
}

/// A reload over HTTP re-reads the token file (the old token is refused from then on, the new
/// one accepted), applies new bootstrap peers to the join loop, names a changed restart-only
/// field, and refuses a broken file as a whole with an error naming the file and the field,
/// keeping the running token. Counted by outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_over_http_rotates_the_token_and_names_restart_fields() -> Result<()> {
    bounded(async {
        bzzz_tests::init_logging();
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("operator-token");
        std::fs::write(&token_file, "token-one\n")?;
        let config_file = dir.path().join("config.yaml");
        let mut config = test_config(&dir.path().join("data"));
        config.api.operator_token_file = Some(token_file.clone());
        write_config(&config_file, &config)?;
        let source = {
            let f = config_file.clone();
            ConfigSource::new(format!("config file {}", f.display()), move || Config::from_file(&f))
        };
        let node = Node::start_with(config.clone(), source).await?;
        let api = format!("http://{}", node.api_addr().context("api")?);
        let health = format!("http://{}", node.health_addr());

        let (code, v) = post(&api, "/api/config/reload", None, None).await?;
        ensure!(
            code == 401 && v["error"]["code"] == "BZZZ-401-UNAUTHORIZED",
            "a reload without the token must be refused: {code} {v}"
        );
        let (code, v) = post(&api, "/api/config/reload", Some("token-one"), None).await?;
        ensure!(code == 200, "reload with the token: {code} {v}");
        ensure!(
            v["applied"] == serde_json::json!([]) && v["needs_restart"] == serde_json::json!([]),
            "nothing changed yet: {v}"
        );

        // Rotate the secret behind the same path, add a bootstrap peer, change a restart field.
        std::fs::write(&token_file, "token-two\n")?;
        let mut changed = config.clone();
        changed.dht.max_records = 1234;
        changed.p2p.bootstrap_peers = vec!["/ip4/127.0.0.1/tcp/9".into()];
        write_config(&config_file, &changed)?;
        let (code, v) = post(&api, "/api/config/reload", Some("token-one"), None).await?;
        ensure!(code == 200, "reload: {code} {v}");
        ensure!(
            v["applied"] == serde_json::json!(["p2p.bootstrap_peers"]),
            "applied: {v}"
        );
        ensure!(
            v["needs_restart"] == serde_json::json!(["dht.max_records"]),
            "restart: {v}"
        );
        ensure!(
            v["operator_token"]
                .as_str()
                .is_some_and(|t| t.contains("re-read from") && t.contains("operator-token")),
            "token report names the file: {v}"
        );
        ensure!(
            !v.to_string().contains("token-two"),
            "the answer must not show the token: {v}"
        );
        // The join loop picks the new targets up on its own task: wait (bounded) for it.
        let wanted = vec!["/ip4/127.0.0.1/tcp/9".to_string()];
        wait_for(
            "the join loop to use the new bootstrap peers",
            Duration::from_secs(10),
            || async { node.join_status().configured_peers == wanted },
        )
        .await
        .with_context(|| format!("join status: {:?}", node.join_status()))?;

        let (code, _) = post(&api, "/api/config/reload", Some("token-one"), None).await?;
        ensure!(code == 401, "the rotated-out token must be refused, got {code}");
        let (code, v) = post(&api, "/api/config/reload", Some("token-two"), None).await?;
        ensure!(code == 200, "the new token must be accepted: {code} {v}");
        ensure!(
            v["needs_restart"] == serde_json::json!(["dht.max_records"]),
            "a restart field keeps being reported until the restart: {v}"
        );

        // A typo and a bad value: refused, naming the file and the field; the token stays.
        for (yaml, names) in [
            ("dht:\n  max_recrods: 5\n", "max_recrods"),
            ("dht:\n  put_quorum: most\n", "dht.put_quorum"),
        ] {
            std::fs::write(&config_file, yaml)?;
            let (code, v) = post(&api, "/api/config/reload", Some("token-two"), None).await?;
            let message = v["error"]["message"].as_str().unwrap_or_default();
            ensure!(
                code == 400 && message.contains(names) && message.contains("config.yaml"),
                "a bad file must be refused naming {names} and the file: {code} {v}"
            );
        }
        // A token file that cannot be read is refused too, naming it.
        let mut missing = config.clone();
        missing.api.operator_token_file = Some(dir.path().join("no-such-token"));
        write_config(&config_file, &missing)?;
        let (code, v) = post(&api, "/api/config/reload", Some("token-two"), None).await?;
        ensure!(
            code == 400
                && v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no-such-token")),
            "an unreadable token file must be refused naming it: {code} {v}"
        );
        let (code, v) = post(&api, "/api/config/reload", Some("token-two"), None).await?;
        ensure!(code == 400, "still refused: {code} {v}");
        write_config(&config_file, &changed)?;
        let (code, v) = post(&api, "/api/config/reload", Some("token-two"), None).await?;
        ensure!(
            code == 200,
            "the running token survived the refused reloads: {code} {v}"
        );

        let text = scrape(&health).await?;
        let ok = sample(&text, "bzzz_config_reloads_total{outcome=\"success\"}");
        let failed = sample(&text, "bzzz_config_reloads_total{outcome=\"failure\"}");
        ensure!(
            ok == Some(4.0) && failed == Some(4.0),
            "expected 4 successful and 4 refused reloads, got {ok:?} and {failed:?}"
        );
        node.shutdown().await;
        Ok(())
    })
    .await
}

/// A `bzzz run` process started by a test; killed if the test fails before stopping it.
struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    fn start(bin: &Path, config: &Path, stderr: PathBuf) -> Result<Daemon> {
        let log = std::fs::File::create(&stderr)?;
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BZZZ_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        let child = cmd.spawn().context("spawning bzzz run")?;
        Ok(Daemon { child, stderr })
    }

    fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        ensure!(status.success(), "kill -{name} failed: {status}");
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then waits up to 15 s for the exit code.
    async fn stop(mut self) -> Result<Option<i32>> {
        self.signal("TERM")?;
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("bzzz run did not exit within 15 s of SIGTERM; log:\n{}", self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// SIGHUP makes a running `bzzz run` re-read its config file: the log level changes at once
/// (the reload's own info line appears although the node started at `warn`), the rotated token
/// replaces the old one, the reload is counted; a broken file on the next SIGHUP is refused and
/// logged naming the file, and the process keeps running with its token. No token ever reaches
/// the log. `bzzz reload` asks for the same reload with `--token-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_running_bzzz_process() -> Result<()> {
    let bin = tokio::task::spawn_blocking(bzzz_binary).await??;
    bounded(async {
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("operator-token");
        std::fs::write(&token_file, "first-secret-7c1e\n")?;
        let config_file = dir.path().join("config.yaml");
        let mut config = test_config(&dir.path().join("data"));
        let [api_port, health_port] = free_ports()?;
        config.api.listen = format!("127.0.0.1:{api_port}");
        config.health.listen = format!("127.0.0.1:{health_port}");
        config.api.operator_token_file = Some(token_file.clone());
        config.log.level = "warn".into();
        write_config(&config_file, &config)?;
        let daemon = Daemon::start(&bin, &config_file, dir.path().join("stderr.log"))?;
        let api = format!("http://127.0.0.1:{api_port}");
        let health = format!("http://127.0.0.1:{health_port}");
        wait_for("bzzz run answers /health/live", Duration::from_secs(30), || async {
            reqwest::get(format!("{health}/health/live"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await
        .with_context(|| format!("log:\n{}", daemon.log()))?;
        ensure!(
            !daemon.log().contains("bzzz node started"),
            "at warn the start line is filtered out:\n{}",
            daemon.log()
        );

        std::fs::write(&token_file, "second-secret-9d2f\n")?;
        config.log.level = "info".into();
        write_config(&config_file, &config)?;
        daemon.signal("HUP")?;
        wait_for("the SIGHUP reload is counted", Duration::from_secs(20), || async {
            scrape(&health)
                .await
                .is_ok_and(|t| sample(&t, "bzzz_config_reloads_total{outcome=\"success\"}") == Some(1.0))
        })
        .await
        .with_context(|| format!("log:\n{}", daemon.log()))?;
        let log = daemon.log();
        ensure!(
            log.contains("configuration reloaded") && log.contains("log.level"),
            "the reload line (info) must show once the level is info:\n{log}"
        );
        let (code, _) = post(&api, "/api/config/reload", Some("first-secret-7c1e"), None).await?;
        ensure!(code == 401, "the old token must be refused after SIGHUP, got {code}");

        // `bzzz reload` with the new token file does the same over HTTP.
        let cli = |args: &[&str]| {
            let mut cmd = Command::new(&bin);
            cmd.args(args)
                .args(["--api", &api])
                .env_remove("BZZZ_API")
                .env_remove("BZZZ_OPERATOR_TOKEN_FILE");
            cmd
        };
        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let out = tokio::task::spawn_blocking({
            let mut cmd = cli(&["reload", "--token-file", token_arg]);
            move || cmd.output()
        })
        .await??;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout.contains("reloaded config file") && stdout.contains("needs a restart: none"),
            "bzzz reload: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tokio::task::spawn_blocking({
            let mut cmd = cli(&["reload"]);
            move || cmd.output()
        })
        .await??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1) && stderr.contains("BZZZ-401-UNAUTHORIZED"),
            "bzzz reload without a token: {:?} {stderr}",
            out.status
        );

        // A broken file: refused on SIGHUP, logged naming the file; the node keeps its token.
        std::fs::write(&config_file, "p2p:\n  listn: []\n")?;
        daemon.signal("HUP")?;
        wait_for("the refused reload is counted", Duration::from_secs(20), || async {
            scrape(&health)
                .await
                .is_ok_and(|t| sample(&t, "bzzz_config_reloads_total{outcome=\"failure\"}") == Some(1.0))
        })
        .await
        .with_context(|| format!("log:\n{}", daemon.log()))?;
        let log = daemon.log();
        ensure!(
            log.contains("reload refused") && log.contains("config.yaml") && log.contains("listn"),
            "the refusal must be logged naming the file and the field:\n{log}"
        );
        let (code, v) = post(&api, "/api/config/reload", Some("second-secret-9d2f"), None).await?;
        ensure!(
            code == 400,
            "the broken file is still refused, with the kept token: {code} {v}"
        );
        ensure!(
            !log.contains("first-secret-7c1e") && !log.contains("second-secret-9d2f"),
            "no token may reach the log:\n{log}"
        );
        let code = daemon.stop().await?;
        ensure!(code == Some(0), "bzzz run must exit 0 on SIGTERM, got {code:?}");
        Ok(())
    })
    .await
}

/// A running node's `/metrics` carries the process metrics with HELP text (Linux).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_are_scraped() -> Result<()> {
    bounded(async {
        let mut cluster = bzzz_tests::TestCluster::start(1).await?;
        let text = scrape(&format!("http://{}", cluster.node(0).health_addr())).await?;
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            ensure!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP text");
            ensure!(
                sample(&text, name).is_some_and(|v| v > 0.0),
                "{name} has no positive sample"
            );
        }
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// `bzzz peers clear` empties the node's routing table and closes its connections (counted in the
/// answer), and re-bootstraps at once: the join loop dials its bootstrap peer again although its
/// mesh check would not run for an hour, and the node is back in the mesh. Without the operator
/// token the endpoint is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_clear_forgets_peers_and_rebootstraps_at_once() -> Result<()> {
    let bin = tokio::task::spawn_blocking(bzzz_binary).await??;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "peers-clear-token\n")?;
    bounded(async {
        let tf = token_file.clone();
        let mut cluster = bzzz_tests::TestCluster::start_with(3, move |i, c| {
            c.api.operator_token_file = Some(tf.clone());
            if i == 2 {
                // Only an explicit rejoin can make this node re-dial within the test.
                c.p2p.join_check_interval_ms = 3_600_000;
            }
        })
        .await?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        let node = cluster.node(2);
        let api = format!("http://{}", node.api_addr().context("api")?);
        wait_for(
            "node 2 knows both peers in its routing table",
            Duration::from_secs(20),
            || async { node.client().snapshot().await.is_ok_and(|s| s.routing_table_size >= 2) },
        )
        .await?;
        let before = node.join_status();
        ensure!(before.state == bzzz_bootstrap::JoinState::Joined, "joined: {before:?}");

        let (code, v) = post(&api, "/api/peers/clear", None, None).await?;
        ensure!(code == 401, "peers clear without the token must be refused: {code} {v}");
        ensure!(
            node.join_status().rebootstraps == before.rebootstraps,
            "a refused clear does nothing"
        );

        let out = cli(&bin, &["peers", "--json"], &api).await?;
        let listed: Value = serde_json::from_slice(&out.stdout).context("bzzz peers --json")?;
        ensure!(listed["count"] == 2, "bzzz peers still lists the peers: {listed}");

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let out = cli(&bin, &["peers", "clear", "--token-file", token_arg, "--json"], &api).await?;
        ensure!(
            out.status.success(),
            "bzzz peers clear: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)?;
        ensure!(
            v["routing_table_peers_forgotten"].as_u64().is_some_and(|n| n >= 2)
                && v["peers_disconnected"] == 2
                && v["connections_closed"].as_u64().is_some_and(|n| n >= 2)
                && v["bootstrap_peers"] == 1,
            "counts of what was forgotten: {v}"
        );
        wait_for(
            "node 2 re-bootstraps at once and rejoins",
            Duration::from_secs(20),
            || async {
                let s = node.join_status();
                s.rebootstraps == before.rebootstraps + 1
                    && s.attempts > before.attempts
                    && s.state == bzzz_bootstrap::JoinState::Joined
            },
        )
        .await
        .with_context(|| format!("join status: {:?}", node.join_status()))?;
        cluster.wait_connected(2, Duration::from_secs(20)).await?;
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A 3-node mesh whose node 0 is the admin, with a replication check interval of an hour and an
/// operator token on every node.
async fn context_mesh(token_file: &Path) -> Result<bzzz_tests::TestCluster> {
    let tf = token_file.to_path_buf();
    let cluster = bzzz_tests::TestCluster::start_with(3, move |i, c| {
        if i == 0 {
            c.election.eligible = true;
            c.election.bootstrap_expect = 1;
        }
        c.context.repair_interval_ms = 3_600_000;
        c.api.operator_token_file = Some(tf.clone());
    })
    .await?;
    cluster.wait_context_ready(Duration::from_secs(40)).await?;
    Ok(cluster)
}

/// `bzzz dht reprovide` on a node that is not the admin re-announces it as provider of every
/// record it holds (a plain record nobody announced before gets it as provider), republishes
/// the plain records it published, and makes the admin run its replication check now, long
/// before its hour-long interval (the admin had no report before, has one after, and the
/// answer carries it). Refused without the operator token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_reprovide_announces_republishes_and_runs_the_admin_check() -> Result<()> {
    let bin = tokio::task::spawn_blocking(bzzz_binary).await??;
    let _guard = bzzz_tests::exclusive().await;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "reprovide-token\n")?;
    bounded(async {
        let mut cluster = context_mesh(&token_file).await?;
        let put = cluster
            .node(1)
            .context()
            .put(
                "ucxl://ops:agent@bzzz-test:reprovide/notes/a.md",
                b"kept on R holders".to_vec(),
            )
            .await?;
        ensure!(put.replicas >= 1, "context write: {put:?}");
        let node = cluster.node(2);
        let plain = b"/bzzz/test/reprovide-plain".to_vec();
        node.client()
            .put_record(plain.clone(), b"plain value".to_vec(), None)
            .await?;
        let admin = cluster.node(0);
        ensure!(admin.consensus().status().is_admin, "node 0 is the admin");
        ensure!(
            admin.context().replication_report().is_none(),
            "no replication check may have run yet (the interval is an hour)"
        );
        let providers = admin.client().get_providers(plain.clone()).await.unwrap_or_default();
        ensure!(
            !providers.contains(&node.peer_id()),
            "nobody announced the plain record yet"
        );

        let api = format!("http://{}", node.api_addr().context("api")?);
        let (code, v) = post(&api, "/api/dht/reprovide", Some("wrong-token"), None).await?;
        ensure!(code == 401, "a wrong token must be refused: {code} {v}");

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let out = cli(&bin, &["dht", "reprovide", "--token-file", token_arg, "--json"], &api).await?;
        ensure!(
            out.status.success(),
            "bzzz dht reprovide: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)?;
        let records = v["records"].as_u64().unwrap_or(0);
        ensure!(
            records >= 2
                && v["provider_announcements"] == records
                && v["context_records"].as_u64().is_some_and(|n| n >= 1)
                && v["republished"].as_u64().is_some_and(|n| n >= 1)
                && v["failed"] == 0,
            "reprovide counts: {v}"
        );
        let check = &v["replication_check"];
        ensure!(
            check["status"] == "ran" && check["report"]["records"].as_u64().is_some_and(|n| n >= 1),
            "the admin's check must have run and been reported: {v}"
        );
        ensure!(
            admin.context().replication_report().is_some(),
            "the admin ran its check before its interval"
        );
        wait_for(
            "node 2 is a provider of its plain record",
            Duration::from_secs(20),
            || async {
                admin
                    .client()
                    .get_providers(plain.clone())
                    .await
                    .is_ok_and(|p| p.contains(&node.peer_id()))
            },
        )
        .await?;
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// `bzzz dht cache clear` removes from a node's store a plain record another node published
/// (a copy it merely caches) and keeps the context record it holds as one of the R replicas and
/// the plain record it published itself; the publisher keeps its own copy and the context is
/// still readable. Refused without the operator token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_cache_clear_removes_cached_records_and_keeps_context() -> Result<()> {
    let bin = tokio::task::spawn_blocking(bzzz_binary).await??;
    let _guard = bzzz_tests::exclusive().await;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "cache-clear-token\n")?;
    bounded(async {
        let mut cluster = context_mesh(&token_file).await?;
        let address = "ucxl://ops:agent@bzzz-test:cache/notes/kept.md";
        let put = cluster.node(1).context().put(address, b"a replica".to_vec()).await?;
        let record_key: [u8; 32] = hex::decode(&put.record_key)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("record key is not 32 bytes"))?;
        let ctx_key = bzzz_node::crypto::dht_key(&record_key);
        let node = cluster.node(2);
        ensure!(
            node.client().local_get(ctx_key.clone()).await?.is_some(),
            "node 2 holds a replica of the context record (R = 3 on 3 nodes)"
        );
        let theirs = b"/bzzz/test/published-by-node-1".to_vec();
        cluster
            .node(1)
            .client()
            .put_record(theirs.clone(), b"cached elsewhere".to_vec(), None)
            .await?;
        wait_for(
            "node 2 caches node 1's plain record",
            Duration::from_secs(20),
            || async { node.client().local_get(theirs.clone()).await.is_ok_and(|v| v.is_some()) },
        )
        .await?;
        let mine = b"/bzzz/test/published-by-node-2".to_vec();
        node.client().put_record(mine.clone(), b"my own".to_vec(), None).await?;

        let api = format!("http://{}", node.api_addr().context("api")?);
        let (code, v) = post(&api, "/api/dht/cache/clear", None, None).await?;
        ensure!(code == 401, "cache clear without the token must be refused: {code} {v}");
        ensure!(
            node.client().local_get(theirs.clone()).await?.is_some(),
            "a refused clear removes nothing"
        );

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let out = cli(
            &bin,
            &["dht", "cache", "clear", "--token-file", token_arg, "--json"],
            &api,
        )
        .await?;
        ensure!(
            out.status.success(),
            "bzzz dht cache clear: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)?;
        ensure!(
            v["cached_records_removed"].as_u64().is_some_and(|n| n >= 1)
                && v["context_records_kept"].as_u64().is_some_and(|n| n >= 1)
                && v["own_records_kept"].as_u64().is_some_and(|n| n >= 1),
            "cache clear counts: {v}"
        );
        ensure!(
            node.client().local_get(theirs.clone()).await?.is_none(),
            "the cached copy of node 1's record must be gone"
        );
        ensure!(
            node.client().local_get(ctx_key.clone()).await?.is_some(),
            "the context replica must stay"
        );
        ensure!(
            node.client().local_get(mine.clone()).await?.is_some(),
            "the node's own record must stay"
        );
        ensure!(
            cluster.node(1).client().local_get(theirs.clone()).await?.is_some(),
            "the publisher keeps its record"
        );
        let got = node.context().get(address).await?;
        ensure!(got.content == b"a replica", "the context is still readable");
        cluster.shutdown().await;
        Ok(())
    })
    .await
}

/// A single admin-eligible node that can write context alone (R = 1), with an operator token.
fn solo_config(data_dir: &Path, token_file: &Path) -> Config {
    let mut c = test_config(data_dir);
    c.election.eligible = true;
    c.election.bootstrap_expect = 1;
    c.context.replication_factor = 1;
    c.context.write_quorum = 1;
    c.api.operator_token_file = Some(token_file.to_path_buf());
    // Alone, every gossip publish would wait this long for a subscriber (election formation
    // publishes on every tick): keep it short.
    c.gossip.publish_wait_ms = 100;
    c
}

/// Waits until the node is admin with its roles and keys.
async fn wait_solo_ready(node: &Node) -> Result<()> {
    wait_for(
        "the node is admin with its role keys",
        Duration::from_secs(30),
        || async { node.consensus().status().is_admin && node.context().ready() },
    )
    .await
    .with_context(|| format!("context status: {:?}", node.context().status()))
}

/// `bzzz backup` exports a running node's database (DHT records and Raft state) to a 0600 file
/// while the node keeps serving; `bzzz restore` puts it into a fresh data dir (with the key files
/// copied as the secrets they are), and a node started there has the DHT record and reads the
/// context through its restored Raft index. A damaged or truncated file is refused naming the
/// problem and writes nothing; a database in use, or holding data without --force, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_running_node_restores_into_a_fresh_data_dir() -> Result<()> {
    let bin = tokio::task::spawn_blocking(bzzz_binary).await??;
    let _guard = bzzz_tests::exclusive().await;
    let dir = tempfile::tempdir()?;
    let token_file = dir.path().join("operator-token");
    std::fs::write(&token_file, "backup-token\n")?;
    let token_arg = token_file.to_str().context("utf-8 temp path")?.to_string();
    let path_arg = |p: &Path| p.to_str().map(String::from).context("utf-8 temp path");
    bounded(async {
        let first_dir = dir.path().join("first");
        let node = Node::start(solo_config(&first_dir, &token_file)).await?;
        wait_solo_ready(&node).await?;
        let address = "ucxl://ops:agent@bzzz-test:backup/notes/state.md";
        node.context().put(address, b"indexed through raft".to_vec()).await?;
        let plain = b"/bzzz/test/backed-up".to_vec();
        node.client()
            .put_record(plain.clone(), b"plain dht value".to_vec(), None)
            .await?;

        let api = format!("http://{}", node.api_addr().context("api")?);
        let file = dir.path().join("node.bzzz-backup");
        let file_arg = path_arg(&file)?;
        let out = cli(&bin, &["backup", "--output", &file_arg], &api).await?;
        ensure!(
            out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("BZZZ-401-UNAUTHORIZED"),
            "a backup without the token must be refused: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(!file.exists(), "a refused backup writes no file");
        let out = cli(
            &bin,
            &["backup", "--output", &file_arg, "--token-file", &token_arg],
            &api,
        )
        .await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout.contains("sha256") && stdout.contains("identity key"),
            "bzzz backup: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
            ensure!(mode == 0o600, "the backup file must be 0600, got {mode:o}");
        }
        let bytes = std::fs::read(&file)?;
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        ensure!(!contains(b"backup-token"), "the token must not be in the backup");
        for key in ["identity.key", "x25519.key"] {
            let secret = std::fs::read(first_dir.join(key))?;
            ensure!(!contains(&secret), "{key} must not be in the backup");
        }
        ensure!(node.client().snapshot().await.is_ok(), "the node kept running");
        let peer = node.peer_id();
        node.shutdown().await;

        // Damaged files are refused and write nothing.
        let bad_dir = dir.path().join("bad");
        std::fs::create_dir_all(&bad_dir)?;
        let bad_arg = path_arg(&bad_dir)?;
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        for (name, data, reason) in [
            ("flipped.bzzz-backup", flipped, "checksum"),
            (
                "truncated.bzzz-backup",
                bytes[..bytes.len() * 2 / 3].to_vec(),
                "truncated",
            ),
        ] {
            let f = dir.path().join(name);
            std::fs::write(&f, data)?;
            let out = tokio::task::spawn_blocking({
                let mut cmd = Command::new(&bin);
                cmd.args(["restore", "--input", &path_arg(&f)?, "--data-dir", &bad_arg]);
                move || cmd.output()
            })
            .await??;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.code() == Some(1) && stderr.contains(reason) && stderr.contains(name),
                "{name}: expected a refusal naming {reason} and the file: {:?} {stderr}",
                out.status
            );
            ensure!(
                std::fs::read_dir(&bad_dir)?.next().is_none(),
                "{name}: the data dir must stay untouched"
            );
        }

        // Restore into a fresh data dir; the key files come back separately, as secrets.
        let second_dir = dir.path().join("second");
        std::fs::create_dir_all(&second_dir)?;
        for key in ["identity.key", "x25519.key"] {
            std::fs::copy(first_dir.join(key), second_dir.join(key))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(second_dir.join(key), std::fs::Permissions::from_mode(0o600))?;
            }
        }
        let second_arg = path_arg(&second_dir)?;
        let restore = |extra: &'static [&'static str]| {
            let mut cmd = Command::new(&bin);
            cmd.args(["restore", "--input", &file_arg, "--data-dir", &second_arg])
                .args(extra);
            async move { tokio::task::spawn_blocking(move || cmd.output()).await? }
        };
        let out = restore(&[]).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && stdout.contains("restored") && stdout.contains(&peer.to_string()),
            "bzzz restore: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let node = Node::start(solo_config(&second_dir, &token_file)).await?;
        ensure!(node.peer_id() == peer, "same identity");
        let out = restore(&["--force"]).await?;
        ensure!(
            out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("in use"),
            "a database in use must be refused: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            node.client().local_get(plain.clone()).await?.as_deref() == Some(b"plain dht value".as_slice()),
            "the DHT record is back"
        );
        wait_solo_ready(&node).await?;
        let got = node.context().get(address).await?;
        ensure!(got.content == b"indexed through raft", "the context is readable again");
        ensure!(
            got.version.version == 1,
            "the version index came back: {:?}",
            got.version
        );
        node.shutdown().await;
        drop(node);
        let out = restore(&[]).await?;
        ensure!(
            out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("--force"),
            "a database with data must be refused without --force: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    })
    .await
}
