//! `Admission::judge` and the invalid-peer sweep, against real certificates of a throwaway CA.

use std::time::Duration;

use bzzz_protocol::cert;
use libp2p::identity::Keypair;
use prometheus_client::registry::Registry;

use super::files::{CertificateAuthority, NodeGrant};
use super::*;

fn grant(voter: bool, ttl: Duration) -> NodeGrant {
    NodeGrant {
        name: "n".into(),
        roles: vec!["agent".into()],
        voter,
        ttl,
    }
}

/// A node of `ca` with admission on, its own certificate in a temp dir.
fn node(ca: &CertificateAuthority, dir: &std::path::Path) -> (Admission, Registry) {
    let key = Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let chain = ca
        .sign_node(&peer, &grant(true, Duration::from_secs(600)))
        .expect("sign");
    files::write_public(&dir.join("node.crt"), &cert::chain_to_pem(&chain)).expect("write");
    ca.write_cert(&dir.join("ca.crt")).expect("ca");
    let mut registry = Registry::default();
    let metrics = AdmissionMetrics::new(&mut registry);
    let settings = AdmissionSettings {
        ca_cert_file: Some(dir.join("ca.crt")),
        cert_file: dir.join("node.crt"),
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        wants_voter: true,
        ca_fingerprint: None,
        learned_ca_file: dir.join("learned-ca.crt"),
        join_token_file: None,
        issuer: None,
        seed: None,
    };
    (Admission::load(peer, &settings, metrics).expect("load"), registry)
}

fn hello_of(chain: Option<CertificateChain>) -> AdmitHello {
    AdmitHello {
        protocol: protocols::ADMIT.into(),
        cluster_id: Vec::new(),
        chain,
        wants_join: false,
    }
}

/// A peer with a valid certificate of this cluster is admitted with what it says; no
/// certificate, another cluster's, one for another peer, a revoked one and an unknown
/// protocol are each refused with their own reason.
#[test]
fn judge_admits_only_this_clusters_certificate_for_the_presenter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::generate("a", Duration::from_secs(3600)).expect("ca");
    let other = CertificateAuthority::generate("b", Duration::from_secs(3600)).expect("ca");
    let (me, _r) = node(&ca, dir.path());

    let peer = Keypair::generate_ed25519().public().to_peer_id();
    let good = ca
        .sign_node(&peer, &grant(false, Duration::from_secs(600)))
        .expect("sign");
    let admitted = me.judge(&peer, &hello_of(Some(good.clone()))).expect("admitted");
    assert!(!admitted.voter() && admitted.may_hold("agent") && !admitted.may_hold("operator"));

    let reason =
        |peer: &PeerId, chain: Option<CertificateChain>| me.judge(peer, &hello_of(chain)).expect_err("refused").reason;
    assert_eq!(reason(&peer, None), Reason::NoCertificate);
    let foreign = other
        .sign_node(&peer, &grant(true, Duration::from_secs(600)))
        .expect("sign");
    assert_eq!(reason(&peer, Some(foreign)), Reason::WrongCluster);
    let thief = Keypair::generate_ed25519().public().to_peer_id();
    assert_eq!(reason(&thief, Some(good.clone())), Reason::PeerMismatch);

    let serial = admitted.cert.as_ref().expect("cert").leaf.serial;
    me.revoke([serial]);
    assert!(me.is_revoked(serial));
    assert_eq!(reason(&peer, Some(good.clone())), Reason::Revoked);

    let mut wrong_protocol = hello_of(Some(good));
    wrong_protocol.protocol = "/bzzz/admit/99".into();
    assert_eq!(
        me.judge(&peer, &wrong_protocol).expect_err("refused").reason,
        Reason::UnsupportedProtocol
    );
}

/// Admitted peers whose certificate expires or is revoked later are reported by the sweep
/// (which the event loop disconnects), and only those.
#[test]
fn invalid_peers_are_found_after_expiry_and_revocation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::generate("a", Duration::from_secs(3600)).expect("ca");
    let (me, _r) = node(&ca, dir.path());
    let mut peers = Vec::new();
    for ttl in [60, 600, 600] {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let chain = ca
            .sign_node(&peer, &grant(false, Duration::from_secs(ttl)))
            .expect("sign");
        let admitted = me.judge(&peer, &hello_of(Some(chain))).expect("admitted");
        me.admit(peer, admitted.clone());
        peers.push((peer, admitted));
    }
    assert_eq!(me.admitted_count(), 3);
    let now = now_unix_ms();
    assert!(me.invalid_peers(now).is_empty());
    let revoked = peers[2].1.cert.as_ref().expect("cert").leaf.serial;
    me.revoke([revoked]);
    let mut found = me.invalid_peers(now + 120_000);
    found.sort_by_key(|(p, _)| peers.iter().position(|(q, _)| q == p));
    assert_eq!(
        found,
        vec![(peers[0].0, Reason::Expired), (peers[2].0, Reason::Revoked)]
    );
    me.forget(&peers[0].0);
    assert!(me.peer(&peers[0].0).is_none());
    assert!(me.peer(&peers[1].0).is_some());
}

/// A node never starts with a certificate its peers would refuse: for another peer, of another
/// cluster, or without the voter right it is configured to use.
#[test]
fn load_refuses_an_unusable_own_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::generate("a", Duration::from_secs(3600)).expect("ca");
    ca.write_cert(&dir.path().join("ca.crt")).expect("ca");
    let me = Keypair::generate_ed25519().public().to_peer_id();
    let someone = Keypair::generate_ed25519().public().to_peer_id();
    let write = |chain: &CertificateChain| {
        files::write_public(&dir.path().join("node.crt"), &cert::chain_to_pem(chain)).expect("write")
    };
    let settings = |wants_voter| AdmissionSettings {
        ca_cert_file: Some(dir.path().join("ca.crt")),
        cert_file: dir.path().join("node.crt"),
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        wants_voter,
        ca_fingerprint: None,
        learned_ca_file: dir.path().join("learned-ca.crt"),
        join_token_file: None,
        issuer: None,
        seed: None,
    };
    let load = |wants_voter| {
        let mut registry = Registry::default();
        Admission::load(me, &settings(wants_voter), AdmissionMetrics::new(&mut registry))
    };
    write(
        &ca.sign_node(&someone, &grant(true, Duration::from_secs(600)))
            .expect("sign"),
    );
    let err = load(true).expect_err("another peer's certificate").to_string();
    assert!(err.contains("node.crt") && err.contains("presented by"), "{err}");
    write(
        &ca.sign_node(&me, &grant(false, Duration::from_secs(600)))
            .expect("sign"),
    );
    assert!(matches!(load(true), Err(AdmissionError::NotAVoter { .. })));
    load(false).expect("a non-voter certificate serves a non-voter");
    assert!(matches!(
        Admission::load(
            me,
            &AdmissionSettings {
                cert_file: dir.path().join("missing.crt"),
                ..settings(false)
            },
            AdmissionMetrics::new(&mut Registry::default())
        ),
        Err(AdmissionError::File(_))
    ));
}

/// Join tests: a voter holding the issuer, and a node with only a token and the fingerprint,
/// run the real handshake over an in-memory connection. The cluster's redemption (Raft on the
/// admin) is stood in for by a table of one token: the end-to-end path is in
/// `tests/tests/t61_join_tokens.rs`.
mod join {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::BoxFuture;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::super::handshake::AdmitUpgrade;
    use super::super::join::{Grant, JoinAttempt, RedeemRefusal};
    use super::*;

    const TOKEN: &str = "abc123.0123456789abcdef";

    #[derive(Debug, Default)]
    struct OneToken {
        calls: AtomicUsize,
    }

    impl Redeemer for OneToken {
        fn redeem(&self, _: PeerId, id: String, hash: [u8; 32]) -> BoxFuture<'static, Result<Grant, RedeemRefusal>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let ok = id == "abc123" && hash == super::super::join::hash_secret("0123456789abcdef");
            Box::pin(async move {
                if ok {
                    Ok(Grant {
                        roles: vec!["agent".into()],
                        voter: false,
                        cert_ttl_ms: 600_000,
                    })
                } else {
                    Err(RedeemRefusal {
                        code: "token_invalid".into(),
                        message: "join token is not valid".into(),
                    })
                }
            })
        }
    }

    struct Voter {
        admission: Arc<Admission>,
        redeemer: Arc<OneToken>,
        _registry: Registry,
    }

    fn voter(ca: &CertificateAuthority, dir: &std::path::Path, with_issuer: bool) -> Voter {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let chain = ca
            .sign_node(&peer, &grant(true, Duration::from_secs(600)))
            .expect("sign");
        files::write_public(&dir.join("node.crt"), &cert::chain_to_pem(&chain)).expect("write");
        ca.write_cert(&dir.join("ca.crt")).expect("ca");
        ca.create_issuer(dir, "issuer", vec!["agent".into()], false, Duration::from_secs(3600))
            .expect("issuer");
        let mut registry = Registry::default();
        let settings = AdmissionSettings {
            ca_cert_file: Some(dir.join("ca.crt")),
            cert_file: dir.join("node.crt"),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            wants_voter: true,
            ca_fingerprint: None,
            learned_ca_file: dir.join("learned-ca.crt"),
            join_token_file: None,
            issuer: with_issuer.then(|| (dir.join(files::ISSUER_KEY_FILE), dir.join(files::ISSUER_CERT_FILE))),
            seed: None,
        };
        let admission = Arc::new(Admission::load(peer, &settings, AdmissionMetrics::new(&mut registry)).expect("load"));
        let redeemer = Arc::new(OneToken::default());
        admission.set_redeemer(redeemer.clone());
        Voter {
            admission,
            redeemer,
            _registry: registry,
        }
    }

    fn joiner(pinned: ClusterId, dir: &std::path::Path, token: &str) -> (Arc<Admission>, PeerId) {
        std::fs::create_dir_all(dir).expect("dir");
        std::fs::write(dir.join("token"), token).expect("token");
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let settings = AdmissionSettings {
            ca_cert_file: None,
            cert_file: dir.join("node.crt"),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            wants_voter: false,
            ca_fingerprint: Some(pinned),
            learned_ca_file: dir.join("ca.crt"),
            join_token_file: Some(dir.join("token")),
            issuer: None,
            seed: None,
        };
        let admission =
            Admission::load(peer, &settings, AdmissionMetrics::new(&mut Registry::default())).expect("load");
        assert!(admission.joining(), "a node with a token and no certificate joins");
        (Arc::new(admission), peer)
    }

    /// Runs one connection between the joiner (dialer) and the voter; both sides end it.
    async fn connect(joiner: &Arc<Admission>, joiner_peer: PeerId, voter: &Arc<Admission>) -> JoinAttempt {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let dial = AdmitUpgrade::new(joiner.clone(), voter.local).run(a.compat(), true);
        let listen = AdmitUpgrade::new(voter.clone(), joiner_peer).run(b.compat(), false);
        let (dialed, listened) = tokio::join!(dial, listen);
        assert!(
            dialed.is_err() && listened.is_err(),
            "a join never becomes a connection"
        );
        joiner.take_join_attempt().expect("the attempt is recorded")
    }

    /// The joiner receives a certificate with the granted roles from the voter's issuer, stores
    /// it and the CA certificate, and is then an admitted node of the cluster.
    #[tokio::test]
    async fn a_token_buys_a_certificate_from_a_voter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("a", Duration::from_secs(7200)).expect("ca");
        let v = voter(&ca, dir.path(), true);
        let (j, peer) = joiner(ca.cluster_id(), &dir.path().join("joiner"), TOKEN);
        assert_eq!(connect(&j, peer, &v.admission).await, JoinAttempt::Joined);
        assert!(!j.joining());
        let cert = j.local_certificate().expect("certified");
        assert_eq!(cert.leaf.roles, ["agent"]);
        assert!(!cert.leaf.voter);
        assert!(cert.issuer_serial.is_some(), "signed by the issuer, not the CA");
        assert_eq!(j.cluster_id(), Some(ca.cluster_id()));
        assert!(dir.path().join("joiner/node.crt").exists() && dir.path().join("joiner/ca.crt").exists());
        // The voter admits the certificate it issued.
        assert!(v.admission.judge(&peer, &j.hello()).is_ok());
    }

    /// A wrong secret is final (the node stops); a voter without the issuer says it cannot
    /// serve joins; a joiner pinned to another cluster never presents its token.
    #[tokio::test]
    async fn refusals_say_why_and_never_leak_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::generate("a", Duration::from_secs(7200)).expect("ca");
        let other = CertificateAuthority::generate("b", Duration::from_secs(7200)).expect("ca");
        let v = voter(&ca, &dir.path().join("v1"), true);

        let (j, peer) = joiner(ca.cluster_id(), &dir.path().join("wrong"), "abc123.ffffffffffffffff");
        match connect(&j, peer, &v.admission).await {
            JoinAttempt::Fatal(m) => assert!(m.contains("token_invalid"), "{m}"),
            other => panic!("expected a final refusal, got {other:?}"),
        }
        assert!(j.joining() && j.local_certificate().is_none());

        let calls = v.redeemer.calls.load(Ordering::SeqCst);
        let (j, peer) = joiner(other.cluster_id(), &dir.path().join("pinned"), TOKEN);
        match connect(&j, peer, &v.admission).await {
            JoinAttempt::Retry(m) => assert!(m.contains("is not a voter of cluster"), "{m}"),
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(
            v.redeemer.calls.load(Ordering::SeqCst),
            calls,
            "a joiner pinned to another cluster must not present its token"
        );

        let plain = voter(&ca, &dir.path().join("v2"), false);
        let (j, peer) = joiner(ca.cluster_id(), &dir.path().join("noissuer"), TOKEN);
        match connect(&j, peer, &plain.admission).await {
            JoinAttempt::Retry(m) => assert!(m.contains("does not serve joins"), "{m}"),
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(plain.redeemer.calls.load(Ordering::SeqCst), 0);
    }

    /// Token text is parsed strictly and never shown by Debug.
    #[test]
    fn token_format() {
        let t = JoinToken::parse(TOKEN).expect("valid");
        assert_eq!(t.id(), "abc123");
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        for bad in [
            "abc123",
            "abc123.short",
            "ABC123.0123456789abcdef",
            "abc12.0123456789abcdef",
            "",
        ] {
            assert!(JoinToken::parse(bad).is_err(), "{bad:?} accepted");
        }
        let g = JoinToken::generate();
        assert!(JoinToken::parse(&g.reveal()).is_ok());
    }
}
