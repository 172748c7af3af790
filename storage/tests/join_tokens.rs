//! Join tokens in the Raft state machine: creation bounds, redemption (uses, expiry, revocation,
//! wrong secrets, idempotence per node), and that the state survives a snapshot.

use bzzz_storage::Store;
use bzzz_storage::raft::join_tokens::{MAX_JOIN_TOKENS, MAX_TOKEN_USES};
use bzzz_storage::raft::{
    Command, Entry, JoinGrant, JoinRefusal, JoinTokenRecord, Request, Response, SledStateMachine,
};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Machine {
    sm: SledStateMachine,
    index: u64,
    _dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Result<Machine, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path())?;
        Ok(Machine {
            sm: SledStateMachine::new(&store)?,
            index: 0,
            _dir: dir,
        })
    }

    async fn apply(&mut self, command: Command) -> Result<Response, Box<dyn std::error::Error>> {
        self.index += 1;
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(Request::new(command, 1)),
        };
        Ok(self.sm.apply([entry]).await?.remove(0))
    }

    async fn redeem(
        &mut self,
        id: &str,
        secret: &[u8; 32],
        peer: &[u8],
        at_ms: u64,
    ) -> Result<Response, Box<dyn std::error::Error>> {
        self.apply(Command::RedeemJoinToken {
            id: id.to_owned(),
            secret_hash: *secret,
            peer_id: peer.to_vec(),
            at_ms,
        })
        .await
    }
}

const SECRET: [u8; 32] = [7; 32];

fn token(uses: u32) -> JoinTokenRecord {
    JoinTokenRecord {
        secret_hash: SECRET,
        roles: vec!["agent".to_owned()],
        voter: false,
        cert_ttl_ms: 60_000,
        created_ms: 1_000,
        expires_ms: 10_000,
        uses,
        redeemed: Vec::new(),
        revoked: false,
        description: "test".to_owned(),
    }
}

fn create(id: &str, token: JoinTokenRecord) -> Command {
    Command::CreateJoinToken {
        id: id.to_owned(),
        token,
    }
}

fn granted() -> Response {
    Response::JoinToken(Ok(JoinGrant {
        roles: vec!["agent".to_owned()],
        voter: false,
        cert_ttl_ms: 60_000,
    }))
}

/// Uses are counted per node: a second node past the last use is refused, the same node again
/// is not (its first answer may have been lost); wrong secrets, unknown ids, expiry and
/// revocation are refused with their own reasons.
#[tokio::test]
async fn redemption_rules() -> TestResult {
    let mut m = Machine::new()?;
    assert_eq!(m.apply(create("abc123", token(2))).await?, Response::Ok);
    assert_eq!(m.redeem("abc123", &SECRET, b"peer-a", 2_000).await?, granted());
    assert_eq!(
        m.redeem("abc123", &SECRET, b"peer-a", 2_001).await?,
        granted(),
        "same node again"
    );
    assert_eq!(m.redeem("abc123", &SECRET, b"peer-b", 2_002).await?, granted());
    assert_eq!(
        m.redeem("abc123", &SECRET, b"peer-c", 2_003).await?,
        Response::JoinToken(Err(JoinRefusal::UsedUp)),
        "a third node exceeds two uses"
    );
    let stored = m.sm.join_token("abc123")?.ok_or("token gone")?;
    assert_eq!(stored.redeemed, vec![b"peer-a".to_vec(), b"peer-b".to_vec()]);
    assert_eq!(stored.uses_left(), 0);

    assert_eq!(
        m.redeem("abc123", &[8; 32], b"peer-d", 2_004).await?,
        Response::JoinToken(Err(JoinRefusal::Invalid)),
        "wrong secret"
    );
    assert_eq!(
        m.redeem("zzz999", &SECRET, b"peer-d", 2_004).await?,
        Response::JoinToken(Err(JoinRefusal::Invalid)),
        "unknown id"
    );
    assert_eq!(
        m.redeem("NOT-AN-ID", &SECRET, b"peer-d", 2_004).await?,
        Response::JoinToken(Err(JoinRefusal::Invalid)),
        "malformed id"
    );

    assert_eq!(m.apply(create("exp001", token(5))).await?, Response::Ok);
    assert_eq!(
        m.redeem("exp001", &SECRET, b"peer-e", 10_000).await?,
        Response::JoinToken(Err(JoinRefusal::Expired)),
        "at expiry"
    );
    assert_eq!(m.apply(create("rev001", token(5))).await?, Response::Ok);
    assert_eq!(
        m.apply(Command::RevokeJoinToken { id: "rev001".into() }).await?,
        Response::Ok
    );
    assert_eq!(
        m.redeem("rev001", &SECRET, b"peer-f", 2_000).await?,
        Response::JoinToken(Err(JoinRefusal::Revoked))
    );
    assert!(matches!(
        m.apply(Command::RevokeJoinToken { id: "nope00".into() }).await?,
        Response::Rejected { .. }
    ));
    Ok(())
}

/// Bad content is rejected with a reason and stores nothing; the count is bounded, and dead
/// tokens make room.
#[tokio::test]
async fn creation_bounds() -> TestResult {
    let mut m = Machine::new()?;
    let bad: Vec<(&str, JoinTokenRecord)> = vec![
        ("ABCDEF", token(1)),
        ("abc12", token(1)),
        ("abc123", token(0)),
        ("abc123", token(MAX_TOKEN_USES + 1)),
        (
            "abc123",
            JoinTokenRecord {
                expires_ms: 1_000,
                ..token(1)
            },
        ),
        (
            "abc123",
            JoinTokenRecord {
                roles: vec!["no good".into()],
                ..token(1)
            },
        ),
        (
            "abc123",
            JoinTokenRecord {
                description: "x".repeat(300),
                ..token(1)
            },
        ),
        (
            "abc123",
            JoinTokenRecord {
                revoked: true,
                ..token(1)
            },
        ),
    ];
    for (id, t) in bad {
        let answer = m.apply(create(id, t.clone())).await?;
        assert!(
            matches!(answer, Response::Rejected { .. }),
            "{id} {t:?} was accepted: {answer:?}"
        );
    }
    assert!(m.sm.join_tokens()?.is_empty(), "a rejected token was stored");

    assert_eq!(m.apply(create("dup000", token(1))).await?, Response::Ok);
    assert!(matches!(
        m.apply(create("dup000", token(1))).await?,
        Response::Rejected { .. }
    ));

    for i in 1..MAX_JOIN_TOKENS {
        assert_eq!(m.apply(create(&format!("t{i:05}"), token(1))).await?, Response::Ok);
    }
    let answer = m.apply(create("full00", token(1))).await?;
    assert!(
        matches!(answer, Response::Rejected { .. }),
        "past the bound: {answer:?}"
    );
    // Once every token has expired, a new one drops them.
    let later = JoinTokenRecord {
        created_ms: 20_000,
        expires_ms: 30_000,
        ..token(1)
    };
    assert_eq!(m.apply(create("later0", later)).await?, Response::Ok);
    assert_eq!(m.sm.join_tokens()?.len(), 1, "expired tokens were not dropped");
    Ok(())
}

/// Tokens travel in snapshots like the rest of the key-value map.
#[tokio::test]
async fn tokens_survive_a_snapshot() -> TestResult {
    let mut a = Machine::new()?;
    a.apply(create("snap01", token(3))).await?;
    a.redeem("snap01", &SECRET, b"peer-a", 2_000).await?;
    let snapshot = a.sm.build_snapshot().await?;
    let mut b = Machine::new()?;
    b.sm.install_snapshot(&snapshot.meta, snapshot.snapshot).await?;
    let got = b.sm.join_token("snap01")?.ok_or("token missing after install")?;
    assert_eq!(got.redeemed, vec![b"peer-a".to_vec()]);
    assert_eq!(got.uses_left(), 2);
    Ok(())
}
