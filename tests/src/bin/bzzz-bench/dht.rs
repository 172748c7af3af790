//! `bzzz-bench dht`: put/get latency (p50/p99) on an in-process mesh.

use std::time::{Duration, Instant};

use anyhow::Result;
use bzzz_tests::{TestCluster, wait_for};

use crate::{quiet, summary};

/// Put and get latency of `ops` records of `size` bytes on an `n`-node in-process mesh with
/// Kademlia replication factor `replication`.
pub(crate) async fn dht(n: usize, ops: usize, size: usize, replication: usize) -> Result<()> {
    let mut cluster = TestCluster::start_with(n, |i, c| {
        quiet(i, c);
        c.dht.replication_factor = replication;
    })
    .await?;
    cluster.wait_connected(1, Duration::from_secs(60)).await?;
    wait_for("routing tables hold every node", Duration::from_secs(60), || async {
        for (_, node) in cluster.running() {
            if node
                .client()
                .snapshot()
                .await
                .map(|s| s.routing_table_size + 1 < n)
                .unwrap_or(true)
            {
                return false;
            }
        }
        true
    })
    .await?;
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    let mut remote_gets = Vec::new();
    let mut failures = 0;
    for i in 0..ops {
        let key = format!("/bzzz/bench/{i}").into_bytes();
        let value = vec![(i % 251) as u8; size];
        let t = Instant::now();
        match cluster.node(i % n).client().put_record(key.clone(), value, None).await {
            Ok(_) => puts.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(_) => failures += 1,
        }
        // Read from a different node than the writer.
        let reader = cluster.node((i * 7 + 3) % n);
        let local = reader
            .store()
            .tree(bzzz_storage::kad_store::RECORDS_TREE)?
            .contains_key(&key)?;
        let t = Instant::now();
        match reader.client().get_record(key).await {
            Ok(_) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                gets.push(ms);
                if !local {
                    remote_gets.push(ms);
                }
            }
            Err(_) => failures += 1,
        }
    }
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  put {}",
        summary(puts)
    );
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  get {}  failures={failures}",
        summary(gets)
    );
    println!(
        "dht     N={n:<3} k={replication:<3} value={size} B  get, reader did not hold the record: {}",
        summary(remote_gets)
    );
    cluster.shutdown().await;
    Ok(())
}
