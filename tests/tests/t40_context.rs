//! Context scenarios on a 7-node mesh (3 voters, R = 3): encrypted round trips, role
//! enforcement, replication and repair, version history under concurrency and failover, tamper
//! fallback, malformed input over HTTP, and a full restart.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bzzz_client::types::ErrorEnvelope;
use bzzz_node::context::{ContextError, VersionView};
use bzzz_protocol::ucxl::UcxlCode;
use bzzz_tests::{TestCluster, wait_for};

const NODES: usize = 7;
const VOTERS: usize = 3;
/// The node that asks for a role that cannot read agent context.
const GUEST: usize = 6;

fn mesh(repair_ms: u64) -> impl Fn(usize, &mut bzzz_node::Config) {
    move |i, c| {
        if i < VOTERS {
            c.election.eligible = true;
            c.election.bootstrap_expect = VOTERS as u32;
        }
        c.context.replication_factor = 3;
        c.context.write_quorum = 3;
        c.context.repair_interval_ms = repair_ms;
        c.roles.policy.insert(
            "guest".into(),
            bzzz_node::config::RoleConfig {
                authority: 1,
                self_service: true,
                can_read: Vec::new(),
            },
        );
        if i == GUEST {
            c.agent.role = "guest".into();
        }
    }
}

/// Waits until an admin is known and every running node has its roles and keys.
async fn wait_ready(cluster: &TestCluster) -> Result<()> {
    cluster.wait_context_ready(Duration::from_secs(40)).await
}

fn addr(i: usize) -> String {
    format!("ucxl://writer:agent@bzzz-test:ctx/notes/n{i}.md")
}

/// How many running nodes hold `record_key` (hex) in their own store.
async fn holders(cluster: &TestCluster, record_key_hex: &str) -> Result<Vec<usize>> {
    let key: [u8; 32] = hex::decode(record_key_hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("record key is not 32 bytes"))?;
    let dht_key = bzzz_node::crypto::dht_key(&key);
    let mut out = Vec::new();
    for (i, n) in cluster.running() {
        if n.client().local_get(dht_key.clone()).await?.is_some() {
            out.push(i);
        }
    }
    Ok(out)
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ContextError>) -> Result<UcxlCode> {
    match r {
        Ok(v) => bail!("expected an error, got {v:?}"),
        Err(e) => Ok(e.code),
    }
}

/// Write on one node; every node with the role reads it; the guest gets UCXL-403 and cannot
/// decrypt the raw record it fetches from the DHT itself; the record is on exactly the R nearest
/// holders, which announce themselves as providers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_once_read_everywhere_but_not_without_the_role() -> Result<()> {
    TestCluster::scenario(NODES, mesh(30_000), async |cluster| {
        wait_ready(cluster).await?;
        let content = b"decision: use sled for local state".to_vec();
        let put = cluster.node(4).context().put(&addr(0), content.clone()).await?;
        ensure!(put.version == 1 && put.replicas == 3, "first write: {put:?}");

        for (i, n) in cluster.running() {
            let got = n.context().get(&addr(0)).await;
            if i == GUEST {
                ensure!(
                    code_of(got)? == UcxlCode::Forbidden,
                    "the guest must get UCXL-403-FORBIDDEN"
                );
            } else {
                let got = got.with_context(|| format!("node {i} reads"))?;
                ensure!(got.content == content, "node {i} read other bytes");
                ensure!(
                    got.version.version == 1 && got.opened_role == "agent",
                    "node {i}: {got:?}"
                );
            }
        }

        // The raw record, straight from the DHT, on the guest node: ciphertext only.
        let key: [u8; 32] = hex::decode(&put.record_key)?.try_into().expect("32 bytes");
        let raw = cluster
            .node(GUEST)
            .client()
            .get_record(bzzz_node::crypto::dht_key(&key))
            .await?;
        ensure!(
            !raw.windows(content.len()).any(|w| w == content.as_slice()),
            "the stored record must not contain the plaintext"
        );
        let opened = cluster.node(GUEST).context().open_raw(&raw, &addr(0));
        ensure!(
            code_of(opened)? == UcxlCode::Forbidden,
            "the guest's keys must not open the raw record"
        );
        // A node with the role opens the same bytes.
        ensure!(cluster.node(5).context().open_raw(&raw, &addr(0))? == content);

        // R copies on the R nodes nearest the key, announced as providers.
        wait_for("the record on 3 holders", Duration::from_secs(10), || async {
            holders(cluster, &put.record_key)
                .await
                .map(|h| h.len() == 3)
                .unwrap_or(false)
        })
        .await?;
        let held: BTreeSet<String> = holders(cluster, &put.record_key)
            .await?
            .into_iter()
            .map(|i| cluster.node(i).peer_id().to_string())
            .collect();
        let nearest: BTreeSet<String> = cluster
            .node(0)
            .client()
            .closest_peers(bzzz_node::crypto::dht_key(&key))
            .await?
            .into_iter()
            .take(3)
            .map(|p| p.to_string())
            .collect();
        ensure!(held == nearest, "holders {held:?} are not the 3 nearest {nearest:?}");
        let providers: BTreeSet<String> = cluster
            .node(GUEST)
            .client()
            .get_providers(bzzz_node::crypto::dht_key(&key))
            .await?
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        ensure!(
            held.is_subset(&providers),
            "every holder is a provider: holders {held:?}, providers {providers:?}"
        );
        Ok(())
    })
    .await
}

/// 200 records; two of their holders die; every record stays readable, and after the repair
/// interval every record is on R live nodes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_two_dead_holders_and_are_repaired() -> Result<()> {
    TestCluster::scenario(NODES, mesh(1_000), async |cluster| {
        wait_ready(cluster).await?;
        let mut keys = Vec::new();
        for batch in 0..20 {
            let writes = (0..10).map(|j| {
                let i = batch * 10 + j;
                let node = cluster.node(3 + i % 3);
                async move { node.context().put(&addr(i), format!("record {i}").into_bytes()).await }
            });
            for put in futures::future::join_all(writes).await {
                keys.push(put?.record_key);
            }
        }
        ensure!(keys.len() == 200);

        // Kill the two non-voters that hold the most records (voters keep the admin).
        let mut counts = [0usize; NODES];
        for k in &keys {
            wait_for("3 copies of every record", Duration::from_secs(10), || async {
                holders(cluster, k).await.map(|h| h.len() >= 3).unwrap_or(false)
            })
            .await?;
            for h in holders(cluster, k).await? {
                counts[h] += 1;
            }
        }
        let mut candidates: Vec<usize> = (VOTERS..NODES).filter(|i| *i != GUEST).collect();
        candidates.sort_by_key(|i| std::cmp::Reverse(counts[*i]));
        let (a, b) = (candidates[0], candidates[1]);
        let mut hit = 0;
        for k in &keys {
            let h = holders(cluster, k).await?;
            if h.contains(&a) && h.contains(&b) {
                hit += 1;
            }
        }
        cluster.kill(a).await;
        cluster.kill(b).await;

        let reader = (0..NODES).find(|i| ![a, b, GUEST].contains(i)).expect("a reader");
        for i in 0..200 {
            let got = cluster
                .node(reader)
                .context()
                .get(&addr(i))
                .await
                .with_context(|| format!("record {i} after killing nodes {a} and {b}"))?;
            ensure!(got.content == format!("record {i}").into_bytes());
        }

        wait_for(
            "every record back on 3 live holders",
            Duration::from_secs(30),
            || async {
                for k in &keys {
                    if holders(cluster, k).await.map(|h| h.len() < 3).unwrap_or(true) {
                        return false;
                    }
                }
                true
            },
        )
        .await?;
        let admin = cluster
            .running()
            .find(|(_, n)| n.consensus().status().is_admin)
            .map(|(_, n)| n)
            .context("an admin")?;
        let report = admin.context().replication_report().context("the admin has a report")?;
        ensure!(report.records == 200, "the check covers all 200 records: {report:?}");
        let repaired = admin
            .metrics()
            .sample("bzzz_context_repairs_total", &[])
            .unwrap_or_default();
        ensure!(
            repaired as usize >= hit,
            "{hit} records lost two copies; the admin made {repaired} copies"
        );
        Ok(())
    })
    .await
}

fn history_of(v: &[VersionView]) -> Vec<(u64, String, String)> {
    v.iter()
        .map(|v| (v.version, v.record_key.clone(), v.author.clone()))
        .collect()
}

/// Five concurrent writes to one address from three nodes: every node lists the same five
/// versions in the same order, temporal selectors resolve alike everywhere, and an admin
/// failover loses or duplicates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_versions_agree_everywhere_and_survive_failover() -> Result<()> {
    TestCluster::scenario(NODES, mesh(30_000), async |cluster| {
        wait_ready(cluster).await?;
        let a = "ucxl://team:agent@bzzz-test:versions/plan.md";
        let writes = (0..5).map(|i| {
            let node = cluster.node([1, 3, 5][i % 3]);
            async move { node.context().put(a, format!("draft {i}").into_bytes()).await }
        });
        let mut versions: Vec<u64> = Vec::new();
        for w in futures::future::join_all(writes).await {
            versions.push(w?.version);
        }
        versions.sort_unstable();
        ensure!(versions == vec![1, 2, 3, 4, 5], "distinct versions 1..5: {versions:?}");

        let reference = history_of(&cluster.node(0).context().history(a, 0).await?.versions);
        ensure!(reference.len() == 5);
        let resolve = |sel: &str| a.replace("versions/", &format!("versions/{sel}/"));
        for (i, n) in cluster.running() {
            if i == GUEST {
                continue;
            }
            let h = n.context().history(a, 0).await?;
            ensure!(history_of(&h.versions) == reference, "node {i} lists another history");
            for (sel, want) in [("~~2", 3u64), ("*~1", 1), ("*^", 5)] {
                let got = n.context().get(&resolve(sel)).await?;
                ensure!(
                    got.version.version == want,
                    "node {i}: {sel} gave version {}",
                    got.version.version
                );
                ensure!(got.version.record_key == reference[want as usize - 1].1);
            }
        }

        // Fail over: kill the admin, wait for another, check nothing was lost or doubled.
        let admin = (0..VOTERS)
            .find(|i| cluster.node(*i).consensus().status().is_admin)
            .context("an admin among the voters")?;
        cluster.kill(admin).await;
        wait_for("a new admin", Duration::from_secs(20), || async {
            cluster
                .running()
                .any(|(i, n)| i != admin && n.consensus().status().is_admin)
        })
        .await?;
        let writer = (3..NODES).find(|i| *i != GUEST).expect("a writer");
        let sixth = cluster
            .node(writer)
            .context()
            .put(a, b"after failover".to_vec())
            .await?;
        ensure!(sixth.version == 6, "the write after failover is version 6: {sixth:?}");
        for (i, n) in cluster.running() {
            let h = n.context().history(a, 0).await?;
            ensure!(h.total == 6, "node {i} sees {} versions", h.total);
            ensure!(
                history_of(&h.versions[..5]) == reference,
                "node {i}: versions 1..5 changed"
            );
        }
        Ok(())
    })
    .await
}

/// A holder's copy is corrupted; reading on that holder fails verification of its own copy,
/// counts it, and reads from another holder instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_copy_falls_back_to_another_holder() -> Result<()> {
    TestCluster::scenario(NODES, mesh(30_000), async |cluster| {
        wait_ready(cluster).await?;
        let content = b"the real content".to_vec();
        let put = cluster.node(3).context().put(&addr(7), content.clone()).await?;
        let held = holders(cluster, &put.record_key).await?;
        let victim = *held.iter().find(|i| **i != GUEST).context("a holder with the role")?;
        let key: [u8; 32] = hex::decode(&put.record_key)?.try_into().expect("32 bytes");
        let dht_key = bzzz_node::crypto::dht_key(&key);
        let node = cluster.node(victim);
        let mut bytes = node.client().local_get(dht_key.clone()).await?.context("held")?;
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        node.client().store_local(dht_key, bytes, false).await?;

        let failures = || {
            node.metrics()
                .sample("bzzz_context_decrypt_failures_total", &[])
                .unwrap_or_default()
        };
        let failures_before = failures();
        let got = node.context().get(&addr(7)).await?;
        ensure!(got.content == content, "the reader fell back to a good copy");
        ensure!(
            failures() > failures_before,
            "the corrupt copy was detected and counted"
        );
        Ok(())
    })
    .await
}

/// Every record and every version survives stopping and restarting every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_full_restart() -> Result<()> {
    TestCluster::scenario(NODES, mesh(30_000), async |cluster| {
        wait_ready(cluster).await?;
        let mut written = Vec::new();
        for i in 0..12 {
            let a = addr(i % 4);
            let body = format!("restart {i}").into_bytes();
            let put = cluster.node(3 + i % 3).context().put(&a, body.clone()).await?;
            written.push((a, put.version, body));
        }
        for i in 0..NODES {
            cluster.kill(i).await;
        }
        for i in 0..NODES {
            cluster.restart(i).await?;
        }
        wait_ready(cluster).await?;
        for (i, n) in cluster.running() {
            if i == GUEST {
                continue;
            }
            for (a, version, body) in &written {
                let at = a.replace("ctx/", &format!("ctx/*~{version}/"));
                let got = n
                    .context()
                    .get(&at)
                    .await
                    .with_context(|| format!("node {i} reads {at}"))?;
                ensure!(&got.content == body, "node {i}: {at} changed across the restart");
            }
        }
        Ok(())
    })
    .await
}

/// One HTTP case: method, path and query, body, expected status, expected error code.
type Case = (reqwest::Method, String, Vec<u8>, u16, Option<&'static str>);

/// Malformed addresses, queries and bodies over HTTP: each a 4xx with its code, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_with_their_code() -> Result<()> {
    TestCluster::scenario(
        3,
        |i, c| {
            if i == 0 {
                c.election.eligible = true;
                c.election.bootstrap_expect = 1;
            }
        },
        async |cluster| {
            wait_ready(cluster).await?;
            let api = format!("http://{}", cluster.node(1).api_addr().context("api")?);
            let good = "ucxl://alice:agent@proj:task/notes/a.md";
            cluster.node(1).context().put(good, b"one".to_vec()).await?;
            // No connection reuse: the server may close a connection after refusing a large body.
            let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;

            let long_ident = "a".repeat(65);
            let long_path = format!("ucxl://a:agent@p:t/{}", vec!["segment"; 200].join("/"));
            let bad_addresses: Vec<(String, &str)> = vec![
                ("".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl".into(), "UCXL-400-INVALID_ADDRESS"),
                ("http://a:agent@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://:agent@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a b:agent@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t/../x".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t/./x".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t//x".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t/x y".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t/x\u{0}".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://\u{e4}:agent@p:t".into(), "UCXL-400-INVALID_ADDRESS"),
                (format!("ucxl://{long_ident}:agent@p:t"), "UCXL-400-INVALID_ADDRESS"),
                (format!("ucxl://a:{long_ident}@p:t"), "UCXL-400-INVALID_ADDRESS"),
                (long_path, "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t:u".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p@q:t".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://any:agent@p:t/x".into(), "UCXL-400-INVALID_ADDRESS"),
                ("ucxl://a:agent@p:t/*~0/x".into(), "UCXL-400-TEMPORAL_INVALID"),
                ("ucxl://a:agent@p:t/*~x/x".into(), "UCXL-400-TEMPORAL_INVALID"),
                ("ucxl://a:agent@p:t/~~-1/x".into(), "UCXL-400-TEMPORAL_INVALID"),
                ("ucxl://a:agent@p:t/^^z/x".into(), "UCXL-400-TEMPORAL_INVALID"),
                ("ucxl://a:agent@p:t/*~99999999999/x".into(), "UCXL-400-TEMPORAL_INVALID"),
            ];
            let mut cases: Vec<Case> = Vec::new();
            for (a, code) in &bad_addresses {
                for ep in ["get", "navigate"] {
                    cases.push((
                        reqwest::Method::GET,
                        format!("/ucxi/v1/{ep}?address={}", urlencode(a)),
                        Vec::new(),
                        400,
                        Some(code),
                    ));
                }
                cases.push((
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode(a)),
                    b"x".to_vec(),
                    400,
                    Some(code),
                ));
            }
            let with_version = good.replace("task/", "task/*^/");
            let more: Vec<Case> = vec![
                (
                    reqwest::Method::GET,
                    "/ucxi/v1/get".into(),
                    vec![],
                    400,
                    Some("UCXL-400-INVALID_ADDRESS"),
                ),
                (
                    reqwest::Method::GET,
                    format!("/ucxi/v1/get?address={}&nope=1", urlencode(good)),
                    vec![],
                    400,
                    Some("UCXL-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::GET,
                    format!("/ucxi/v1/navigate?address={}&limit=abc", urlencode(good)),
                    vec![],
                    400,
                    Some("UCXL-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::GET,
                    format!("/ucxi/v1/navigate?address={}&limit=5000", urlencode(good)),
                    vec![],
                    400,
                    Some("UCXL-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::GET,
                    format!("/ucxi/v1/navigate?address={}&limit=-1", urlencode(good)),
                    vec![],
                    400,
                    Some("UCXL-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::GET,
                    "/ucxi/v1/discover".into(),
                    vec![],
                    400,
                    Some("UCXL-400-INVALID_ADDRESS"),
                ),
                (
                    reqwest::Method::GET,
                    "/ucxi/v1/discover?pattern=ucxl%3A%2F%2Fany".into(),
                    vec![],
                    400,
                    Some("UCXL-400-INVALID_ADDRESS"),
                ),
                (
                    reqwest::Method::GET,
                    format!(
                        "/ucxi/v1/discover?pattern={}&limit=100000",
                        urlencode("ucxl://any:any@any:any")
                    ),
                    vec![],
                    400,
                    Some("UCXL-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::GET,
                    "/ucxi/v1/get?address=%FF%FE".into(),
                    vec![],
                    400,
                    None,
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode(&with_version)),
                    b"x".to_vec(),
                    400,
                    Some("UCXL-400-TEMPORAL_INVALID"),
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode("ucxl://any:agent@p:t/x")),
                    b"x".to_vec(),
                    400,
                    Some("UCXL-400-INVALID_ADDRESS"),
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode("ucxl://a:operator@p:t/x")),
                    b"x".to_vec(),
                    403,
                    Some("UCXL-403-FORBIDDEN"),
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode("ucxl://a:nosuchrole@p:t/x")),
                    b"x".to_vec(),
                    403,
                    Some("UCXL-403-FORBIDDEN"),
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode(good)),
                    vec![7u8; 1536 * 1024],
                    413,
                    Some("UCXL-413-PAYLOAD_TOO_LARGE"),
                ),
                (
                    reqwest::Method::PUT,
                    format!("/ucxi/v1/put?address={}", urlencode(good)),
                    vec![7u8; 3 * 1024 * 1024],
                    413,
                    None,
                ),
                (
                    reqwest::Method::GET,
                    format!("/ucxi/v1/get?address={}", urlencode("ucxl://a:agent@p:t/never/written")),
                    vec![],
                    404,
                    Some("UCXL-404-NOT_FOUND"),
                ),
                (
                    reqwest::Method::GET,
                    format!(
                        "/ucxi/v1/get?address={}",
                        urlencode(&good.replace("task/", "task/~~5/"))
                    ),
                    vec![],
                    404,
                    Some("UCXL-404-NOT_FOUND"),
                ),
                (
                    reqwest::Method::GET,
                    format!(
                        "/ucxi/v1/get?address={}",
                        urlencode(&good.replace("task/", "task/*~9/"))
                    ),
                    vec![],
                    404,
                    Some("UCXL-404-NOT_FOUND"),
                ),
                (
                    reqwest::Method::GET,
                    "/ucxi/v1/nope".into(),
                    vec![],
                    404,
                    Some("UCXL-404-NOT_FOUND"),
                ),
                (
                    reqwest::Method::DELETE,
                    format!("/ucxi/v1/delete?address={}", urlencode("ucxl://any:agent@p:t")),
                    vec![],
                    400,
                    Some("UCXL-400-INVALID_ADDRESS"),
                ),
                (
                    reqwest::Method::POST,
                    "/api/roles/agent/grant".into(),
                    b"{not json".to_vec(),
                    400,
                    Some("BZZZ-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::POST,
                    "/api/roles/agent/grant".into(),
                    br#"{"peer_id":"nope"}"#.to_vec(),
                    400,
                    Some("BZZZ-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::POST,
                    "/api/roles/bad%20role/grant".into(),
                    br#"{"peer_id":"nope"}"#.to_vec(),
                    400,
                    Some("BZZZ-400-BAD_REQUEST"),
                ),
                (
                    reqwest::Method::POST,
                    "/api/roles/nosuchrole/grant".into(),
                    format!(r#"{{"peer_id":"{}"}}"#, cluster.node(2).peer_id()).into_bytes(),
                    400,
                    Some("BZZZ-400-BAD_REQUEST"),
                ),
            ];
            cases.extend(more);
            ensure!(cases.len() >= 50, "{} cases", cases.len());
            for (method, path, body, status, code) in cases {
                let resp = http
                    .request(method.clone(), format!("{api}{path}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let got = resp.status().as_u16();
                let text = resp.text().await?;
                ensure!(
                    got == status,
                    "{method} {path}: status {got}, expected {status}: {}",
                    text.chars().take(300).collect::<String>()
                );
                if let Some(code) = code {
                    let v: ErrorEnvelope = serde_json::from_str(&text)
                        .with_context(|| format!("{method} {path}: body is not the error envelope: {text}"))?;
                    ensure!(
                        v.error.code == code,
                        "{method} {path}: code {}, expected {code}",
                        v.error.code
                    );
                }
            }
            // The node still works.
            ensure!(cluster.node(1).context().get(good).await?.content == b"one");
            Ok(())
        },
    )
    .await
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether every running node's `replication-health` check has `status` now.
async fn replication_health_is(cluster: &TestCluster, status: bzzz_node::health::Status) -> bool {
    let mut all = true;
    for (_, n) in cluster.running() {
        n.check_health_now().await;
        all &= n
            .health()
            .checks()
            .get("replication-health")
            .is_some_and(|c| c.status == status);
    }
    all
}

/// With R = 2, losing both holders of a record makes `replication-health` unhealthy on every
/// node (the admin's figure travels in its heartbeat); a holder coming back lets the admin repair
/// the record and the check turns healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_health_follows_the_admins_check() -> Result<()> {
    use bzzz_node::health::Status;
    TestCluster::scenario(
        NODES,
        |i, c| {
            mesh(1_000)(i, c);
            c.election.eligible = i < 5;
            c.election.bootstrap_expect = 5;
            c.context.replication_factor = 2;
            c.context.write_quorum = 2;
        },
        async |cluster| {
            wait_ready(cluster).await?;
            let put = cluster.node(5).context().put(&addr(1), b"kept twice".to_vec()).await?;
            // A non-admin learns the admin's check from its heartbeat.
            wait_for(
                "every node reports 2 replicas on average, healthy",
                Duration::from_secs(15),
                || async {
                    replication_health_is(cluster, Status::Healthy).await
                        && cluster.running().all(|(_, n)| {
                            n.metrics()
                                .sample("bzzz_dht_replication_factor", &[])
                                .is_some_and(|v| (v - 2.0).abs() < 1e-9)
                        })
                },
            )
            .await?;

            let held = holders(cluster, &put.record_key).await?;
            ensure!(held.len() == 2, "two holders: {held:?}");
            for h in &held {
                cluster.kill(*h).await;
            }
            wait_for(
                "replication-health unhealthy everywhere",
                Duration::from_secs(20),
                || replication_health_is(cluster, Status::Unhealthy),
            )
            .await?;
            let survivor = cluster.running().map(|(i, _)| i).next().context("a running node")?;
            ensure!(
                cluster
                    .node(survivor)
                    .metrics()
                    .sample("bzzz_context_records_below_replication", &[])
                    == Some(1.0),
                "one record below R"
            );

            cluster.restart(held[0]).await?;
            wait_for(
                "repaired: replication-health healthy again",
                Duration::from_secs(30),
                || replication_health_is(cluster, Status::Healthy),
            )
            .await?;
            ensure!(
                holders(cluster, &put.record_key).await?.len() >= 2,
                "back on 2 live holders"
            );
            Ok(())
        },
    )
    .await
}

/// A missing or empty operator token file stops the node at start with an error naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_operator_token_file_is_refused_at_start() -> Result<()> {
    bzzz_tests::init_logging();
    let dir = tempfile::tempdir()?;
    let mut c = bzzz_tests::test_config(dir.path());
    let missing = dir.path().join("no-such-token");
    c.api.operator_token_file = Some(missing.clone());
    let e = bzzz_node::Node::start(c.clone())
        .await
        .err()
        .context("a missing token file must fail")?;
    ensure!(
        e.to_string().contains(&missing.display().to_string()),
        "error names the file: {e}"
    );
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "  \n")?;
    c.api.operator_token_file = Some(empty.clone());
    let e = bzzz_node::Node::start(c)
        .await
        .err()
        .context("an empty token file must fail")?;
    ensure!(
        e.to_string().contains("empty") && e.to_string().contains(&empty.display().to_string()),
        "error says the file is empty: {e}"
    );
    Ok(())
}
