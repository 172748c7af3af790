//! Process-level tests: real `bzzz` processes on loopback, driven with the real CLI verbs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bzzz_client::ApiClient;
use bzzz_client::types::{DhtTestReport, PeerList, ProbeReport};
use bzzz_tests::process::{Cli, Daemon, Launch, Ports, Signal, agreed_admin, bzzz_binary_async, election_view};
use bzzz_tests::wait_for;

/// `bzzz run --mode <mode>` on `ports`, bootstrapping through `127.0.0.1:<bootstrap>`.
fn spawn(bin: &Path, dir: &Path, ports: Ports, mode: &str, bootstrap: Option<u16>, extra: &[&str]) -> Result<Daemon> {
    let mut launch = Launch::node(bin, dir, ports, mode);
    if let Some(b) = bootstrap {
        launch = launch.bootstrap(format!("127.0.0.1:{b}"));
    }
    launch.args(extra).spawn()
}

/// Whether `bzzz health --api <url>` exits 0.
async fn healthy(bin: &Path, url: &str) -> bool {
    Cli::new(bin)
        .run(&["health", "--api", url])
        .await
        .is_ok_and(|r| r.success())
}

/// Three real processes (one bootstrap-mode, two agents): `test-p2p-message` and
/// `test-dht-operations` succeed, and `kill -9` of one agent leaves the other two healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_probe_store_and_survive_kill_9() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let (pb, p1, p2) = (Ports::free()?, Ports::free()?, Ports::free()?);
    let _boot = spawn(&bin, dirs[0].path(), pb, "bootstrap", None, &[])?;
    let _a1 = spawn(&bin, dirs[1].path(), p1, "agent", Some(pb.p2p), &[])?;
    let mut a2 = spawn(&bin, dirs[2].path(), p2, "agent", Some(pb.p2p), &[])?;

    let boot_health = pb.health_url();
    let (a1_api, a2_api) = (p1.api_url(), p2.api_url());

    wait_for("all three healthy", Duration::from_secs(60), || async {
        healthy(&bin, &boot_health).await && healthy(&bin, &a1_api).await && healthy(&bin, &a2_api).await
    })
    .await?;

    // The bootstrap node serves no agent API.
    let out = Cli::against(&bin, &pb.api_url()).run(&["status"]).await?;
    ensure!(!out.success(), "bootstrap mode must not serve the agent API");

    let a1 = Cli::against(&bin, &a1_api);
    let mut probe_ok = false;
    for _ in 0..5 {
        let out = a1.run(&["test-p2p-message", "--json"]).await?;
        let receivers = out.json::<ProbeReport>().map(|r| r.receivers.len()).unwrap_or(0);
        if out.success() && receivers >= 2 {
            probe_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(
        probe_ok,
        "test-p2p-message from agent 1 should be acknowledged by both other processes"
    );

    let v: DhtTestReport = Cli::against(&bin, &a2_api)
        .run(&["test-dht-operations", "--json"])
        .await?
        .ok("test-dht-operations")?
        .json()?;
    ensure!(v.verified, "dht round trip not verified: {v:?}");
    ensure!(v.replicated, "dht put not replicated: {v:?}");
    // No node of this mesh is admin-eligible: no context index, so the encrypted part is skipped.
    ensure!(v.context_skipped.is_some(), "encrypted round trip not skipped: {v:?}");

    a2.kill()?;
    wait_for(
        "agent 1 and bootstrap healthy after kill -9",
        Duration::from_secs(30),
        || async { healthy(&bin, &boot_health).await && healthy(&bin, &a1_api).await },
    )
    .await?;
    let v: PeerList = a1.run(&["peers", "--json"]).await?.ok("peers")?.json()?;
    ensure!(v.count == 1, "agent 1 should see only the bootstrap node: {v:?}");
    Ok(())
}

/// Invalid configuration stops `bzzz run` at start with exit code 2 and a message naming the
/// field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_refused_naming_the_field() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("config.yaml");
    let cfg_arg = cfg.to_str().context("utf-8 temp path")?;
    let cli = Cli::new(&bin);
    std::fs::write(&cfg, "p2p:\n  max_connections: 0\n")?;
    let out = cli.run(&["run", "--config", cfg_arg]).await?;
    ensure!(out.code == Some(2), "expected exit code 2: {out:?}");
    ensure!(
        out.stderr.contains("p2p.max_connections"),
        "stderr should name the field: {}",
        out.stderr
    );

    std::fs::write(&cfg, "agent:\n  rol: x\n")?;
    let out = cli.run(&["run", "--config", cfg_arg]).await?;
    ensure!(out.code == Some(2), "expected exit code 2: {out:?}");
    ensure!(
        out.stderr.contains("rol"),
        "stderr should name the unknown field: {}",
        out.stderr
    );
    Ok(())
}

/// SIGTERM stops a node gracefully with exit code 0 within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_quickly() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dir = tempfile::tempdir()?;
    let p = Ports::free()?;
    let mut node = spawn(&bin, dir.path(), p, "agent", None, &[])?;
    let api = p.api_url();
    wait_for("node healthy", Duration::from_secs(30), || healthy(&bin, &api)).await?;
    let code = node.signal_and_wait(Signal::SIGTERM, Duration::from_secs(10)).await?;
    ensure!(code == Some(0), "graceful shutdown must exit 0, got {code:?}");
    // The data dir is intact and reusable: a restart has the same identity.
    ensure!(dir.path().join("identity.key").exists(), "identity.key kept");
    Ok(())
}

/// `bzzz dev --nodes 3` (the README's run command) starts a mesh whose nodes all become healthy
/// and print their API URLs; Ctrl-C (SIGINT) stops it with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mesh_starts_prints_urls_and_stops_on_sigint() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let mut child = Launch::new(&bin, ["dev", "--nodes", "3", "--api-port-base", "0"])
        .env("RUST_LOG", "error")
        .stdout_piped()
        .spawn()?;
    let stdout = child.take_stdout().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let apis = tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let mut apis = Vec::new();
        while apis.len() < 3 {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .context("bzzz dev printed its node lines")?;
            if let Some(url) = line.split_whitespace().skip_while(|w| *w != "api").nth(1) {
                apis.push(url.to_string());
            }
        }
        Ok(apis)
    })
    .await??;
    wait_for("all dev nodes healthy", Duration::from_secs(60), || async {
        for a in &apis {
            if !healthy(&bin, a).await {
                return false;
            }
        }
        true
    })
    .await?;
    let code = child.signal_and_wait(Signal::SIGINT, Duration::from_secs(15)).await?;
    ensure!(code == Some(0), "bzzz dev must exit 0 on Ctrl-C, got {code:?}");
    Ok(())
}

/// `bzzz health --local` asks 127.0.0.1 on the configured health port (the Docker healthcheck)
/// and exits 0 only when healthy; with nothing listening it exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_local_uses_the_configured_port() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dir = tempfile::tempdir()?;
    let p = Ports::free()?;
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, format!("health:\n  listen: \"127.0.0.1:{}\"\n", p.health))?;
    let cfg_arg = cfg.to_str().context("utf-8 temp path")?;
    let cli = Cli::new(&bin);
    let local_args = ["health", "--local", "--config", cfg_arg];
    let local = || cli.run(&local_args);
    ensure!(!local().await?.success(), "nothing listens yet: must fail");
    let _node = spawn(&bin, dir.path(), p, "agent", None, &[])?;
    wait_for("health --local succeeds", Duration::from_secs(30), || async {
        local().await.is_ok_and(|r| r.success())
    })
    .await?;
    Ok(())
}

/// Five real processes with `--admin-eligible --bootstrap-expect 3`: all agree on one admin;
/// after `kill -9` of the admin, the other four agree on a new one (`bzzz status` shows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_elect_and_fail_over_after_kill_9() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let ports: Vec<Ports> = (0..5).map(|_| Ports::free()).collect::<Result<_>>()?;
    let mut procs: Vec<Option<Daemon>> = Vec::new();
    for i in 0..5 {
        let boot = (i > 0).then(|| ports[0].p2p);
        procs.push(Some(spawn(
            &bin,
            dirs[i].path(),
            ports[i],
            "agent",
            boot,
            &["--admin-eligible", "--bootstrap-expect", "3"],
        )?));
    }
    let apis: Vec<ApiClient> = ports
        .iter()
        .map(|p| ApiClient::with_timeout(&p.api_url(), Duration::from_secs(5)))
        .collect::<Result<_, _>>()?;
    wait_for("all five agree on one admin", Duration::from_secs(60), || async {
        agreed_admin(&apis).await.is_some()
    })
    .await?;
    let (admin, _) = agreed_admin(&apis).await.context("agreed admin")?;
    let mut idx = None;
    for (i, api) in apis.iter().enumerate() {
        if election_view(api).await.is_some_and(|v| v.is_admin) {
            idx = Some(i);
        }
    }
    let idx = idx.context("one process says it is the admin")?;
    let named = election_view(&apis[idx]).await.and_then(|v| v.admin);
    ensure!(named.as_deref() == Some(admin.as_str()), "the admin names itself");

    procs[idx].take().context("admin process")?.kill()?;
    let survivors: Vec<ApiClient> = apis
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != idx)
        .map(|(_, a)| a.clone())
        .collect();
    let started = Instant::now();
    wait_for("survivors agree on a new admin", Duration::from_secs(60), || async {
        agreed_admin(&survivors).await.is_some_and(|(a, _)| a != admin)
    })
    .await?;
    eprintln!(
        "process failover: new admin agreed by 4 survivors {:?} after kill -9",
        started.elapsed()
    );
    let out = Cli::against(&bin, survivors[0].base_url()).run(&["status"]).await?;
    let text = out.text();
    ensure!(text.contains("admin:"), "bzzz status shows the admin: {text}");
    Ok(())
}

/// `bzzz run` refuses to start without a mesh key, with exit code 2 and an error naming
/// `p2p.swarm_key_file` and how to make one; with `--insecure-open-mesh` it starts, says so in
/// its log, in `/api/status` and in `bzzz_p2p_insecure_open_mesh`; with a key from `bzzz keygen
/// mesh-key` it starts as a private network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bzzz_run_needs_a_mesh_key_or_an_explicit_open_mesh() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let dir = tempfile::tempdir()?;
    let ports = Ports::free()?;
    let base = |data: &str| {
        Launch::new(
            &bin,
            [
                "run".to_string(),
                "--data-dir".into(),
                dir.path().join(data).display().to_string(),
                "--p2p-listen".into(),
                ports.p2p_multiaddr(),
                "--api-listen".into(),
                format!("127.0.0.1:{}", ports.api),
                "--health-listen".into(),
                format!("127.0.0.1:{}", ports.health),
            ],
        )
        .clean_env()
        .env("RUST_LOG", "warn")
    };

    let mut refused = base("refused").log_to(dir.path().join("refused.log")).spawn()?;
    let code = refused.wait_exit(Duration::from_secs(20)).await?;
    ensure!(
        code == Some(2),
        "expected exit code 2, got {code:?}:\n{}",
        refused.log()
    );
    let log = refused.log();
    ensure!(
        log.contains("p2p.swarm_key_file")
            && log.contains("bzzz keygen mesh-key")
            && log.contains("--insecure-open-mesh"),
        "the error must name the field and both ways out:\n{log}"
    );

    let open = base("open")
        .args(["--insecure-open-mesh"])
        .log_to(dir.path().join("open.log"))
        .ports(ports)
        .spawn()?;
    let api = open.api()?;
    wait_for(
        "the open-mesh node answers /api/status",
        Duration::from_secs(30),
        || async { api.status().await.is_ok() },
    )
    .await
    .with_context(|| open.log())?;
    let status = api.status().await?;
    ensure!(
        status.security.insecure_open_mesh && !status.security.mesh_key,
        "/api/status must show the open mesh: {:?}",
        status.security
    );
    let metrics = open.health()?.metrics_text().await?;
    ensure!(
        metrics.contains("\nbzzz_p2p_insecure_open_mesh 1"),
        "the metric must show the open mesh"
    );
    ensure!(
        open.log().contains("INSECURE OPEN MESH"),
        "the log must say it loudly:\n{}",
        open.log()
    );
    open.stop().await?;

    let key = dir.path().join("mesh.key");
    let made = Cli::new(&bin)
        .run(&["keygen", "mesh-key", "--out", &key.display().to_string()])
        .await?;
    ensure!(made.success(), "keygen failed: {}", made.text());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)?.permissions().mode();
        ensure!(mode & 0o077 == 0, "the mesh key must be private, mode {mode:o}");
    }
    let again = Cli::new(&bin)
        .run(&["keygen", "mesh-key", "--out", &key.display().to_string()])
        .await?;
    ensure!(!again.success(), "keygen must never replace a key file");
    let private = base("private")
        .args(["--swarm-key-file", &key.display().to_string()])
        .log_to(dir.path().join("private.log"))
        .ports(ports)
        .spawn()?;
    let api = private.api()?;
    wait_for(
        "the private node answers /api/status",
        Duration::from_secs(30),
        || async { api.status().await.is_ok() },
    )
    .await
    .with_context(|| private.log())?;
    let status = api.status().await?;
    ensure!(
        status.security.mesh_key && !status.security.insecure_open_mesh,
        "{:?}",
        status.security
    );
    ensure!(!private.log().contains("INSECURE OPEN MESH"), "{}", private.log());
    private.stop().await?;
    Ok(())
}
