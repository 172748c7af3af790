//! `bzzz backup`: a consistent export of the running node's sled database, streamed over HTTP
//! (`POST /api/backup`) in the format of [`bzzz_storage::backup`]. The identity and X25519 key
//! files are not in the database and so never in a backup.

use std::io;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::Inner;

/// Bytes per chunk sent to the HTTP body.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered between the reading thread and the HTTP body.
const CHUNK_QUEUE: usize = 16;

/// Why a backup could not start.
#[derive(Debug, thiserror::Error)]
#[error("a backup is already being taken on this node; wait for it to finish")]
pub struct BackupBusy;

/// A `Write` that sends what it is given, in chunks, to a bounded channel (blocking when it is
/// full, so a slow client slows the reader instead of growing memory).
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading the backup"))
    }
}

impl io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// Starts a backup on a blocking thread of the node's service tasks and returns its bytes as a
/// stream. A failure midway ends the stream with an error (the file is then incomplete, which
/// `bzzz backup` detects by the missing checksum). One backup at a time.
pub(crate) fn stream(inner: &Inner) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static, BackupBusy> {
    let permit = inner
        .backup_running
        .clone()
        .try_acquire_owned()
        .map_err(|_| BackupBusy)?;
    let (tx, rx) = mpsc::channel(CHUNK_QUEUE);
    let store = inner.store.clone();
    let sm = inner.consensus.state_machine().cloned();
    let source = inner.client.local_peer_id().to_string();
    inner.tracker.spawn_blocking(move || {
        let _permit = permit;
        tracing::info!("backup started");
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match bzzz_storage::backup::write_backup(&store, &source, sm.as_ref(), &mut out) {
            Ok(info) => tracing::info!(
                trees = info.trees.len(),
                entries = info.entries,
                bytes = info.bytes,
                sha256 = %info.sha256,
                "backup finished"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "backup failed");
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
