//! openraft's storage conformance suite, run on the sled log store and state machine.

use bzzz_storage::Store;
use bzzz_storage::raft::{RaftStorageError, SledLogStore, SledStateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{AnyError, StorageIOError};

/// Builds every store pair of the suite on a fresh temporary sled directory.
struct SledStoreBuilder;

/// Keeps one test's temporary directory, and the database in it, alive until the test ends.
struct TempStoreGuard {
    /// The database handle, dropped before the directory.
    _store: Store,
    /// The temporary directory, deleted on drop.
    _dir: tempfile::TempDir,
}

/// Wraps a setup failure as an openraft storage error, the only error the suite accepts.
fn setup_error(e: &(impl std::error::Error + 'static)) -> RaftStorageError {
    StorageIOError::write(AnyError::new(e)).into()
}

impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, TempStoreGuard> for SledStoreBuilder {
    async fn build(&self) -> Result<(TempStoreGuard, SledLogStore, SledStateMachine), RaftStorageError> {
        let dir = tempfile::tempdir().map_err(|e| setup_error(&e))?;
        let store = Store::open(dir.path()).map_err(|e| setup_error(&e))?;
        let log_store = SledLogStore::new(&store).map_err(|e| setup_error(&e))?;
        let state_machine = SledStateMachine::new(&store).map_err(|e| setup_error(&e))?;
        let guard = TempStoreGuard {
            _store: store,
            _dir: dir,
        };
        Ok((guard, log_store, state_machine))
    }
}

/// The sled log store and state machine pass every test of openraft 0.9's storage suite: log
/// reads, appends, truncation and purging, vote and committed persistence, membership recovery,
/// applying entries, building and transferring a snapshot.
///
/// The suite makes its own tokio runtime per test, so this is a plain `#[test]`.
#[test]
fn openraft_storage_suite() -> Result<(), Box<RaftStorageError>> {
    Suite::test_all(SledStoreBuilder).map_err(Box::new)
}
