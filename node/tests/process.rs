//! Process-level test: real `bzzz` processes on loopback, driven with the real CLI verbs.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BZZZ: &str = env!("CARGO_BIN_EXE_bzzz");

/// Kills the child (SIGKILL) when dropped, so a failed test leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Ports {
    p2p: u16,
    api: u16,
    health: u16,
}

/// Three distinct free ports: the listeners are held until all three are bound, so the kernel
/// cannot hand out one port twice.
fn ports() -> Ports {
    let l: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    let port = |i: usize| l[i].local_addr().expect("local addr").port();
    Ports {
        p2p: port(0),
        api: port(1),
        health: port(2),
    }
}

fn spawn(dir: &std::path::Path, p: &Ports, mode: &str, bootstrap: Option<u16>) -> Proc {
    spawn_with(dir, p, mode, bootstrap, &[])
}

fn spawn_with(dir: &std::path::Path, p: &Ports, mode: &str, bootstrap: Option<u16>, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(BZZZ);
    cmd.arg("run")
        .arg("--data-dir")
        .arg(dir)
        .arg("--p2p-listen")
        .arg(format!("/ip4/127.0.0.1/tcp/{}", p.p2p))
        .arg("--api-listen")
        .arg(format!("127.0.0.1:{}", p.api))
        .arg("--health-listen")
        .arg(format!("127.0.0.1:{}", p.health))
        .arg("--mode")
        .arg(mode)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(b) = bootstrap {
        cmd.arg("--bootstrap").arg(format!("127.0.0.1:{b}"));
    }
    cmd.args(extra);
    Proc(cmd.spawn().expect("spawn bzzz run"))
}

fn cli(args: &[&str]) -> Output {
    Command::new(BZZZ).args(args).output().expect("run bzzz client verb")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `signal` to the child and waits up to `timeout` for it to exit; returns its exit code.
fn signal_and_wait(child: &mut Child, signal: &str, timeout: Duration) -> Option<i32> {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} failed");
    let started = Instant::now();
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            return code.code();
        }
        assert!(
            started.elapsed() < timeout,
            "did not exit within {timeout:?} of {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn healthy(url: &str) -> bool {
    cli(&["health", "--api", url]).status.success()
}

/// Three real processes (one bootstrap-mode, two agents): `test-p2p-message` and
/// `test-dht-operations` succeed, and `kill -9` of one agent leaves the other two healthy.
#[test]
fn three_processes_probe_store_and_survive_kill_9() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let (pb, p1, p2) = (ports(), ports(), ports());
    let _boot = spawn(dirs[0].path(), &pb, "bootstrap", None);
    let _a1 = spawn(dirs[1].path(), &p1, "agent", Some(pb.p2p));
    let mut a2 = spawn(dirs[2].path(), &p2, "agent", Some(pb.p2p));

    let boot_health = format!("http://127.0.0.1:{}", pb.health);
    let a1_api = format!("http://127.0.0.1:{}", p1.api);
    let a2_api = format!("http://127.0.0.1:{}", p2.api);

    wait_until("all three healthy", Duration::from_secs(60), || {
        healthy(&boot_health) && healthy(&a1_api) && healthy(&a2_api)
    });

    // The bootstrap node serves no agent API.
    let out = cli(&["status", "--api", &format!("http://127.0.0.1:{}", pb.api)]);
    assert!(!out.status.success(), "bootstrap mode must not serve the agent API");

    let mut probe_ok = false;
    for _ in 0..5 {
        let out = cli(&["test-p2p-message", "--api", &a1_api, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let receivers = v["receivers"].as_array().map(|r| r.len()).unwrap_or(0);
        if out.status.success() && receivers >= 2 {
            probe_ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        probe_ok,
        "test-p2p-message from agent 1 should be acknowledged by both other processes"
    );

    let out = cli(&["test-dht-operations", "--api", &a2_api, "--json"]);
    assert!(
        out.status.success(),
        "test-dht-operations failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["verified"], true, "dht round trip not verified: {v}");
    assert_eq!(v["replicated"], true, "dht put not replicated: {v}");
    // No node of this mesh is admin-eligible: no context index, so the encrypted part is skipped.
    assert!(
        v["context_skipped"].is_string(),
        "encrypted round trip not skipped: {v}"
    );

    // kill -9 agent 2.
    a2.0.kill().expect("SIGKILL agent 2");
    let _ = a2.0.wait();
    wait_until(
        "agent 1 and bootstrap healthy after kill -9",
        Duration::from_secs(30),
        || healthy(&boot_health) && healthy(&a1_api),
    );
    let out = cli(&["peers", "--api", &a1_api, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["count"], 1, "agent 1 should see only the bootstrap node: {v}");
}

/// Invalid configuration stops `bzzz run` at start with exit code 2 and a message naming the
/// field.
#[test]
fn invalid_config_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, "p2p:\n  max_connections: 0\n").expect("write config");
    let out = Command::new(BZZZ)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run bzzz");
    assert_eq!(out.status.code(), Some(2), "expected exit code 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p2p.max_connections"),
        "stderr should name the field: {err}"
    );

    std::fs::write(&cfg, "agent:\n  rol: x\n").expect("write config");
    let out = Command::new(BZZZ)
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rol"),
        "stderr should name the unknown field"
    );
}

/// SIGTERM stops a node gracefully with exit code 0 within a few seconds.
#[test]
fn sigterm_exits_zero_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ports();
    let mut node = spawn(dir.path(), &p, "agent", None);
    let api = format!("http://127.0.0.1:{}", p.api);
    wait_until("node healthy", Duration::from_secs(30), || healthy(&api));
    let code = signal_and_wait(&mut node.0, "-TERM", Duration::from_secs(10));
    assert_eq!(code, Some(0), "graceful shutdown must exit 0");
    // The data dir is intact and reusable: a restart has the same identity.
    assert!(dir.path().join("identity.key").exists());
}

/// `bzzz dev --nodes 3` (the README's run command) starts a mesh whose nodes all become healthy
/// and print their API URLs; Ctrl-C (SIGINT) stops it with exit code 0.
#[test]
fn dev_mesh_starts_prints_urls_and_stops_on_sigint() {
    use std::io::{BufRead, BufReader};
    let mut child = Proc(
        Command::new(BZZZ)
            .args(["dev", "--nodes", "3", "--api-port-base", "0"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bzzz dev"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut apis = Vec::new();
    while apis.len() < 3 {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("bzzz dev printed its node lines");
        if let Some(url) = line.split_whitespace().skip_while(|w| *w != "api").nth(1) {
            apis.push(url.to_string());
        }
    }
    wait_until("all dev nodes healthy", Duration::from_secs(60), || {
        apis.iter().all(|a| healthy(a))
    });
    let code = signal_and_wait(&mut child.0, "-INT", Duration::from_secs(15));
    assert_eq!(code, Some(0), "bzzz dev must exit 0 on Ctrl-C");
}

/// `bzzz health --local` asks 127.0.0.1 on the configured health port (the Docker healthcheck)
/// and exits 0 only when healthy; with nothing listening it exits non-zero.
#[test]
fn health_local_uses_the_configured_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ports();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, format!("health:\n  listen: \"127.0.0.1:{}\"\n", p.health)).expect("write config");
    let local = || {
        Command::new(BZZZ)
            .args(["health", "--local", "--config"])
            .arg(&cfg)
            .output()
            .expect("run bzzz health --local")
    };
    assert!(!local().status.success(), "nothing listens yet: must fail");
    let _node = spawn(dir.path(), &p, "agent", None);
    wait_until("health --local succeeds", Duration::from_secs(30), || {
        local().status.success()
    });
}

fn election(api: &str) -> serde_json::Value {
    let out = cli(&["election", "--api", api, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// The admin every answering process names, if all of `apis` answer and agree.
fn agreed_admin(apis: &[String]) -> Option<String> {
    let admins: std::collections::BTreeSet<Option<String>> = apis
        .iter()
        .map(|a| election(a)["admin"].as_str().map(String::from))
        .collect();
    match admins.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(a)] => Some(a.clone()),
        _ => None,
    }
}

/// Five real processes with `--admin-eligible --bootstrap-expect 3`: all agree on one admin;
/// after `kill -9` of the admin, the other four agree on a new one (`bzzz election` and
/// `bzzz status` show it).
#[test]
fn five_processes_elect_and_fail_over_after_kill_9() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let ports: Vec<Ports> = (0..5).map(|_| ports()).collect();
    let mut procs: Vec<Option<Proc>> = Vec::new();
    for i in 0..5 {
        let boot = (i > 0).then(|| ports[0].p2p);
        procs.push(Some(spawn_with(
            dirs[i].path(),
            &ports[i],
            "agent",
            boot,
            &["--admin-eligible", "--bootstrap-expect", "3"],
        )));
    }
    let apis: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{}", p.api)).collect();
    let mut admin = None;
    wait_until("all five agree on one admin", Duration::from_secs(60), || {
        admin = agreed_admin(&apis);
        admin.is_some()
    });
    let admin = admin.expect("agreed admin");
    let idx = apis
        .iter()
        .position(|a| election(a)["is_admin"] == true)
        .expect("one process says it is the admin");
    assert_eq!(election(&apis[idx])["admin"].as_str(), Some(admin.as_str()));

    let mut victim = procs[idx].take().expect("admin process");
    victim.0.kill().expect("kill -9 the admin");
    let _ = victim.0.wait();
    let survivors: Vec<String> = apis
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != idx)
        .map(|(_, a)| a.clone())
        .collect();
    let started = Instant::now();
    wait_until("survivors agree on a new admin", Duration::from_secs(60), || {
        agreed_admin(&survivors).is_some_and(|a| a != admin)
    });
    eprintln!(
        "process failover: new admin agreed by 4 survivors {:?} after kill -9",
        started.elapsed()
    );
    let out = cli(&["status", "--api", &survivors[0]]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("admin:"), "bzzz status shows the admin: {text}");
}
