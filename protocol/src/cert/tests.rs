use super::*;

const DAY: u64 = 86_400_000;
const NOW: u64 = 1_800_000_000_000;

fn no_revocations(_: u64) -> bool {
    false
}

struct Ca {
    key: Keypair,
    anchor: TrustAnchor,
}

impl Ca {
    fn new() -> Ca {
        let key = Keypair::generate_ed25519();
        let cert = self_signed_ca(&key, "test-ca", NOW - DAY, 365 * DAY, 1).expect("sign ca");
        Ca {
            anchor: TrustAnchor::new(cert).expect("a fresh CA certificate is a valid anchor"),
            key,
        }
    }

    fn public(&self) -> ed25519::PublicKey {
        self.anchor.info().subject.clone()
    }

    fn info(
        &self,
        kind: CertKind,
        subject: &Keypair,
        roles: &[&str],
        voter: bool,
        issuer: ed25519::PublicKey,
    ) -> CertInfo {
        new_info(
            kind,
            self.anchor.cluster_id(),
            ed25519_public(&subject.public()).expect("ed25519"),
            "n",
            roles.iter().map(|r| r.to_string()).collect(),
            voter,
            rand_serial(subject),
            NOW - 1000,
            30 * DAY,
            issuer,
        )
    }

    fn node(&self, subject: &Keypair, roles: &[&str], voter: bool) -> wire::CertificateChain {
        let info = self.info(CertKind::Node, subject, roles, voter, self.public());
        chain(sign(&info, &self.key).expect("sign"), None)
    }
}

fn rand_serial(k: &Keypair) -> u64 {
    let b = k.public().encode_protobuf();
    u64::from_le_bytes(b[b.len() - 8..].try_into().expect("8 bytes"))
}

fn chain(leaf: wire::Certificate, issuer: Option<wire::Certificate>) -> wire::CertificateChain {
    wire::CertificateChain {
        leaf: Some(leaf),
        issuer,
        ca: None,
    }
}

fn peer(k: &Keypair) -> PeerId {
    k.public().to_peer_id()
}

/// A node certificate signed by the CA verifies for its own peer, and says what was certified.
#[test]
fn ca_signed_node_certificate_verifies() {
    let ca = Ca::new();
    let node = Keypair::generate_ed25519();
    let v = ca
        .anchor
        .verify_node(
            &ca.node(&node, &["agent", "developer"], true),
            &peer(&node),
            NOW,
            &no_revocations,
        )
        .expect("valid chain");
    assert_eq!(v.leaf.peer_id(), peer(&node));
    assert!(v.leaf.voter && v.leaf.has_role("developer") && !v.leaf.has_role("operator"));
    assert_eq!(v.issuer_serial, None);
}

/// A certificate presented by another peer than the one it names is refused (a stolen
/// certificate is useless without the identity key the transport authenticated).
#[test]
fn certificate_of_another_peer_is_refused() {
    let ca = Ca::new();
    let node = Keypair::generate_ed25519();
    let thief = Keypair::generate_ed25519();
    let err = ca
        .anchor
        .verify_node(&ca.node(&node, &["agent"], false), &peer(&thief), NOW, &no_revocations)
        .expect_err("presented by another peer");
    assert_eq!(err.reason(), "peer_mismatch");
}

/// Time bounds, revocation and the cluster id are each enforced.
#[test]
fn expiry_revocation_and_cluster_are_enforced() {
    let ca = Ca::new();
    let node = Keypair::generate_ed25519();
    let c = ca.node(&node, &["agent"], false);
    let p = peer(&node);
    let expired = ca
        .anchor
        .verify_node(&c, &p, NOW + 31 * DAY, &no_revocations)
        .expect_err("expired");
    assert_eq!(expired.reason(), "expired");
    let early = ca
        .anchor
        .verify_node(&c, &p, NOW - 1000 - NOT_BEFORE_SKEW_MS - 1, &no_revocations)
        .expect_err("not yet valid");
    assert_eq!(early.reason(), "not_yet_valid");
    let serial = decode(c.leaf.as_ref().expect("leaf")).expect("decode").serial;
    let revoked = ca
        .anchor
        .verify_node(&c, &p, NOW, &|s| s == serial)
        .expect_err("revoked");
    assert_eq!(revoked, CertError::Revoked(serial));

    let other = Ca::new();
    let foreign = other.node(&node, &["agent"], true);
    let err = ca
        .anchor
        .verify_node(&foreign, &p, NOW, &no_revocations)
        .expect_err("foreign");
    assert_eq!(err.reason(), "wrong_cluster");
}

/// A certificate that claims this cluster but is signed by another key is refused, and so is a
/// body changed after signing.
#[test]
fn forged_and_tampered_certificates_are_refused() {
    let ca = Ca::new();
    let node = Keypair::generate_ed25519();
    let rogue = Keypair::generate_ed25519();
    // Claims the CA as issuer, signed by the rogue key.
    let mut info = ca.info(CertKind::Node, &node, &["operator"], true, ca.public());
    info.issuer_key = ed25519_public(&rogue.public()).expect("ed25519");
    let forged = sign(&info, &rogue).expect("sign");
    let mut body = wire::CertificateBody::decode(forged.body.as_slice()).expect("decode");
    body.issuer_key = ca.public().to_bytes().to_vec();
    let forged = wire::Certificate {
        body: body.encode_to_vec(),
        signature: forged.signature,
    };
    let err = ca
        .anchor
        .verify_node(&chain(forged, None), &peer(&node), NOW, &no_revocations)
        .expect_err("forged");
    assert_eq!(err.reason(), "bad_signature");

    let mut good = ca.node(&node, &["agent"], false);
    let leaf = good.leaf.as_mut().expect("leaf");
    let mut body = wire::CertificateBody::decode(leaf.body.as_slice()).expect("decode");
    body.voter = true;
    leaf.body = body.encode_to_vec();
    let err = ca
        .anchor
        .verify_node(&good, &peer(&node), NOW, &no_revocations)
        .expect_err("tampered");
    assert_eq!(err.reason(), "bad_signature");
}

/// A certificate signed by a CA-signed issuer verifies within the issuer's scope, and is refused
/// outside it: a role the issuer may not give, the voter right, a validity past the issuer's, a
/// revoked issuer, or an issuer that is missing or not signed by the CA.
#[test]
fn issuer_scope_is_enforced() {
    let ca = Ca::new();
    let issuer_key = Keypair::generate_ed25519();
    let issuer_pub = ed25519_public(&issuer_key.public()).expect("ed25519");
    let issuer_info = ca.info(
        CertKind::Issuer,
        &issuer_key,
        &["agent", "developer"],
        false,
        ca.public(),
    );
    let issuer_cert = sign(&issuer_info, &ca.key).expect("sign issuer");
    let node = Keypair::generate_ed25519();
    let p = peer(&node);
    let issued = |roles: &[&str], voter: bool, ttl: u64| {
        let mut info = ca.info(CertKind::Node, &node, roles, voter, issuer_pub.clone());
        info.not_after_ms = info.not_before_ms + ttl;
        sign(&info, &issuer_key).expect("sign leaf")
    };

    let ok = ca
        .anchor
        .verify_node(
            &chain(issued(&["agent"], false, DAY), Some(issuer_cert.clone())),
            &p,
            NOW,
            &no_revocations,
        )
        .expect("within scope");
    assert_eq!(ok.issuer_serial, Some(issuer_info.serial));

    let cases = [
        (
            issued(&["operator"], false, DAY),
            Some(issuer_cert.clone()),
            "issuer_scope",
        ),
        (issued(&["agent"], true, DAY), Some(issuer_cert.clone()), "issuer_scope"),
        (
            issued(&["agent"], false, 60 * DAY),
            Some(issuer_cert.clone()),
            "issuer_scope",
        ),
        (issued(&["agent"], false, DAY), None, "issuer_missing"),
    ];
    for (leaf, issuer, reason) in cases {
        let err = ca
            .anchor
            .verify_node(&chain(leaf, issuer), &p, NOW, &no_revocations)
            .expect_err(reason);
        assert_eq!(err.reason(), reason, "{err}");
    }
    let err = ca
        .anchor
        .verify_node(
            &chain(issued(&["agent"], false, DAY), Some(issuer_cert.clone())),
            &p,
            NOW,
            &|s| s == issuer_info.serial,
        )
        .expect_err("revoked issuer");
    assert_eq!(err, CertError::Revoked(issuer_info.serial));

    // An issuer certificate signed by itself, not the CA.
    let self_issued = sign(
        &ca.info(CertKind::Issuer, &issuer_key, &["agent"], true, issuer_pub.clone()),
        &issuer_key,
    )
    .expect("sign");
    let err = ca
        .anchor
        .verify_node(
            &chain(issued(&["agent"], false, DAY), Some(self_issued)),
            &p,
            NOW,
            &no_revocations,
        )
        .expect_err("issuer not signed by the CA");
    assert_eq!(err.reason(), "bad_signature");
}

/// Operator certificates come from the CA only, and a node certificate is not an operator's.
#[test]
fn operator_certificates_are_ca_signed_and_kind_checked() {
    let ca = Ca::new();
    let op = Keypair::generate_ed25519();
    let cert = sign(&ca.info(CertKind::Operator, &op, &[], false, ca.public()), &ca.key).expect("sign");
    let info = ca
        .anchor
        .verify_operator(&cert, NOW, &no_revocations)
        .expect("operator");
    assert_eq!(info.peer_id(), peer(&op));
    let node_cert = ca.node(&op, &["agent"], false).leaf.expect("leaf");
    let err = ca
        .anchor
        .verify_operator(&node_cert, NOW, &no_revocations)
        .expect_err("a node certificate is not an operator's");
    assert_eq!(err.reason(), "wrong_kind");
}

/// A pinned anchor accepts only the CA with the pinned fingerprint; the fingerprint parses from
/// its display form.
#[test]
fn pinned_anchor_checks_the_fingerprint() {
    let ca = Ca::new();
    let other = Ca::new();
    let id = ClusterId::parse(&format!("sha256:{}", ca.anchor.cluster_id())).expect("parse");
    assert_eq!(id, ca.anchor.cluster_id());
    TrustAnchor::pinned(ca.anchor.certificate().clone(), id).expect("pinned");
    let err = TrustAnchor::pinned(other.anchor.certificate().clone(), id).expect_err("other CA");
    assert_eq!(err.reason(), "wrong_cluster");
    assert!(ClusterId::parse("abc").is_err());
    // A node certificate is not an anchor.
    let node = Keypair::generate_ed25519();
    assert!(TrustAnchor::new(ca.node(&node, &[], false).leaf.expect("leaf")).is_err());
}

/// The text form round-trips a chain, and damaged text is refused by block number.
#[test]
fn pem_round_trip_and_errors() {
    let ca = Ca::new();
    let node = Keypair::generate_ed25519();
    let mut c = ca.node(&node, &["agent"], false);
    c.ca = Some(ca.anchor.certificate().clone());
    let text = chain_to_pem(&c);
    assert_eq!(chain_from_pem(&text).expect("parse"), c);
    assert_eq!(from_pem("nothing here"), Err(PemError::NoBlock));
    let cut = &text[..text.len() / 3];
    assert!(chain_from_pem(cut).is_err());
    assert_eq!(
        from_pem("-----BEGIN BZZZ CERTIFICATE-----\n!!!\n-----END BZZZ CERTIFICATE-----\n"),
        Err(PemError::BadBlock(1))
    );
}

/// The peer id of an ed25519 identity gives back its public key (what `bzzz ca sign --peer-id`
/// certifies).
#[test]
fn peer_id_yields_its_public_key() {
    let k = Keypair::generate_ed25519();
    assert_eq!(peer_public_key(&peer(&k)), ed25519_public(&k.public()));
}

proptest::proptest! {
    /// Arbitrary bytes as a certificate body, or as certificate text, never panic.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let cert = wire::Certificate { body: bytes.clone(), signature: bytes.clone() };
        let _ = decode(&cert);
        let _ = TrustAnchor::new(cert);
        let _ = from_pem(&String::from_utf8_lossy(&bytes));
        if let Ok(c) = wire::Certificate::decode(bytes.as_slice()) {
            let _ = decode(&c);
        }
    }
}
