//! Operator actions (the runbook's commands): config reload over HTTP and on `SIGHUP` of a real
//! `bzzz run` process, `bzzz reload`, `bzzz peers clear`, `bzzz dht reprovide`,
//! `bzzz dht cache clear`, `bzzz backup` / `bzzz restore`, and the process metrics.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_client::types::{CacheClearReport, PeerList, PeersCleared, ReplicationCheck, ReprovideReport};
use bzzz_client::{ApiClient, ClientError};
use bzzz_node::Config;
use bzzz_node::node::Node;
use bzzz_node::ops::ConfigSource;
use bzzz_tests::process::{Cli, Launch, Signal, bzzz_binary_async};
use bzzz_tests::{TestCluster, api_of, bounded, free_ports, test_config, wait_for};

/// The error of a call the node must refuse with HTTP `status`; fails if it answered otherwise.
fn refused<T: std::fmt::Debug>(answer: Result<T, ClientError>, status: u16, what: &str) -> Result<ClientError> {
    match answer {
        Ok(v) => bail!("{what}: expected HTTP {status}, got {v:?}"),
        Err(e) if e.status() == Some(status) => Ok(e),
        Err(e) => bail!("{what}: expected HTTP {status}, got {e}"),
    }
}

/// The message of the node's error envelope (empty for other errors).
fn message(e: &ClientError) -> &str {
    match e {
        ClientError::Api { message, .. } => message,
        _ => "",
    }
}

/// The value of the sample `series` (name with labels, as exposed) in a Prometheus text scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `GET /metrics` of the health listener at `health`.
async fn scrape(health: &str) -> Result<String> {
    Ok(ApiClient::new(health)?.metrics_text().await?)
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
        let health = format!("http://{}", node.health_addr());
        let (anonymous, one, two) = (
            api_of(&node)?,
            api_of(&node)?.with_token("token-one"),
            api_of(&node)?.with_token("token-two"),
        );

        let e = refused(anonymous.reload_config().await, 401, "a reload without the token")?;
        ensure!(
            e.code() == Some("BZZZ-401-UNAUTHORIZED"),
            "a reload without the token must be refused: {e}"
        );
        let v = one.reload_config().await.context("reload with the token")?;
        ensure!(
            v.applied.is_empty() && v.needs_restart.is_empty(),
            "nothing changed yet: {v:?}"
        );

        // Rotate the secret behind the same path, add a bootstrap peer, change a restart field.
        std::fs::write(&token_file, "token-two\n")?;
        let mut changed = config.clone();
        changed.dht.max_records = 1234;
        changed.p2p.bootstrap_peers = vec!["/ip4/127.0.0.1/tcp/9".into()];
        write_config(&config_file, &changed)?;
        let v = one.reload_config().await.context("reload")?;
        ensure!(v.applied == ["p2p.bootstrap_peers"], "applied: {v:?}");
        ensure!(v.needs_restart == ["dht.max_records"], "restart: {v:?}");
        ensure!(
            v.operator_token.contains("re-read from") && v.operator_token.contains("operator-token"),
            "token report names the file: {v:?}"
        );
        ensure!(
            !format!("{v:?}").contains("token-two"),
            "the answer must not show the token: {v:?}"
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

        refused(one.reload_config().await, 401, "the rotated-out token")?;
        let v = two.reload_config().await.context("the new token must be accepted")?;
        ensure!(
            v.needs_restart == ["dht.max_records"],
            "a restart field keeps being reported until the restart: {v:?}"
        );

        // A typo and a bad value: refused, naming the file and the field; the token stays.
        for (yaml, names) in [
            ("dht:\n  max_recrods: 5\n", "max_recrods"),
            ("dht:\n  put_quorum: most\n", "dht.put_quorum"),
        ] {
            std::fs::write(&config_file, yaml)?;
            let e = refused(two.reload_config().await, 400, "a bad file")?;
            ensure!(
                message(&e).contains(names) && message(&e).contains("config.yaml"),
                "a bad file must be refused naming {names} and the file: {e}"
            );
        }
        // A token file that cannot be read is refused too, naming it.
        let mut missing = config.clone();
        missing.api.operator_token_file = Some(dir.path().join("no-such-token"));
        write_config(&config_file, &missing)?;
        let e = refused(two.reload_config().await, 400, "an unreadable token file")?;
        ensure!(
            message(&e).contains("no-such-token"),
            "an unreadable token file must be refused naming it: {e}"
        );
        refused(two.reload_config().await, 400, "still refused")?;
        write_config(&config_file, &changed)?;
        two.reload_config()
            .await
            .context("the running token survived the refused reloads")?;

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

/// SIGHUP makes a running `bzzz run` re-read its config file: the log level changes at once
/// (the reload's own info line appears although the node started at `warn`), the rotated token
/// replaces the old one, the reload is counted; a broken file on the next SIGHUP is refused and
/// logged naming the file, and the process keeps running with its token. No token ever reaches
/// the log. `bzzz reload` asks for the same reload with `--token-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_running_bzzz_process() -> Result<()> {
    let bin = bzzz_binary_async().await?;
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
        let daemon = Launch::config_file(&bin, &config_file)
            .log_to(dir.path().join("stderr.log"))
            .spawn()?;
        let api = format!("http://127.0.0.1:{api_port}");
        let health = format!("http://127.0.0.1:{health_port}");
        let health_client = ApiClient::new(&health)?;
        wait_for("bzzz run answers /health/live", Duration::from_secs(30), || async {
            health_client.live().await.is_ok()
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
        daemon.signal(Signal::SIGHUP)?;
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
        let old = ApiClient::new(&api)?.with_token("first-secret-7c1e");
        refused(old.reload_config().await, 401, "the old token after SIGHUP")?;

        // `bzzz reload` with the new token file does the same over HTTP.
        let cli = Cli::against(&bin, &api);
        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let out = cli.run(&["reload", "--token-file", token_arg]).await?;
        let stdout = out.text();
        ensure!(
            out.success() && stdout.contains("reloaded config file") && stdout.contains("needs a restart: none"),
            "bzzz reload: {:?}\n{stdout}\n{}",
            out.code,
            out.stderr
        );
        let out = cli.run(&["reload"]).await?;
        ensure!(
            out.code == Some(1) && out.stderr.contains("BZZZ-401-UNAUTHORIZED"),
            "bzzz reload without a token: {:?} {}",
            out.code,
            out.stderr
        );

        // A broken file: refused on SIGHUP, logged naming the file; the node keeps its token.
        std::fs::write(&config_file, "p2p:\n  listn: []\n")?;
        daemon.signal(Signal::SIGHUP)?;
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
        let kept = ApiClient::new(&api)?.with_token("second-secret-9d2f");
        refused(
            kept.reload_config().await,
            400,
            "the broken file is still refused, with the kept token",
        )?;
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
    let bin = bzzz_binary_async().await?;
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

        refused(api_of(node)?.clear_peers().await, 401, "peers clear without the token")?;
        ensure!(
            node.join_status().rebootstraps == before.rebootstraps,
            "a refused clear does nothing"
        );

        let cli = Cli::against(&bin, &api);
        let listed: PeerList = cli.run(&["peers", "--json"]).await?.ok("bzzz peers --json")?.json()?;
        ensure!(listed.count == 2, "bzzz peers still lists the peers: {listed:?}");

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let v: PeersCleared = cli
            .run(&["peers", "clear", "--token-file", token_arg, "--json"])
            .await?
            .ok("bzzz peers clear")?
            .json()?;
        ensure!(
            v.routing_table_peers_forgotten >= 2
                && v.peers_disconnected == 2
                && v.connections_closed >= 2
                && v.bootstrap_peers == 1,
            "counts of what was forgotten: {v:?}"
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

/// The tweak of a 3-node mesh whose node 0 is the admin, with a replication check interval of an
/// hour and an operator token on every node.
fn context_mesh(token_file: &Path) -> impl Fn(usize, &mut Config) + use<> {
    let tf = token_file.to_path_buf();
    move |i, c| {
        if i == 0 {
            c.election.eligible = true;
            c.election.bootstrap_expect = 1;
        }
        c.context.repair_interval_ms = 3_600_000;
        c.api.operator_token_file = Some(tf.clone());
    }
}

/// `bzzz dht reprovide` on a node that is not the admin re-announces it as provider of every
/// record it holds (a plain record nobody announced before gets it as provider), republishes
/// the plain records it published, and makes the admin run its replication check now, long
/// before its hour-long interval (the admin had no report before, has one after, and the
/// answer carries it). Refused without the operator token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_reprovide_announces_republishes_and_runs_the_admin_check() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "reprovide-token\n")?;
    TestCluster::scenario(3, context_mesh(&token_file), async |cluster| {
        cluster.wait_context_ready(Duration::from_secs(40)).await?;
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
        refused(
            api_of(node)?.with_token("wrong-token").dht_reprovide().await,
            401,
            "a wrong token",
        )?;

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let v: ReprovideReport = Cli::against(&bin, &api)
            .run(&["dht", "reprovide", "--token-file", token_arg, "--json"])
            .await?
            .ok("bzzz dht reprovide")?
            .json()?;
        ensure!(
            v.records >= 2
                && v.provider_announcements == v.records
                && v.context_records >= 1
                && v.republished >= 1
                && v.failed == 0,
            "reprovide counts: {v:?}"
        );
        ensure!(
            matches!(&v.replication_check, ReplicationCheck::Ran { report } if report.records >= 1),
            "the admin's check must have run and been reported: {v:?}"
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
    let bin = bzzz_binary_async().await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, "cache-clear-token\n")?;
    TestCluster::scenario(3, context_mesh(&token_file), async |cluster| {
        cluster.wait_context_ready(Duration::from_secs(40)).await?;
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
        refused(
            api_of(node)?.dht_cache_clear().await,
            401,
            "cache clear without the token",
        )?;
        ensure!(
            node.client().local_get(theirs.clone()).await?.is_some(),
            "a refused clear removes nothing"
        );

        let token_arg = token_file.to_str().context("utf-8 temp path")?;
        let v: CacheClearReport = Cli::against(&bin, &api)
            .run(&["dht", "cache", "clear", "--token-file", token_arg, "--json"])
            .await?
            .ok("bzzz dht cache clear")?
            .json()?;
        ensure!(
            v.cached_records_removed >= 1 && v.context_records_kept >= 1 && v.own_records_kept >= 1,
            "cache clear counts: {v:?}"
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
    let bin = bzzz_binary_async().await?;
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
        let cli = Cli::against(&bin, &api);
        cli.run(&["backup", "--output", &file_arg])
            .await?
            .fails_with("a backup without the token", "BZZZ-401-UNAUTHORIZED")?;
        ensure!(!file.exists(), "a refused backup writes no file");
        let out = cli
            .run(&["backup", "--output", &file_arg, "--token-file", &token_arg])
            .await?
            .ok("bzzz backup")?;
        let stdout = out.text();
        ensure!(
            stdout.contains("sha256") && stdout.contains("identity key"),
            "bzzz backup:\n{stdout}\n{}",
            out.stderr
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
            let out = Cli::new(&bin)
                .run(&["restore", "--input", &path_arg(&f)?, "--data-dir", &bad_arg])
                .await?;
            ensure!(
                out.code == Some(1) && out.stderr.contains(reason) && out.stderr.contains(name),
                "{name}: expected a refusal naming {reason} and the file: {:?} {}",
                out.code,
                out.stderr
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
        let restorer = Cli::new(&bin);
        let restore = |extra: &'static [&'static str]| {
            let mut args = vec![
                "restore",
                "--input",
                file_arg.as_str(),
                "--data-dir",
                second_arg.as_str(),
            ];
            args.extend_from_slice(extra);
            let restorer = &restorer;
            async move { restorer.run(&args).await }
        };
        let out = restore(&[]).await?.ok("bzzz restore")?;
        let stdout = out.text();
        ensure!(
            stdout.contains("restored") && stdout.contains(&peer.to_string()),
            "bzzz restore:\n{stdout}\n{}",
            out.stderr
        );
        let node = Node::start(solo_config(&second_dir, &token_file)).await?;
        ensure!(node.peer_id() == peer, "same identity");
        let out = restore(&["--force"]).await?;
        ensure!(
            out.code == Some(1) && out.stderr.contains("in use"),
            "a database in use must be refused: {:?} {}",
            out.code,
            out.stderr
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
            out.code == Some(1) && out.stderr.contains("--force"),
            "a database with data must be refused without --force: {:?} {}",
            out.code,
            out.stderr
        );
        Ok(())
    })
    .await
}
