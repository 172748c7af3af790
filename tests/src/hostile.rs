//! Hand-made Raft requests, as a hostile or compromised peer would send them on `/bzzz/raft/1`:
//! the framing is bzzz's, each body openraft's own request encoded with the storage codec (what
//! the daemon sends), so the receiver decodes them like any other.

use bzzz_protocol::wire::{PreVoteRequest, RaftRequest, RaftResponse, raft_request, raft_response};
use bzzz_storage::codec;
use bzzz_storage::raft::TypeConfig;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{SnapshotMeta, StoredMembership, Vote};

fn request(body: raft_request::Body) -> RaftRequest {
    RaftRequest { body: Some(body) }
}

fn encoded<T: serde::Serialize>(v: &T) -> Vec<u8> {
    codec::encode(v).expect("openraft requests encode")
}

/// A vote request from `candidate` at `term`, claiming an empty log.
pub fn vote(term: u64, candidate: u64) -> RaftRequest {
    let req = VoteRequest::<u64>::new(Vote::new(term, candidate), None);
    request(raft_request::Body::Vote(encoded(&req)))
}

/// A pre-vote from `candidate`, claiming an empty log.
pub fn pre_vote(candidate: u64) -> RaftRequest {
    request(raft_request::Body::PreVote(PreVoteRequest {
        candidate,
        last_log_id: encoded(&Option::<openraft::LogId<u64>>::None),
    }))
}

/// An empty append from `leader` at `term`, claiming a committed leadership.
pub fn append_entries(term: u64, leader: u64) -> RaftRequest {
    let req = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(term, leader),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    request(raft_request::Body::AppendEntries(encoded(&req)))
}

/// One snapshot chunk from `leader` at `term`, placed at `offset` (a huge offset would make a
/// receiver that trusts it allocate that much).
pub fn install_snapshot(term: u64, leader: u64, offset: u64) -> RaftRequest {
    let req = InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(term, leader),
        meta: SnapshotMeta {
            last_log_id: None,
            last_membership: StoredMembership::default(),
            snapshot_id: "hostile".into(),
        },
        offset,
        data: vec![0u8; 16],
        done: false,
    };
    request(raft_request::Body::InstallSnapshot(encoded(&req)))
}

/// The refusal reason of a `forbidden` answer (`not_voter`, `node_id_mismatch`, ...), or `None`
/// when the request was not refused as forbidden.
pub fn forbidden_reason(response: &RaftResponse) -> Option<String> {
    match &response.body {
        Some(raft_response::Body::Failure(f)) if f.kind == "forbidden" => {
            Some(f.message.trim_start_matches("refused: ").to_owned())
        }
        _ => None,
    }
}
