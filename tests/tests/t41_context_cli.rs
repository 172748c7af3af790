//! The `bzzz context` and `bzzz roles` verbs, and the encrypted round trip of
//! `bzzz test-dht-operations`, run as the real `bzzz` binary against a 3-node mesh.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_tests::{TestCluster, bounded, exclusive};
use serde_json::Value;

/// The operator token the nodes are configured with (the file adds a newline the CLI must trim).
const TOKEN: &str = "t41-operator-token-5f3a";

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.stdout).with_context(|| format!("stdout is not JSON: {}", self.text()))
    }

    /// Fails unless the run exited 0.
    fn ok(self, what: &str) -> Result<Run> {
        ensure!(
            self.code == Some(0),
            "{what}: exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.text(),
            self.stderr
        );
        Ok(self)
    }

    /// Fails unless the run exited 1 with `code` on stderr and nothing on stdout.
    fn fails_with(self, what: &str, code: &str) -> Result<()> {
        ensure!(
            self.code == Some(1) && self.stderr.contains(code) && self.stderr.starts_with("error: "),
            "{what}: expected exit 1 with {code} on stderr, got exit {:?}\nstdout: {}\nstderr: {}",
            self.code,
            self.text(),
            self.stderr
        );
        ensure!(self.stdout.is_empty(), "{what}: stdout must be empty: {}", self.text());
        Ok(())
    }
}

/// The `bzzz` client talking to one node's API.
struct Bzzz {
    bin: PathBuf,
    api: String,
}

impl Bzzz {
    /// Runs `bzzz <args> --api <api>` with `stdin` as input and `env` set.
    async fn run_with(&self, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Result<Run> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .args(["--api", &self.api, "--timeout-secs", "20"])
            .env_remove("BZZZ_API")
            .env_remove("BZZZ_OPERATOR_TOKEN_FILE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let stdin = stdin.to_vec();
        let what = args.join(" ");
        let out = tokio::task::spawn_blocking(move || -> Result<std::process::Output> {
            let mut child = cmd.spawn()?;
            let mut input = child.stdin.take().context("child stdin")?;
            // Feed stdin from a thread so a child that writes before it reads cannot block us.
            let writer = std::thread::spawn(move || std::io::Write::write_all(&mut input, &stdin));
            let out = child.wait_with_output()?;
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("stdin writer panicked"))?
                .or_else(|e| {
                    // The child may exit without reading stdin (every verb but `put`).
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            Ok(out)
        })
        .await?
        .with_context(|| format!("running bzzz {what}"))?;
        Ok(Run {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn run(&self, args: &[&str]) -> Result<Run> {
        self.run_with(args, b"", &[]).await
    }
}

/// Whether `roles list --json` output has a grant of `role` to `peer`.
fn has_grant(v: &Value, role: &str, peer: &str) -> bool {
    v["grants"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g["role"] == role && g["peer_id"] == peer))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_and_roles_verbs_against_a_mesh() -> Result<()> {
    // Build (or find) the binary before the clock of the scenario starts.
    let bin = tokio::task::spawn_blocking(bzzz_tests::bzzz_binary).await??;
    let _guard = exclusive().await;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    let work = tempfile::tempdir()?;
    bounded(async {
        let tf = token_file.clone();
        let mut cluster = TestCluster::start_with(3, move |i, c| {
            if i == 0 {
                c.election.eligible = true;
                c.election.bootstrap_expect = 1;
            }
            c.api.operator_token_file = Some(tf.clone());
        })
        .await?;
        cluster.wait_context_ready(Duration::from_secs(40)).await?;
        let cli = Bzzz {
            bin: bin.clone(),
            api: format!("http://{}", cluster.node(1).api_addr().context("node 1 has an api")?),
        };

        // put from stdin, then from --file: two versions.
        let a = "ucxl://alice:agent@proj:task1/notes/a.md";
        let first = b"first version of the notes\n".to_vec();
        let out = cli
            .run_with(&["context", "put", a], &first, &[])
            .await?
            .ok("put stdin")?;
        let line = out.text();
        ensure!(
            line.starts_with("wrote ucxl://") && line.contains("version 1 (") && line.contains("replicas, record "),
            "put output: {line}"
        );
        let second = "second version: ünïcödé, spaces & symbols ?=#%\n".as_bytes().to_vec();
        let second_file = work.path().join("second.md");
        std::fs::write(&second_file, &second)?;
        let file_arg = second_file.to_str().context("utf-8 temp path")?;
        let out = cli
            .run(&["context", "put", a, "--file", file_arg, "--json"])
            .await?
            .ok("put --file")?;
        let v = out.json()?;
        ensure!(v["version"] == 2 && v["tombstone"] == false, "put --json: {v}");
        ensure!(
            v["replicas"].as_u64().is_some_and(|r| r >= 1),
            "put --json replicas: {v}"
        );

        // get returns exactly the latest bytes, and nothing else on stdout.
        let out = cli.run(&["context", "get", a]).await?.ok("get a")?;
        ensure!(out.stdout == second, "get a returned {:?}", out.text());

        // A binary blob (not UTF-8) round-trips through stdin, stdout and --output.
        let blob_addr = "ucxl://alice:agent@proj:task1/blobs/b.bin";
        let blob: Vec<u8> = (0..=255u8)
            .rev()
            .chain([0xff, 0xfe, 0x00, 0xc3, 0x28, b'\n', 0x80])
            .collect();
        ensure!(std::str::from_utf8(&blob).is_err(), "the blob must not be UTF-8");
        cli.run_with(&["context", "put", blob_addr], &blob, &[])
            .await?
            .ok("put blob")?;
        let out = cli.run(&["context", "get", blob_addr]).await?.ok("get blob")?;
        ensure!(out.stdout == blob, "get blob: {} bytes differ", out.stdout.len());
        let blob_out = work.path().join("blob.out");
        let out = cli
            .run(&[
                "context",
                "get",
                blob_addr,
                "--output",
                blob_out.to_str().context("utf-8 temp path")?,
            ])
            .await?
            .ok("get blob --output")?;
        ensure!(out.stdout.is_empty(), "get --output wrote to stdout: {}", out.text());
        ensure!(std::fs::read(&blob_out)? == blob, "get --output: file differs");
        let v = cli
            .run(&["context", "get", blob_addr, "--json"])
            .await?
            .ok("get blob --json")?
            .json()?;
        ensure!(
            v["size"] == blob.len() && v["version"] == 1 && v["latest"] == 1 && v["role"] == "agent",
            "get --json: {v}"
        );
        ensure!(
            v["address"].as_str().is_some_and(|s| s.contains("blobs/b.bin"))
                && v["record_key"].as_str().is_some_and(|s| s.len() == 64)
                && v["created_ms"].as_u64().is_some_and(|t| t > 0)
                && v["author"].is_string(),
            "get --json fields: {v}"
        );

        // history: two versions.
        let out = cli.run(&["context", "history", a]).await?.ok("history")?;
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        ensure!(
            lines.len() == 3 && lines[0].contains("2 versions"),
            "history text: {text}"
        );
        ensure!(
            lines[1].contains("v1") && lines[2].contains("v2"),
            "history order: {text}"
        );
        let v = cli
            .run(&["context", "history", a, "--json", "--limit", "10"])
            .await?
            .ok("history --json")?
            .json()?;
        ensure!(
            v["total"] == 2 && v["versions"].as_array().is_some_and(|vs| vs.len() == 2),
            "history --json: {v}"
        );
        let v = cli
            .run(&["context", "history", a, "--json", "--limit", "1"])
            .await?
            .ok("history --limit 1")?
            .json()?;
        ensure!(
            v["total"] == 2 && v["versions"].as_array().is_some_and(|vs| vs.len() == 1),
            "history --limit 1: {v}"
        );

        // discover finds both addresses.
        let pattern = "ucxl://any:any@proj:any";
        let out = cli.run(&["context", "discover", pattern]).await?.ok("discover")?;
        let text = out.text();
        ensure!(
            text.contains("notes/a.md") && text.contains("blobs/b.bin") && text.contains("2 addresses"),
            "discover text: {text}"
        );
        let v = cli
            .run(&["context", "discover", pattern, "--json"])
            .await?
            .ok("discover --json")?
            .json()?;
        let found = v["addresses"].as_array().context("addresses")?;
        ensure!(
            found
                .iter()
                .any(|x| x["address"].as_str().is_some_and(|s| s.ends_with("notes/a.md")) && x["version"] == 2),
            "discover --json: {v}"
        );

        // delete, then get is a 404.
        let out = cli.run(&["context", "delete", a]).await?.ok("delete")?;
        let text = out.text();
        ensure!(
            text.starts_with("deleted ucxl://") && text.contains("at version 3"),
            "delete text: {text}"
        );
        cli.run(&["context", "get", a])
            .await?
            .fails_with("get after delete", "UCXL-404-NOT_FOUND")?;
        cli.run(&["context", "get", "ucxl://bad"])
            .await?
            .fails_with("get bad address", "UCXL-400-INVALID_ADDRESS")?;

        // roles: the agent role with every node's grant.
        let v = cli.run(&["roles", "list", "--json"]).await?.ok("roles list")?.json()?;
        ensure!(
            v["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["name"] == "agent")),
            "roles list: {v}"
        );
        for (i, n) in cluster.running() {
            ensure!(
                has_grant(&v, "agent", &n.peer_id().to_string()),
                "node {i} has no agent grant: {v}"
            );
        }
        let agent_grants = v["grants"]
            .as_array()
            .map(|g| g.iter().filter(|g| g["role"] == "agent").count());
        ensure!(agent_grants == Some(3), "expected 3 agent grants: {v}");
        let out = cli.run(&["roles", "list"]).await?.ok("roles list text")?;
        let text = out.text();
        ensure!(
            text.contains("3 grants") && text.contains("agent") && text.contains("0 pending"),
            "roles list text: {text}"
        );

        // grant: refused without the operator token, accepted with it (file flag and env).
        let peer2 = cluster.node(2).peer_id().to_string();
        cli.run(&["roles", "grant", "operator", "--peer", &peer2])
            .await?
            .fails_with("grant without token", "UNAUTHORIZED")?;
        let tf = token_file.to_str().context("utf-8 temp path")?;
        let out = cli
            .run(&["roles", "grant", "operator", "--peer", &peer2, "--token-file", tf])
            .await?
            .ok("grant with --token-file")?;
        ensure!(
            out.text().trim() == format!("granted role operator to {peer2}"),
            "grant text: {}",
            out.text()
        );
        ensure!(
            !out.text().contains(TOKEN) && !out.stderr.contains(TOKEN),
            "the token must never be printed"
        );
        let peer0 = cluster.node(0).peer_id().to_string();
        let v = cli
            .run_with(
                &["roles", "grant", "operator", "--peer", &peer0, "--json"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &token_file)],
            )
            .await?
            .ok("grant with BZZZ_OPERATOR_TOKEN_FILE")?
            .json()?;
        ensure!(v["granted"] == true && v["role"] == "operator", "grant --json: {v}");
        // The grants go through the admin's Raft log: node 1 may show them a moment later.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = cli
                .run(&["roles", "list", "--json"])
                .await?
                .ok("roles list after grants")?
                .json()?;
            if has_grant(&v, "operator", &peer2) && has_grant(&v, "operator", &peer0) {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("roles list does not show the operator grants after 10 s: {v}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The encrypted round trip of test-dht-operations.
        let v = cli
            .run(&["test-dht-operations", "--json"])
            .await?
            .ok("test-dht-operations --json")?
            .json()?;
        ensure!(v["verified"] == true, "dht round trip: {v}");
        ensure!(
            v["context"]["verified"] == true,
            "encrypted round trip not verified (context_error: {}): {v}",
            v["context_error"]
        );
        let out = cli.run(&["test-dht-operations"]).await?.ok("test-dht-operations")?;
        let text = out.text();
        ensure!(
            text.lines()
                .any(|l| l.starts_with("encrypted round trip: put ") && l.contains("verified: true")),
            "test-dht-operations text: {text}"
        );

        cluster.shutdown().await;
        Ok(())
    })
    .await
}
