//! `bzzz-bench context`: put and get latency through the context service on an in-process mesh.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bzzz_tests::{TestCluster, wait_for};

use crate::{quiet, summary};

/// Context put/get latency on `n` in-process nodes (3 voters), R copies per record.
pub(crate) async fn context(n: usize, ops: usize, sizes: &[usize], replication: u32) -> Result<()> {
    let voters = 3.min(n);
    let mut cluster = TestCluster::start_with(n, |i, c| {
        quiet(i, c);
        c.election.eligible = i < voters;
        c.election.bootstrap_expect = voters as u32;
        c.context.replication_factor = replication;
        c.context.write_quorum = replication;
    })
    .await?;
    wait_for(
        "an admin, every routing table full, every node's role keys",
        Duration::from_secs(120),
        || async {
            for (_, node) in cluster.running() {
                let full = node
                    .client()
                    .snapshot()
                    .await
                    .map(|s| s.routing_table_size + 1 >= n)
                    .unwrap_or(false);
                if !full || !node.context().ready() || node.consensus().status().admin.is_none() {
                    return false;
                }
            }
            true
        },
    )
    .await?;
    let admin = cluster
        .running()
        .find(|(_, node)| node.consensus().status().is_admin)
        .map(|(i, _)| i)
        .context("an admin")?;
    let phases_wanted = std::env::var("BZZZ_BENCH_PHASES").is_ok();
    for &size in sizes {
        // Write phase: every put, and a read of it at once from another node. That read competes
        // with the put's own aftermath (holders announcing themselves as providers, followers
        // applying the index entry), which on one 2-core machine running all N nodes shows as CPU
        // queueing; it is reported on its own line.
        let mut puts = Vec::new();
        let mut gets_after_put = Vec::new();
        let mut written = Vec::new();
        let mut failures = 0;
        for i in 0..ops {
            let address = format!("ucxl://bench:agent@bzzz-bench:context/s{size}/r{i}");
            let content = vec![(i % 251) as u8; size];
            // Writers and readers are never the admin, so every index call crosses the network.
            let writer = (admin + 1 + i % (n - 1)) % n;
            let t = Instant::now();
            match cluster.node(writer).context().put(&address, content).await {
                Ok(_) => puts.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    failures += 1;
                    eprintln!("put {address}: {e}");
                    continue;
                }
            }
            let reader = pick_reader(writer, 1 + (i * 7) % (n - 1), admin, n);
            let t = Instant::now();
            match cluster.node(reader).context().get(&address).await {
                Ok(_) => gets_after_put.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    failures += 1;
                    eprintln!("get {address} right after its put: {e}");
                }
            }
            written.push((address, writer));
            if let Some(ms) = std::env::var("BZZZ_BENCH_PUT_GAP_MS").ok().and_then(|v| v.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        // Read phase, once the writes have settled: every record read from a node that is neither
        // its writer, the admin, nor the node that read it in the write phase.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut gets = Vec::new();
        let mut local_gets = Vec::new();
        let mut remote_gets = Vec::new();
        let (mut history_rtt, mut roles_rtt, mut bare_rtt) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (address, writer)) in written.iter().enumerate() {
            let reader = pick_reader(*writer, 2 + (i * 7) % (n - 2).max(1), admin, n);
            if phases_wanted {
                let t = Instant::now();
                let _ = cluster.node(reader).context().history(address, 1).await;
                history_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
                let t = Instant::now();
                let _ = cluster.node(reader).context().roles().await;
                roles_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
                let ack = bzzz_protocol::wire::RpcRequest {
                    body: Some(bzzz_protocol::wire::rpc_request::Body::ProbeAck(
                        bzzz_protocol::wire::ProbeAck {
                            probe_id: vec![0; 16],
                            received_at_ms: 0,
                        },
                    )),
                };
                let t = Instant::now();
                let _ = cluster
                    .node(reader)
                    .client()
                    .send_rpc(cluster.node(admin).peer_id(), ack)
                    .await;
                bare_rtt.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let t = Instant::now();
            match cluster.node(reader).context().get(address).await {
                Ok(_) => {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    gets.push(ms);
                    if reader_holds(&cluster, reader, address).await {
                        local_gets.push(ms)
                    } else {
                        remote_gets.push(ms)
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("get {address}: {e}");
                }
            }
        }
        if phases_wanted {
            println!("context history (admin round trip): {}", summary(history_rtt));
            println!(
                "context roles query (admin round trip, no index read): {}",
                summary(roles_rtt)
            );
            println!(
                "context bare rpc (probe ack to the admin, answered in its event loop): {}",
                summary(bare_rtt)
            );
        }
        println!(
            "context N={n:<3} R={replication} content={size} B  put {}",
            summary(puts)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get {}  failures={failures}",
            summary(gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get, reader held a copy: {}",
            summary(local_gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get, reader fetched from a holder: {}",
            summary(remote_gets)
        );
        println!(
            "context N={n:<3} R={replication} content={size} B  get right after its put (mesh still busy with the put): {}",
            summary(gets_after_put)
        );
    }
    cluster.shutdown().await;
    Ok(())
}

/// A node `offset` places after `writer` (mod `n`) that is neither the writer nor the admin (the
/// writer itself on a mesh too small to have such a node).
fn pick_reader(writer: usize, offset: usize, admin: usize, n: usize) -> usize {
    (0..n)
        .map(|k| (writer + offset + k) % n)
        .find(|&r| r != admin && r != writer)
        .unwrap_or(writer)
}

/// Whether `reader` holds the newest record of `address` itself (so its get needed no fetch).
async fn reader_holds(cluster: &TestCluster, reader: usize, address: &str) -> bool {
    let key = cluster
        .node(reader)
        .context()
        .history(address, 1)
        .await
        .ok()
        .and_then(|h| h.versions.first().map(|v| v.record_key.clone()))
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    match key {
        Some(k) => cluster
            .node(reader)
            .client()
            .local_get(bzzz_node::crypto::dht_key(&k))
            .await
            .map(|v| v.is_some())
            .unwrap_or(false),
        None => false,
    }
}
