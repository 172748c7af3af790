//! The `bzzz context` and `bzzz roles` verbs, and the encrypted round trip of
//! `bzzz test-dht-operations`, run as the real `bzzz` binary against a 3-node mesh.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_client::types::{DhtTestReport, Discovered, History, PutResult, RoleGranted, RolesView};
use bzzz_tests::TestCluster;
use bzzz_tests::process::{Cli, bzzz_binary_async};
use serde_json::Value;

/// The operator token the nodes are configured with (the file adds a newline the CLI must trim).
const TOKEN: &str = "t41-operator-token-5f3a";

/// Whether `roles list --json` output has a grant of `role` to `peer`.
fn has_grant(v: &RolesView, role: &str, peer: &str) -> bool {
    v.grants.iter().any(|g| g.role == role && g.peer_id == peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_and_roles_verbs_against_a_mesh() -> Result<()> {
    // Build (or find) the binary before the clock of the scenario starts.
    let bin = bzzz_binary_async().await?;
    let secrets = tempfile::tempdir()?;
    let token_file = secrets.path().join("operator-token");
    std::fs::write(&token_file, format!("{TOKEN}\n"))?;
    let work = tempfile::tempdir()?;
    let tf = token_file.clone();
    let tweak = move |i: usize, c: &mut bzzz_node::Config| {
        if i == 0 {
            c.election.eligible = true;
            c.election.bootstrap_expect = 1;
        }
        c.api.operator_token_file = Some(tf.clone());
    };
    TestCluster::scenario(3, tweak, async |cluster| {
        cluster.wait_context_ready(Duration::from_secs(40)).await?;
        let api = format!("http://{}", cluster.node(1).api_addr().context("node 1 has an api")?);
        let cli = Cli::against(&bin, &api);

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
        let v: PutResult = out.json()?;
        ensure!(v.version == 2 && !v.tombstone, "put --json: {v:?}");
        ensure!(v.replicas >= 1, "put --json replicas: {v:?}");

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
        // `get --json` prints the CLI's own view of a version (not an API answer).
        let v: Value = cli
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
        let v: History = cli
            .run(&["context", "history", a, "--json", "--limit", "10"])
            .await?
            .ok("history --json")?
            .json()?;
        ensure!(v.total == 2 && v.versions.len() == 2, "history --json: {v:?}");
        let v: History = cli
            .run(&["context", "history", a, "--json", "--limit", "1"])
            .await?
            .ok("history --limit 1")?
            .json()?;
        ensure!(v.total == 2 && v.versions.len() == 1, "history --limit 1: {v:?}");

        // discover finds both addresses.
        let pattern = "ucxl://any:any@proj:any";
        let out = cli.run(&["context", "discover", pattern]).await?.ok("discover")?;
        let text = out.text();
        ensure!(
            text.contains("notes/a.md") && text.contains("blobs/b.bin") && text.contains("2 addresses"),
            "discover text: {text}"
        );
        let v: Discovered = cli
            .run(&["context", "discover", pattern, "--json"])
            .await?
            .ok("discover --json")?
            .json()?;
        ensure!(
            v.addresses
                .iter()
                .any(|x| x.address.ends_with("notes/a.md") && x.version == 2),
            "discover --json: {v:?}"
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
        let v: RolesView = cli.run(&["roles", "list", "--json"]).await?.ok("roles list")?.json()?;
        ensure!(v.roles.iter().any(|r| r.name == "agent"), "roles list: {v:?}");
        for (i, n) in cluster.running() {
            ensure!(
                has_grant(&v, "agent", &n.peer_id().to_string()),
                "node {i} has no agent grant: {v:?}"
            );
        }
        let agent_grants = v.grants.iter().filter(|g| g.role == "agent").count();
        ensure!(agent_grants == 3, "expected 3 agent grants: {v:?}");
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
        let v: RoleGranted = cli
            .run_with(
                &["roles", "grant", "operator", "--peer", &peer0, "--json"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &token_file)],
            )
            .await?
            .ok("grant with BZZZ_OPERATOR_TOKEN_FILE")?
            .json()?;
        ensure!(v.granted && v.role == "operator", "grant --json: {v:?}");
        // The grants go through the admin's Raft log: node 1 may show them a moment later.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v: RolesView = cli
                .run(&["roles", "list", "--json"])
                .await?
                .ok("roles list after grants")?
                .json()?;
            if has_grant(&v, "operator", &peer2) && has_grant(&v, "operator", &peer0) {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("roles list does not show the operator grants after 10 s: {v:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The encrypted round trip of test-dht-operations.
        let v: DhtTestReport = cli
            .run(&["test-dht-operations", "--json"])
            .await?
            .ok("test-dht-operations --json")?
            .json()?;
        ensure!(v.verified, "dht round trip: {v:?}");
        ensure!(
            v.context.as_ref().is_some_and(|c| c.verified),
            "encrypted round trip not verified (context_error: {:?}): {v:?}",
            v.context_error
        );
        let out = cli.run(&["test-dht-operations"]).await?.ok("test-dht-operations")?;
        let text = out.text();
        ensure!(
            text.lines()
                .any(|l| l.starts_with("encrypted round trip: put ") && l.contains("verified: true")),
            "test-dht-operations text: {text}"
        );
        Ok(())
    })
    .await
}
