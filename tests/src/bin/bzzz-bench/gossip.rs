//! `bzzz-bench gossip`: delivery latency (p50/p99) and delivery ratio to all N nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bzzz_protocol::topics;
use bzzz_protocol::wire::Kind;
use bzzz_tests::{TestCluster, wait_for};

use crate::{epoch, quiet, summary};

/// Delivery latency and ratio of `messages` gossip messages on an `n`-node in-process mesh.
pub(crate) async fn gossip(n: usize, messages: usize) -> Result<()> {
    let mut cluster = TestCluster::start_with(n, quiet).await?;
    cluster.wait_connected(1, Duration::from_secs(60)).await?;
    // Let the gossip mesh settle (subscriptions exchanged, meshes grafted).
    wait_for(
        "every node sees at least min(n-1, 4) topic peers",
        Duration::from_secs(60),
        || async {
            for (_, node) in cluster.running() {
                match node.client().snapshot().await {
                    Ok(s) if s.health_topic_peers.len() >= (n - 1).min(4) => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let received: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for (_, node) in cluster.running() {
        let mut inbox = node.client().subscribe(topics::COORDINATION, 4096).await?;
        let lat = latencies.clone();
        let rec = received.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(m) = inbox.recv().await {
                let now = epoch().elapsed().as_nanos() as u64;
                if m.payload.len() < 16 {
                    continue;
                }
                let id = u64::from_be_bytes(m.payload[0..8].try_into().unwrap_or_default());
                let sent = u64::from_be_bytes(m.payload[8..16].try_into().unwrap_or_default());
                if let Ok(mut l) = lat.lock() {
                    l.push(now.saturating_sub(sent) as f64 / 1e6);
                }
                if let Ok(mut r) = rec.lock() {
                    *r.entry(id).or_default() += 1;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    for id in 0..messages as u64 {
        let from = (id as usize * 7) % n;
        let mut payload = id.to_be_bytes().to_vec();
        payload.extend_from_slice(&(epoch().elapsed().as_nanos() as u64).to_be_bytes());
        payload.extend_from_slice(&[0u8; 240]);
        cluster
            .node(from)
            .client()
            .publish(topics::COORDINATION, Kind::Coordination, payload)
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = messages * (n - 1);
    let _ = wait_for("all deliveries", Duration::from_secs(10), || async {
        received
            .lock()
            .map(|r| r.values().sum::<usize>() >= expected)
            .unwrap_or(false)
    })
    .await;
    let got: usize = received.lock().map(|r| r.values().sum()).unwrap_or(0);
    let lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    println!(
        "gossip  N={n:<3} messages={messages} deliveries={got}/{expected} ratio={:.4}  latency {}  (publishing took {:.1} s)",
        got as f64 / expected as f64,
        summary(lat),
        started.elapsed().as_secs_f64()
    );
    for t in tasks {
        t.abort();
    }
    cluster.shutdown().await;
    Ok(())
}
