//! Per-peer token buckets: how often one remote peer may ask for something, with the memory they
//! take bounded however many peers ask.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use libp2p::PeerId;

/// A token bucket per peer: `rate` requests a second, bursts up to `burst`. At most `max_peers`
/// buckets are kept; when full, idle peers' buckets (refilled to the brim) are dropped first, and
/// a new peer is refused while every tracked peer is active (deny by default).
#[derive(Debug)]
pub(crate) struct PeerLimiter {
    rate: f64,
    burst: f64,
    max_peers: usize,
    buckets: Mutex<HashMap<PeerId, (f64, Instant)>>,
}

impl PeerLimiter {
    pub(crate) fn new(rate: f64, burst: f64, max_peers: usize) -> Self {
        PeerLimiter {
            rate,
            burst,
            max_peers,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `peer` may make one more request now (and counts it if so).
    pub(crate) fn allow(&self, peer: &PeerId) -> bool {
        self.allow_at(peer, Instant::now())
    }

    fn allow_at(&self, peer: &PeerId, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.burst)
        };
        if !buckets.contains_key(peer) && buckets.len() >= self.max_peers {
            buckets.retain(|_, b| refill(*b) < self.burst);
            if buckets.len() >= self.max_peers {
                return false;
            }
        }
        let bucket = buckets.entry(*peer).or_insert((self.burst, now));
        let tokens = refill(*bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }
}

/// How many requests of one kind each peer may have queued or in progress at once: a peer
/// flooding one kind takes at most its share of the queue, so other peers' requests (members'
/// Raft heartbeats) still get in. At most `max_peers` peers are tracked; a new peer is refused
/// while that many have requests outstanding (deny by default).
#[derive(Debug)]
pub(crate) struct PeerQuota {
    per_peer: usize,
    max_peers: usize,
    taken: Mutex<HashMap<PeerId, usize>>,
}

/// One request counted against its peer's quota until dropped.
#[derive(Debug)]
pub(crate) struct QuotaTicket {
    quota: std::sync::Arc<PeerQuota>,
    peer: PeerId,
}

impl PeerQuota {
    pub(crate) fn new(per_peer: usize, max_peers: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(PeerQuota {
            per_peer,
            max_peers,
            taken: Mutex::new(HashMap::new()),
        })
    }

    /// A ticket for one more request of `peer`, or `None` when it has `per_peer` outstanding.
    pub(crate) fn take(self: &std::sync::Arc<Self>, peer: PeerId) -> Option<QuotaTicket> {
        let mut taken = self.taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !taken.contains_key(&peer) && taken.len() >= self.max_peers {
            return None;
        }
        let n = taken.entry(peer).or_insert(0);
        if *n >= self.per_peer {
            return None;
        }
        *n += 1;
        Some(QuotaTicket {
            quota: self.clone(),
            peer,
        })
    }

    /// Requests `peer` has outstanding.
    #[cfg(test)]
    pub(crate) fn outstanding(&self, peer: &PeerId) -> usize {
        self.taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(peer)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for QuotaTicket {
    fn drop(&mut self) {
        let mut taken = self
            .quota
            .taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = taken.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                taken.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A peer gets its burst at once, then `rate` a second; other peers are not affected; the
    /// table never holds more than `max_peers` buckets, dropping idle ones first.
    #[test]
    fn buckets_refill_at_the_rate_and_stay_bounded() {
        let limiter = PeerLimiter::new(2.0, 5.0, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| limiter.allow_at(&a, t0)).count(), 5);
        assert!(limiter.allow_at(&b, t0), "another peer has its own bucket");
        assert!(
            !limiter.allow_at(&c, t0),
            "a third peer is refused while both are active"
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..10).filter(|_| limiter.allow_at(&a, t1)).count(), 2, "2 a second");
        let later = t0 + Duration::from_secs(10);
        assert!(limiter.allow_at(&c, later), "idle buckets make room");
        assert!(limiter.buckets.lock().expect("lock").len() <= 2);
    }

    /// A peer gets at most its share; dropping a ticket gives it back; other peers are not
    /// affected; past `max_peers` new peers are refused until someone's requests finish.
    #[test]
    fn quota_bounds_each_peer_and_the_table() {
        let quota = PeerQuota::new(2, 2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t1 = quota.take(a).expect("first");
        let _t2 = quota.take(a).expect("second");
        assert!(quota.take(a).is_none(), "a third outstanding request is refused");
        let tb = quota.take(b).expect("another peer is not affected");
        assert!(
            quota.take(c).is_none(),
            "a third peer is refused while the table is full"
        );
        drop(t1);
        assert_eq!(quota.outstanding(&a), 1);
        assert!(quota.take(a).is_some(), "a returned ticket frees a slot");
        drop(tb);
        assert_eq!(quota.outstanding(&b), 0);
        assert!(quota.take(c).is_some(), "a finished peer leaves the table");
    }
}
