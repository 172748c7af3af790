//! Join tokens end to end (kubeadm-style, ADR 0014): an operator creates a token with the `bzzz`
//! CLI on a voter; a real `bzzz run` process given only the token, the cluster fingerprint and a
//! bootstrap address obtains its certificate from the voter, holds exactly the roles the token
//! allowed, and restarts with the stored certificate. Used-up, expired, revoked, unknown and
//! wrong-cluster tokens are refused with a clear error at the joining node, which exits.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bzzz_client::types::{JoinTokenInfo, JoinTokenList};
use bzzz_tests::process::{Cli, Daemon, Launch, Ports, bzzz_binary_async};
use bzzz_tests::{ClusterCredentials, TestCluster, wait_for};

const WAIT: Duration = Duration::from_secs(30);
const OPERATOR_TOKEN: &str = "join-token-test-operator-7c2e";

/// One voter (the admin, holding the test issuer) with an operator token.
fn voter(dir: &Path) -> impl Fn(usize, &mut bzzz_node::Config) + use<> {
    let token_file = dir.join("operator-token");
    std::fs::write(&token_file, format!("{OPERATOR_TOKEN}\n")).expect("write the operator token");
    move |_, c| {
        c.election.eligible = true;
        c.election.bootstrap_expect = 1;
        c.api.operator_token_file = Some(token_file.clone());
        let mut developer = c.roles.policy["agent"].clone();
        developer.authority = 20;
        developer.self_service = false;
        c.roles.policy.insert("developer".into(), developer);
    }
}

/// `bzzz join-token create --json` against node 0; returns the token text and what the cluster
/// stored.
async fn create_token(cli: &Cli, token_file: &Path, args: &[&str]) -> Result<(String, JoinTokenInfo)> {
    let mut all = vec!["join-token", "create", "--json"];
    all.extend_from_slice(args);
    let run = cli
        .run_with(&all, b"", &[("BZZZ_OPERATOR_TOKEN_FILE", token_file)])
        .await?
        .ok("join-token create")?;
    let v: serde_json::Value = run.json()?;
    let token = v["token"].as_str().context("token in the output")?.to_owned();
    let info: JoinTokenInfo = serde_json::from_value(v["info"].clone())?;
    Ok((token, info))
}

/// A `bzzz run` process with no certificate: the token in a file, the fingerprint, node 0 as
/// bootstrap peer, the cluster's mesh key. Its log goes to `<dir>/node.log`.
fn joiner(
    bin: &Path,
    dir: &Path,
    creds: &ClusterCredentials,
    boot: &str,
    token: &str,
    fingerprint: &str,
) -> Result<Daemon> {
    std::fs::create_dir_all(dir)?;
    let token_file = dir.join("join-token");
    std::fs::write(&token_file, token)?;
    let ports = Ports::free()?;
    Launch::new(bin, ["run", "--data-dir"])
        .args([dir.as_os_str()])
        .args(["--swarm-key-file"])
        .args([creds.mesh_key_file().as_os_str()])
        .args(["--p2p-listen", &ports.p2p_multiaddr()])
        .args(["--api-listen", &format!("127.0.0.1:{}", ports.api)])
        .args(["--health-listen", &format!("127.0.0.1:{}", ports.health)])
        .clean_env()
        .env("RUST_LOG", "info")
        .env("BZZZ_JOIN_TOKEN_FILE", &token_file)
        .env("BZZZ_CA_FINGERPRINT", fingerprint)
        .env("BZZZ_BOOTSTRAP_PEERS", boot)
        .env("BZZZ_JOIN_TIMEOUT_MS", "4000")
        .ports(ports)
        .log_to(dir.join("node.log"))
        .spawn()
}

/// Waits for a joiner to exit with an error, and returns its log.
async fn refused(mut d: Daemon, what: &str) -> Result<String> {
    let code = d.wait_exit(Duration::from_secs(20)).await?;
    let log = d.log();
    ensure!(
        code.is_some_and(|c| c != 0),
        "{what}: the joining node must exit with an error, got {code:?}\n{log}"
    );
    Ok(log)
}

/// A fresh process joins with a token, holds exactly the token's roles, appears as used in
/// `join-token list`, and restarts on its stored certificate; a second node with the same
/// single-use token is refused as used up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_joins_with_a_token_and_keeps_its_certificate() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let secrets = tempfile::tempdir()?;
    let operator_token = secrets.path().join("operator-token");
    TestCluster::scenario(1, voter(secrets.path()), async |cluster| {
        cluster.wait_context_ready(WAIT).await?;
        let api = cluster.node(0).api_addr().context("node 0 has an API")?;
        let cli = Cli::against(&bin, &format!("http://{api}"));
        let fingerprint = cluster.credentials().cluster_id();
        let boot = cluster.node(0).p2p_addrs()[0].to_string();

        // Without the operator token the API refuses to create a token.
        let denied = cli.run(&["join-token", "create", "--roles", "agent"]).await?;
        ensure!(
            !denied.success(),
            "join-token create without the operator token must fail"
        );
        // A role outside the issuer's scope is refused before anything is stored.
        let out_of_scope = cli
            .run_with(
                &["join-token", "create", "--roles", "operator"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &operator_token)],
            )
            .await?;
        ensure!(
            !out_of_scope.success() && out_of_scope.stderr.contains("operator"),
            "a token for a role the issuer may not certify must be refused: {}",
            out_of_scope.stderr
        );

        let (token, info) = create_token(
            &cli,
            &operator_token,
            &[
                "--roles",
                "developer",
                "--uses",
                "1",
                "--ttl",
                "1h",
                "--description",
                "e2e",
            ],
        )
        .await?;
        ensure!(
            info.roles == ["developer"] && info.uses == 1 && info.state == "active" && info.used_by.is_empty(),
            "{info:?}"
        );

        let dir = secrets.path().join("joiner-a");
        let a = joiner(&bin, &dir, cluster.credentials(), &boot, &token, &fingerprint)?;
        a.wait_ready(WAIT).await.with_context(|| a.log())?;
        let status = a.api()?.status().await?;
        let cert = status
            .security
            .certificate
            .clone()
            .context("the joined node reports its certificate")?;
        ensure!(
            cert.roles == ["developer"] && !cert.voter,
            "the certificate must carry exactly the token's roles: {cert:?}"
        );
        ensure!(
            status.security.cluster_id.as_deref() == Some(fingerprint.as_str()),
            "{:?}",
            status.security
        );
        ensure!(
            dir.join("node.crt").exists() && dir.join("ca.crt").exists(),
            "the certificate and the learned CA are stored in the data dir"
        );
        let joined_peer = status.peer_id.clone();
        wait_for("the admin admits the joined node", WAIT, || async {
            cluster
                .node(0)
                .admission()
                .peer(&joined_peer.parse().expect("peer id"))
                .is_some()
        })
        .await?;
        // The admin grants the certificate's role at once; the node's configured role
        // (`agent`, not in the certificate) waits for an operator.
        wait_for("the joined node holds its certificate's role", WAIT, || async {
            a.api()
                .expect("api")
                .context_status()
                .await
                .is_ok_and(|s| s.roles == ["developer"] && s.pending_roles == ["agent"])
        })
        .await
        .with_context(|| a.log())?;

        let list: JoinTokenList = cli
            .run_with(
                &["join-token", "list", "--json"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &operator_token)],
            )
            .await?
            .ok("join-token list")?
            .json()?;
        let listed = list
            .tokens
            .iter()
            .find(|t| t.id == info.id)
            .context("the token is listed")?;
        ensure!(
            listed.used_by == [joined_peer.clone()] && listed.state == "used_up",
            "{listed:?}"
        );
        ensure!(
            !list.tokens.iter().any(|t| format!("{t:?}").contains(&token)),
            "a listing never shows a secret"
        );

        // The same single-use token is refused to another node, with a clear error.
        let b = joiner(
            &bin,
            &secrets.path().join("joiner-b"),
            cluster.credentials(),
            &boot,
            &token,
            &fingerprint,
        )?;
        let log = refused(b, "a used-up token").await?;
        ensure!(
            log.contains("token_used_up"),
            "the error must say the token is used up:\n{log}"
        );
        ensure!(!log.contains(&token), "the joining node must not log its token:\n{log}");

        // Restarted, the joined node starts on its stored certificate (the token is used up).
        let ports = a.ports().context("ports")?;
        let _ = a.stop().await?;
        let again = Launch::new(&bin, ["run", "--data-dir"])
            .args([dir.as_os_str()])
            .args(["--swarm-key-file"])
            .args([cluster.credentials().mesh_key_file().as_os_str()])
            .args(["--p2p-listen", &ports.p2p_multiaddr()])
            .args(["--api-listen", &format!("127.0.0.1:{}", ports.api)])
            .args(["--health-listen", &format!("127.0.0.1:{}", ports.health)])
            .clean_env()
            .env("BZZZ_JOIN_TOKEN_FILE", dir.join("join-token"))
            .env("BZZZ_CA_FINGERPRINT", &fingerprint)
            .env("BZZZ_BOOTSTRAP_PEERS", &boot)
            .ports(ports)
            .log_to(dir.join("node-2.log"))
            .spawn()?;
        again.wait_ready(WAIT).await.with_context(|| again.log())?;
        let status = again.api()?.status().await?;
        ensure!(
            status.security.certificate.is_some_and(|c| c.serial == cert.serial),
            "the restarted node must use the certificate it stored"
        );
        let _ = again.stop().await?;
        Ok(())
    })
    .await
}

/// Expired, revoked and unknown tokens are refused by the voter with their own codes; a node
/// pinned to another cluster's fingerprint never sends its token and gives up with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_a_clear_error() -> Result<()> {
    let bin = bzzz_binary_async().await?;
    let secrets = tempfile::tempdir()?;
    let operator_token = secrets.path().join("operator-token");
    TestCluster::scenario(1, voter(secrets.path()), async |cluster| {
        cluster.wait_context_ready(WAIT).await?;
        let api = cluster.node(0).api_addr().context("node 0 has an API")?;
        let cli = Cli::against(&bin, &format!("http://{api}"));
        let fingerprint = cluster.credentials().cluster_id();
        let boot = cluster.node(0).p2p_addrs()[0].to_string();
        let creds = cluster.credentials();

        let (expired, _) = create_token(&cli, &operator_token, &["--ttl", "1s"]).await?;
        let (revoked, info) = create_token(&cli, &operator_token, &["--uses", "5"]).await?;
        let revoke = cli
            .run_with(
                &["join-token", "revoke", &info.id, "--json"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &operator_token)],
            )
            .await?
            .ok("join-token revoke")?;
        let after: JoinTokenInfo = revoke.json()?;
        ensure!(after.revoked && after.state == "revoked", "{after:?}");
        // Without --json, stdout holds exactly the token (`> file` gives a joining node's file).
        let plain = cli
            .run_with(
                &["join-token", "create"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &operator_token)],
            )
            .await?
            .ok("join-token create")?;
        let valid = plain.text().trim().to_owned();
        bzzz_node::admission::JoinToken::parse(&valid).context("stdout is exactly one token")?;
        ensure!(
            plain.stderr.contains("expires in"),
            "stderr describes the token: {}",
            plain.stderr
        );
        tokio::time::sleep(Duration::from_millis(1_200)).await;

        let cases = [
            ("expired", expired.clone(), fingerprint.clone(), "token_expired"),
            ("revoked", revoked, fingerprint.clone(), "token_revoked"),
            (
                "unknown",
                "abcdef.0123456789abcdef".to_owned(),
                fingerprint.clone(),
                "token_invalid",
            ),
        ];
        for (what, token, fp, code) in cases {
            let d = joiner(&bin, &secrets.path().join(what), creds, &boot, &token, &fp)?;
            let log = refused(d, what).await?;
            ensure!(log.contains(code), "{what}: the error must name {code}:\n{log}");
        }

        // Pinned to another cluster: the voter's certificate does not chain to that fingerprint,
        // so the token is never sent; the node gives up after its join timeout.
        let other = ClusterCredentials::new()?;
        let d = joiner(
            &bin,
            &secrets.path().join("wrong-cluster"),
            creds,
            &boot,
            &valid,
            &other.cluster_id(),
        )?;
        let log = refused(d, "wrong cluster").await?;
        ensure!(
            log.contains("is not a voter of cluster") && log.contains(&other.cluster_id()),
            "the error must say the peer is not of the pinned cluster:\n{log}"
        );
        let list: JoinTokenList = cli
            .run_with(
                &["join-token", "list", "--json"],
                b"",
                &[("BZZZ_OPERATOR_TOKEN_FILE", &operator_token)],
            )
            .await?
            .ok("join-token list")?
            .json()?;
        ensure!(
            list.tokens.iter().all(|t| t.used_by.is_empty()),
            "no refused join may use a token: {list:?}"
        );
        let joins = |outcome: &str| {
            cluster
                .node(0)
                .metrics()
                .sample("bzzz_admission_joins_total", &[("outcome", outcome)])
                .unwrap_or_default()
        };
        ensure!(
            joins("token_expired") >= 1.0 && joins("token_revoked") >= 1.0 && joins("token_invalid") >= 1.0,
            "the voter counts each refusal by outcome"
        );
        Ok(())
    })
    .await
}

/// A node that joined with a token renews its certificate from a voter once a third of its
/// validity is left: the same serial, a later expiry, written to its certificate file; the voter
/// takes the new chain for the open connection, so the node is never disconnected when the first
/// certificate's time runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_certificate_is_renewed_without_a_disconnect() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    TestCluster::scenario(1, voter(secrets.path()), async |cluster| {
        cluster.wait_context_ready(WAIT).await?;
        let api = bzzz_tests::api_of(cluster.node(0))?.with_token(OPERATOR_TOKEN);
        let token = bzzz_node::admission::JoinToken::generate();
        api.create_join_token(&bzzz_client::types::JoinTokenCreate {
            id: token.id().to_owned(),
            secret_hash: hex::encode(token.secret_hash()),
            roles: vec!["agent".into()],
            voter: false,
            ttl_ms: 60_000,
            uses: 1,
            cert_ttl_ms: 6_000,
            description: "renewal".into(),
        })
        .await?;
        let dir = secrets.path().join("renewing");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("join-token"), token.reveal())?;
        let mut c = bzzz_tests::test_config(&dir);
        c.agent.id = "renewing".into();
        c.p2p.swarm_key_file = Some(cluster.credentials().mesh_key_file());
        c.p2p.bootstrap_peers = vec![cluster.node(0).p2p_addrs()[0].to_string()];
        c.admission.ca_fingerprint = Some(cluster.credentials().cluster_id());
        c.admission.join_token_file = Some(dir.join("join-token"));
        let node = bzzz_node::Node::start(c).await.context("the joining node starts")?;
        let outcome = async {
            let first = node.admission().local_certificate().context("certified at start")?;
            let peer = node.peer_id();
            wait_for("the voter admits the joined node", WAIT, || async {
                cluster.node(0).admission().peer(&peer).is_some()
            })
            .await?;
            wait_for("the certificate is renewed", Duration::from_secs(15), || async {
                node.admission()
                    .local_certificate()
                    .is_some_and(|c| c.leaf.not_after_ms > first.leaf.not_after_ms)
            })
            .await?;
            let renewed = node.admission().local_certificate().context("certified")?;
            ensure!(renewed.leaf.serial == first.leaf.serial, "a renewal keeps the serial");
            let stored = bzzz_node::admission::files::read_chain(&dir.join("node.crt"))?;
            ensure!(
                stored == node.admission().chain().context("chain")?,
                "the renewal is written to the certificate file"
            );
            // Past the first certificate's expiry the voter still holds the node's connection,
            // with the renewed certificate.
            let past = first.leaf.not_after_ms + 1_500;
            let wait_ms = past.saturating_sub(bzzz_storage::util::now_unix_ms());
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let held = cluster
                .node(0)
                .admission()
                .peer(&peer)
                .and_then(|a| a.cert)
                .context("the voter still admits the node past its first certificate's expiry")?;
            ensure!(
                held.leaf.serial == first.leaf.serial && held.leaf.not_after_ms > first.leaf.not_after_ms,
                "the voter holds the renewed certificate: {held:?}"
            );
            let disconnected = cluster
                .node(0)
                .metrics()
                .sample(
                    "bzzz_admission_total",
                    &[("outcome", "disconnected"), ("reason", "expired")],
                )
                .unwrap_or_default();
            ensure!(
                disconnected == 0.0,
                "no peer was disconnected for an expired certificate"
            );
            Ok(())
        }
        .await;
        node.shutdown().await;
        outcome
    })
    .await
}

/// A fresh deployment's voters carry a seed token (`admission.seed_join_token_file`, the Docker
/// secret): the admin adds it to the cluster by itself, and a node given the same token joins
/// before anyone called `join-token create`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_token_lets_nodes_join_a_fresh_cluster() -> Result<()> {
    let secrets = tempfile::tempdir()?;
    let token = bzzz_node::admission::JoinToken::generate();
    let seed_file = secrets.path().join("seed-token");
    std::fs::write(&seed_file, token.reveal())?;
    let seeded = voter(secrets.path());
    let sf = seed_file.clone();
    TestCluster::scenario(
        1,
        move |i, c| {
            seeded(i, c);
            c.admission.seed_join_token_file = Some(sf.clone());
            c.admission.seed_join_token_uses = 2;
            // The issuer files are added after this tweak by the harness (voters get them).
            let creds_dir = c
                .admission
                .ca_cert_file
                .as_ref()
                .and_then(|f| f.parent())
                .map(Path::to_path_buf);
            if let Some(dir) = creds_dir {
                c.admission.issuer_key_file = Some(dir.join(bzzz_node::admission::files::ISSUER_KEY_FILE));
                c.admission.issuer_cert_file = Some(dir.join(bzzz_node::admission::files::ISSUER_CERT_FILE));
            }
        },
        async |cluster| {
            cluster.wait_context_ready(WAIT).await?;
            let dir = secrets.path().join("seeded-joiner");
            std::fs::create_dir_all(&dir)?;
            let mut c = bzzz_tests::test_config(&dir);
            c.agent.id = "seeded-joiner".into();
            c.p2p.swarm_key_file = Some(cluster.credentials().mesh_key_file());
            c.p2p.bootstrap_peers = vec![cluster.node(0).p2p_addrs()[0].to_string()];
            c.admission.ca_fingerprint = Some(cluster.credentials().cluster_id());
            c.admission.join_token_file = Some(seed_file.clone());
            let node = bzzz_node::Node::start(c)
                .await
                .context("the node joins with the seed token")?;
            let cert = node.admission().local_certificate();
            let peer = node.peer_id().to_string();
            node.shutdown().await;
            ensure!(
                cert.is_some_and(|c| c.leaf.roles == ["agent"]),
                "the seed token gives the configured roles"
            );
            let list = bzzz_tests::api_of(cluster.node(0))?
                .with_token(OPERATOR_TOKEN)
                .join_tokens()
                .await?;
            let seed = list
                .tokens
                .iter()
                .find(|t| t.id == token.id())
                .context("the admin added the seed token")?;
            ensure!(seed.uses == 2 && seed.used_by == [peer], "{seed:?}");
            Ok(())
        },
    )
    .await
}

/// The RPCs and routes this issue added refuse who may not use them and bad input: a certified
/// member that is not a voter cannot redeem or create tokens at the admin, cannot get a
/// certificate the CA signed renewed by a voter, cannot hand a voter another peer's or a
/// malformed chain as its own; a non-voter's API does not manage tokens; a token with a bad
/// secret hash is refused. (A stranger never gets a connection to send any of it: t60.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_renewal_requests_refuse_non_voters_and_bad_input() -> Result<()> {
    use bzzz_protocol::wire::{
        CertificateChain, ContextRequest, JoinTokenChange, JoinTokenSpec, RedeemJoin, RenewCertificate, RpcRequest,
        context_request, context_response, join_token_change, rpc_request, rpc_response,
    };
    let secrets = tempfile::tempdir()?;
    TestCluster::scenario(1, voter(secrets.path()), async |cluster| {
        cluster.wait_context_ready(WAIT).await?;
        let admin = cluster.node(0);
        let creds = cluster.credentials();
        let dir = secrets.path().join("member");
        let mut c = bzzz_tests::test_config(&dir);
        c.agent.id = "member".into();
        creds.apply(&mut c);
        c.p2p.bootstrap_peers = vec![admin.p2p_addrs()[0].to_string()];
        creds.enroll(&c)?;
        let member = bzzz_node::Node::start(c).await?;
        let outcome = async {
            wait_for("the admin admits the member", WAIT, || async {
                admin.admission().peer(&member.peer_id()).is_some()
            })
            .await?;
            let send = |body: rpc_request::Body| {
                member
                    .client()
                    .send_rpc(admin.peer_id(), RpcRequest { body: Some(body) })
            };
            let context_error = |answer: bzzz_protocol::wire::RpcResponse| match answer.body {
                Some(rpc_response::Body::Context(r)) => match r.body {
                    Some(context_response::Body::Error(e)) => Some(e.code),
                    _ => None,
                },
                _ => None,
            };
            let redeem = send(rpc_request::Body::Context(ContextRequest {
                body: Some(context_request::Body::RedeemJoin(RedeemJoin {
                    token_id: "abc123".into(),
                    secret_hash: vec![0; 32],
                    peer_id: member.peer_id().to_bytes(),
                })),
            }))
            .await?;
            ensure!(
                context_error(redeem.clone()).is_some_and(|c| c.contains("403")),
                "a non-voter may not redeem tokens: {redeem:?}"
            );
            let create = send(rpc_request::Body::Context(ContextRequest {
                body: Some(context_request::Body::JoinToken(JoinTokenChange {
                    change: Some(join_token_change::Change::Create(JoinTokenSpec {
                        id: "evil00".into(),
                        secret_hash: vec![0; 32],
                        roles: vec!["operator".into()],
                        voter: true,
                        ttl_ms: 60_000,
                        uses: 1000,
                        cert_ttl_ms: 60_000,
                        description: String::new(),
                    })),
                })),
            }))
            .await?;
            ensure!(
                context_error(create.clone()).is_some_and(|c| c.contains("403")),
                "a non-voter may not create tokens: {create:?}"
            );
            ensure!(
                admin
                    .consensus()
                    .state_machine()
                    .context("voter state")?
                    .join_tokens()?
                    .is_empty(),
                "no token was created"
            );
            let rpc_error =
                |answer: bzzz_protocol::wire::RpcResponse| matches!(answer.body, Some(rpc_response::Body::Error(_)));
            let renew = send(rpc_request::Body::RenewCertificate(RenewCertificate {})).await?;
            ensure!(
                rpc_error(renew.clone()),
                "a CA-signed certificate is not renewed by a voter: {renew:?}"
            );
            // Another peer's chain (the admin's own), and an empty one, are not taken as the
            // member's.
            let foreign = admin.admission().chain().context("the admin's chain")?;
            let update = send(rpc_request::Body::CertificateUpdate(foreign)).await?;
            ensure!(
                rpc_error(update.clone()),
                "another peer's chain must be refused: {update:?}"
            );
            let empty = send(rpc_request::Body::CertificateUpdate(CertificateChain::default())).await?;
            ensure!(rpc_error(empty.clone()), "an empty chain must be refused: {empty:?}");

            // HTTP: a non-voter's API does not manage tokens; a bad secret hash is refused.
            let spec = |hash: &str| bzzz_client::types::JoinTokenCreate {
                id: "good00".into(),
                secret_hash: hash.into(),
                roles: vec!["agent".into()],
                voter: false,
                ttl_ms: 60_000,
                uses: 1,
                cert_ttl_ms: 60_000,
                description: String::new(),
            };
            let on_member = bzzz_tests::api_of(&member)?
                .create_join_token(&spec(&"00".repeat(32)))
                .await;
            ensure!(
                on_member.as_ref().is_err_and(|e| e.to_string().contains("not a voter")),
                "{on_member:?}"
            );
            let bad_hash = bzzz_tests::api_of(admin)?
                .with_token(OPERATOR_TOKEN)
                .create_join_token(&spec("not-hex"))
                .await;
            ensure!(
                bad_hash.as_ref().is_err_and(|e| e.to_string().contains("secret_hash")),
                "{bad_hash:?}"
            );
            Ok(())
        }
        .await;
        member.shutdown().await;
        outcome
    })
    .await
}
