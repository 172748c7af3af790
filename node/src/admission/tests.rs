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
