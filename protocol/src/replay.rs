//! A bounded replay window: remembers (sender, nonce) pairs of recently accepted envelopes.

use std::collections::{HashSet, VecDeque};

use libp2p_identity::PeerId;

use crate::envelope::RejectReason;

/// Remembers the last `capacity` (sender, nonce) pairs. Envelopes older than the envelope age
/// limit are rejected before they get here, so a window that holds at least every message of one
/// age-limit period catches every replay; when it is full the oldest entry is forgotten.
#[derive(Debug)]
pub struct ReplayWindow {
    capacity: usize,
    seen: HashSet<(PeerId, Vec<u8>)>,
    order: VecDeque<(PeerId, Vec<u8>)>,
}

impl ReplayWindow {
    /// A window remembering at most `capacity` pairs (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Records the pair; fails with [`RejectReason::Replayed`] if it was already there.
    pub fn check_and_insert(&mut self, sender: PeerId, nonce: &[u8]) -> Result<(), RejectReason> {
        let entry = (sender, nonce.to_vec());
        if self.seen.contains(&entry) {
            return Err(RejectReason::Replayed);
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(entry.clone());
        self.order.push_back(entry);
        Ok(())
    }

    /// Number of remembered pairs.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p_identity::Keypair;

    /// A pair is accepted once, refused the second time, and the window never exceeds its bound.
    #[test]
    fn replays_detected_and_bounded() {
        let p = Keypair::generate_ed25519().public().to_peer_id();
        let mut w = ReplayWindow::new(3);
        assert!(w.check_and_insert(p, b"a").is_ok());
        assert_eq!(w.check_and_insert(p, b"a"), Err(RejectReason::Replayed));
        assert!(
            w.check_and_insert(Keypair::generate_ed25519().public().to_peer_id(), b"a")
                .is_ok(),
            "same nonce, other sender is fine"
        );
        for n in 0..10u8 {
            assert!(w.check_and_insert(p, &[n]).is_ok());
        }
        assert_eq!(w.len(), 3, "window must stay at capacity");
    }
}
