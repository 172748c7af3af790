//! The credential verbs, on files only (never a node): `bzzz ca init|sign|show` (the cluster CA
//! and node certificates, Nebula-style, offline) and `bzzz keygen mesh-key` (the libp2p
//! pre-shared key every node of a mesh shares).

use std::path::PathBuf;
use std::time::Duration;

use bzzz_protocol::cert::{self, CertInfo, CertKind};
use clap::{Args, Subcommand};
use libp2p::PeerId;

use super::CliError;
use crate::admission::files::{self, CertificateAuthority, NodeGrant};

/// The `bzzz ca` verbs.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a cluster CA: DIR/ca.key (ed25519, mode 0600; keep it offline) and DIR/ca.crt
    /// (give it to every node as admission.ca_cert_file). Prints the cluster id, the CA's
    /// fingerprint. Never replaces an existing ca.key.
    Init(CaInitArgs),
    /// Sign a node certificate binding a peer id to its roles and voter right, with an expiry.
    Sign(CaSignArgs),
    /// Print what a certificate file says (each certificate of a chain) and, with --ca, whether it
    /// verifies.
    Show(CaShowArgs),
    /// Sign a revocation list naming certificate serials (`bzzz ca show` prints a serial; a
    /// node's is in `bzzz status` under security). Apply it with `bzzz admission revoke`: every
    /// node then refuses and disconnects those certificates, and keeps the list across restarts.
    Revoke(CaRevokeArgs),
    /// Create an online issuer: DIR/issuer.key (0600) and DIR/issuer.crt, signed by the CA. Give
    /// both to the voters (admission.issuer_key_file, issuer_cert_file): they then sign
    /// certificates for nodes that present a join token, within the issuer's roles (and voters
    /// only with --voter). Revoke its serial to stop everything it signed.
    Issuer(CaIssuerArgs),
}

/// Flags of `bzzz ca issuer`.
#[derive(Debug, Args)]
pub struct CaIssuerArgs {
    /// The CA directory (ca.key and ca.crt).
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// The directory to write issuer.key and issuer.crt into.
    #[arg(long, short)]
    pub out: PathBuf,
    /// A name for the issuer (listings; not used to authorise).
    #[arg(long, default_value = "issuer")]
    pub name: String,
    /// Roles the issuer may put in certificates, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "agent")]
    pub roles: Vec<String>,
    /// The issuer may certify voters. Then a join token can make a voter, and so can a
    /// compromised voter holding the issuer key (docs/security.md).
    #[arg(long)]
    pub voter: bool,
    /// Validity (`365d`, ...); no certificate it signs outlives it.
    #[arg(long, default_value = "365d", value_parser = files::parse_ttl)]
    pub ttl: Duration,
}

/// The `bzzz join-token` verbs (operator actions on a voter's API).
#[derive(Debug, Subcommand)]
pub enum JoinTokenCommand {
    /// Create a join token and print it (`id.secret`, shown once: the cluster keeps only a hash
    /// of the secret). A node given the token and the cluster fingerprint obtains its
    /// certificate from a voter at first start.
    Create(JoinTokenCreateArgs),
    /// List the cluster's join tokens: roles, uses, who used them, expiry, state.
    List(super::OperatorArgs),
    /// Revoke a join token: nodes presenting it are refused from now on (certificates already
    /// issued stay valid; revoke those with `bzzz ca revoke`).
    Revoke(JoinTokenRevokeArgs),
}

/// Flags of `bzzz join-token create`.
#[derive(Debug, Args)]
pub struct JoinTokenCreateArgs {
    /// Operator and client flags (--api names a voter holding the issuer key).
    #[command(flatten)]
    pub operator: super::OperatorArgs,
    /// Roles the certificates it gives list, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "agent")]
    pub roles: Vec<String>,
    /// The certificates give the voter right (the issuer must allow it).
    #[arg(long)]
    pub voter: bool,
    /// How long the token is accepted (`24h`, `7d`; at most 30 days).
    #[arg(long, default_value = "24h", value_parser = files::parse_ttl)]
    pub ttl: Duration,
    /// How many nodes may use it (1 to 1000).
    #[arg(long, default_value_t = 1)]
    pub uses: u32,
    /// How long the certificates it gives are valid (capped at the issuer's expiry).
    #[arg(long, default_value = "90d", value_parser = files::parse_ttl)]
    pub cert_ttl: Duration,
    /// What the token is for (shown by `join-token list`).
    #[arg(long, default_value = "")]
    pub description: String,
}

/// Flags of `bzzz join-token revoke`.
#[derive(Debug, Args)]
pub struct JoinTokenRevokeArgs {
    /// Operator and client flags.
    #[command(flatten)]
    pub operator: super::OperatorArgs,
    /// The token id (the part before the dot).
    pub id: String,
}

/// Checks every `--roles` value is a valid role name.
fn check_roles(roles: &[String]) -> Result<(), CliError> {
    for role in roles {
        bzzz_storage::raft::validate_role_name(role).map_err(|e| CliError::Local {
            what: format!("--roles: `{role}`"),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One line about a token: id, state, roles, uses, expiry, users, description.
fn token_line(t: &bzzz_client::types::JoinTokenInfo) -> String {
    let used = if t.used_by.is_empty() {
        String::new()
    } else {
        format!(" used by {}", t.used_by.join(", "))
    };
    let now = bzzz_storage::util::now_unix_ms();
    let expiry = if t.expires_ms > now {
        format!("expires in {}", human(t.expires_ms - now))
    } else {
        format!("expired {} ago", human(now - t.expires_ms))
    };
    format!(
        "{}  {:8} roles={}{} uses={}/{} {expiry}{used}{}",
        t.id,
        t.state,
        t.roles.join(","),
        if t.voter { " voter" } else { "" },
        t.used_by.len(),
        t.uses,
        if t.description.is_empty() {
            String::new()
        } else {
            format!("  ({})", t.description)
        }
    )
}

/// A duration in ms as `2d3h`, `5h12m`, `4m10s` or `12s`.
fn human(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m{}s", s % 60),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// `bzzz join-token create|list|revoke`.
pub(super) async fn join_token(c: &JoinTokenCommand) -> Result<(), CliError> {
    match c {
        JoinTokenCommand::Create(a) => {
            check_roles(&a.roles)?;
            let token = crate::admission::JoinToken::generate();
            let client = a.operator.client()?;
            let created = client
                .create_join_token(&bzzz_client::types::JoinTokenCreate {
                    id: token.id().to_owned(),
                    secret_hash: hex::encode(token.secret_hash()),
                    roles: a.roles.clone(),
                    voter: a.voter,
                    ttl_ms: ms(a.ttl),
                    uses: a.uses,
                    cert_ttl_ms: ms(a.cert_ttl),
                    description: a.description.clone(),
                })
                .await?;
            let cluster = client.join_tokens().await.map(|l| l.cluster_id).unwrap_or_default();
            if a.operator.client.json {
                println!(
                    "{}",
                    serde_json::json!({ "token": token.reveal(), "cluster_id": cluster, "info": created })
                );
                return Ok(());
            }
            // Only the token goes to stdout, so `> file` holds exactly what a joining node reads.
            println!("{}", token.reveal());
            eprintln!("{}", token_line(&created));
            eprintln!(
                "\nThe secret is shown once. Start a new node with:\n  BZZZ_JOIN_TOKEN_FILE=<file holding the token> BZZZ_CA_FINGERPRINT={cluster} BZZZ_BOOTSTRAP_PEERS=<voters> bzzz run"
            );
        }
        JoinTokenCommand::List(a) => {
            let list = a.client()?.join_tokens().await?;
            if super::print::printed_json(a.client.json, &list) {
                return Ok(());
            }
            println!("cluster {}", list.cluster_id);
            if list.tokens.is_empty() {
                println!("no join tokens");
            }
            for t in &list.tokens {
                println!("{}", token_line(t));
            }
        }
        JoinTokenCommand::Revoke(a) => {
            let t = a.operator.client()?.revoke_join_token(&a.id).await?;
            if super::print::printed_json(a.operator.client.json, &t) {
                return Ok(());
            }
            println!("{}", token_line(&t));
        }
    }
    Ok(())
}

/// Flags of `bzzz ca revoke`.
#[derive(Debug, Args)]
pub struct CaRevokeArgs {
    /// The CA directory (ca.key and ca.crt).
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// A serial to revoke (16 hex digits); repeatable, or comma-separated.
    #[arg(long = "serial", required = true, value_delimiter = ',', value_parser = parse_serial)]
    pub serials: Vec<u64>,
    /// Where to write the revocation list (text).
    #[arg(long, short)]
    pub out: PathBuf,
}

fn parse_serial(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text.trim(), 16).map_err(|_| format!("`{text}` is not a serial (up to 16 hex digits)"))
}

/// The `bzzz admission` verbs (talk to a node).
#[derive(Debug, Subcommand)]
pub enum AdmissionCommand {
    /// Apply a revocation list signed by the cluster CA (`bzzz ca revoke`) on the node at --api,
    /// which publishes it to the whole mesh (operator action).
    Revoke(AdmissionRevokeArgs),
}

/// Flags of `bzzz admission revoke`.
#[derive(Debug, Args)]
pub struct AdmissionRevokeArgs {
    /// Operator and client flags.
    #[command(flatten)]
    pub operator: super::OperatorArgs,
    /// The revocation list file.
    #[arg(long)]
    pub file: PathBuf,
}

/// Flags of `bzzz ca init`.
#[derive(Debug, Args)]
pub struct CaInitArgs {
    /// The directory to create the CA in.
    #[arg(long)]
    pub dir: PathBuf,
    /// A name for the cluster (shown in listings).
    #[arg(long, default_value = "bzzz")]
    pub name: String,
    /// How long the CA is valid (`10y`, `365d`, ...); no certificate outlives it.
    #[arg(long, default_value = "10y", value_parser = files::parse_ttl)]
    pub ttl: Duration,
}

/// Flags of `bzzz ca sign`.
#[derive(Debug, Args)]
pub struct CaSignArgs {
    /// The CA directory (ca.key and ca.crt).
    #[arg(long)]
    pub ca_dir: PathBuf,
    /// The node's peer id (`bzzz identity show KEYFILE` prints it).
    #[arg(long)]
    pub peer_id: PeerId,
    /// A name for the node (listings and logs; not used to authorise).
    #[arg(long)]
    pub name: String,
    /// Roles the node may hold, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "agent")]
    pub roles: Vec<String>,
    /// The node may be a Raft voter (and so the admin).
    #[arg(long)]
    pub voter: bool,
    /// Validity (`90d`, `24h`, ...), capped at the CA's own expiry.
    #[arg(long, default_value = "90d", value_parser = files::parse_ttl)]
    pub ttl: Duration,
    /// Where to write the certificate chain (PEM text, mode 0644; replaces a previous one, which
    /// is how a certificate is renewed).
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Flags of `bzzz ca show`.
#[derive(Debug, Args)]
pub struct CaShowArgs {
    /// A certificate or chain file.
    pub file: PathBuf,
    /// The cluster CA certificate to verify a node chain against.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// The `bzzz keygen` verbs.
#[derive(Debug, Subcommand)]
pub enum KeygenCommand {
    /// Write a new mesh key (a libp2p pre-shared key, mode 0600) for p2p.swarm_key_file. Every
    /// node of a mesh needs the same one. `--out -` writes it to stdout (for `docker secret
    /// create bzzz_swarm_key -`). Never replaces an existing file.
    MeshKey(MeshKeyArgs),
}

/// Flags of `bzzz keygen mesh-key`.
#[derive(Debug, Args)]
pub struct MeshKeyArgs {
    /// Where to write the key; `-` for stdout.
    #[arg(long, short)]
    pub out: PathBuf,
}

fn local(what: &str) -> impl FnOnce(files::FileError) -> CliError + '_ {
    move |e| CliError::Local {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// `bzzz ca init|sign|show`.
pub(super) fn run(c: &CaCommand) -> Result<(), CliError> {
    match c {
        CaCommand::Init(a) => {
            let ca = CertificateAuthority::init(&a.dir, &a.name, a.ttl).map_err(local("cannot create the CA"))?;
            println!("cluster id: {}", ca.cluster_id());
            println!(
                "private key: {} (keep offline)",
                a.dir.join(files::CA_KEY_FILE).display()
            );
            println!(
                "certificate: {} (admission.ca_cert_file on every node)",
                a.dir.join(files::CA_CERT_FILE).display()
            );
        }
        CaCommand::Sign(a) => {
            check_roles(&a.roles)?;
            let ca = CertificateAuthority::load(&a.ca_dir).map_err(local("cannot load the CA"))?;
            let grant = NodeGrant {
                name: a.name.clone(),
                roles: a.roles.clone(),
                voter: a.voter,
                ttl: a.ttl,
            };
            let chain = ca.sign_node(&a.peer_id, &grant).map_err(local("cannot sign"))?;
            files::write_public(&a.out, &cert::chain_to_pem(&chain)).map_err(local("cannot write the certificate"))?;
            if let Some(leaf) = chain.leaf.as_ref().and_then(|l| cert::decode(l).ok()) {
                print_info(&leaf);
            }
        }
        CaCommand::Issuer(a) => {
            check_roles(&a.roles)?;
            let ca = CertificateAuthority::load(&a.ca_dir).map_err(local("cannot load the CA"))?;
            let serial = ca
                .create_issuer(&a.out, &a.name, a.roles.clone(), a.voter, a.ttl)
                .map_err(local("cannot create the issuer"))?;
            println!("issuer serial: {serial:016x} (revoke it with `bzzz ca revoke --serial {serial:016x}`)");
            println!(
                "private key: {} (admission.issuer_key_file on each voter)",
                a.out.join(files::ISSUER_KEY_FILE).display()
            );
            println!(
                "certificate: {} (admission.issuer_cert_file on each voter)",
                a.out.join(files::ISSUER_CERT_FILE).display()
            );
            println!(
                "may certify roles {}{}",
                a.roles.join(","),
                if a.voter { " and voters" } else { "" }
            );
        }
        CaCommand::Revoke(a) => {
            let ca = CertificateAuthority::load(&a.ca_dir).map_err(local("cannot load the CA"))?;
            let revocation = ca.revoke(&a.serials).map_err(local("cannot sign the revocation"))?;
            files::write_public(&a.out, &cert::revocation_to_pem(&revocation))
                .map_err(local("cannot write the revocation"))?;
            let serials: Vec<String> = a.serials.iter().map(|s| format!("{s:016x}")).collect();
            println!("revocation of {} written to {}", serials.join(", "), a.out.display());
            println!("apply it: bzzz admission revoke --file {} --api URL", a.out.display());
        }
        CaCommand::Show(a) => {
            let text = std::fs::read_to_string(&a.file).map_err(|e| CliError::Local {
                what: format!("cannot read {}", a.file.display()),
                reason: e.to_string(),
            })?;
            let certs = cert::from_pem(&text).map_err(|e| CliError::Local {
                what: format!("{}", a.file.display()),
                reason: e.to_string(),
            })?;
            for (i, c) in certs.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                let info = cert::decode(c).map_err(|e| CliError::Local {
                    what: format!("{} (certificate {})", a.file.display(), i + 1),
                    reason: e.to_string(),
                })?;
                print_info(&info);
            }
            if let Some(ca) = &a.ca {
                let anchor = files::read_anchor(ca).map_err(local("cannot read the CA certificate"))?;
                let chain = files::read_chain(&a.file).map_err(local("cannot read the chain"))?;
                let leaf = chain
                    .leaf
                    .as_ref()
                    .and_then(|l| cert::decode(l).ok())
                    .ok_or_else(|| CliError::Local {
                        what: format!("{}", a.file.display()),
                        reason: "no node certificate".into(),
                    })?;
                anchor
                    .verify_node(&chain, &leaf.peer_id(), bzzz_storage::util::now_unix_ms(), &|_| false)
                    .map_err(|e| CliError::Failed {
                        code: "BZZZ-CERT-INVALID".into(),
                        message: e.to_string(),
                    })?;
                println!("\nverifies against cluster {}", anchor.cluster_id());
            }
        }
    }
    Ok(())
}

/// `bzzz admission revoke`.
pub(super) async fn admission(c: &AdmissionCommand) -> Result<(), CliError> {
    match c {
        AdmissionCommand::Revoke(a) => {
            let text = std::fs::read_to_string(&a.file).map_err(|e| CliError::Local {
                what: format!("cannot read {}", a.file.display()),
                reason: e.to_string(),
            })?;
            let v = a.operator.client()?.submit_revocation(&text).await?;
            if super::print::printed_json(a.operator.client.json, &v) {
                return Ok(());
            }
            println!(
                "revoked {} in cluster {} ({}); the node refuses {} serials{}",
                v.serials.join(", "),
                v.cluster_id,
                if v.new { "new" } else { "already known" },
                v.revoked_serials,
                if v.published {
                    ", published to the mesh"
                } else {
                    "; not published now (the admin re-publishes within 30 s)"
                }
            );
        }
    }
    Ok(())
}

/// `bzzz keygen mesh-key`.
pub(super) fn keygen(c: &KeygenCommand) -> Result<(), CliError> {
    match c {
        KeygenCommand::MeshKey(a) if a.out.as_os_str() == "-" => {
            use std::io::Write;
            let text = zeroize::Zeroizing::new(files::mesh_key_text());
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::Local {
                    what: "cannot write the key to stdout".into(),
                    reason: e.to_string(),
                })?;
        }
        KeygenCommand::MeshKey(a) => {
            files::write_mesh_key(&a.out).map_err(local("cannot write the mesh key"))?;
            let psk = crate::network::load_swarm_key(&a.out).map_err(|e| CliError::Local {
                what: "cannot read back the mesh key".into(),
                reason: e.to_string(),
            })?;
            println!("wrote {} (fingerprint {})", a.out.display(), psk.fingerprint());
        }
    }
    Ok(())
}

fn print_info(info: &CertInfo) {
    let kind = match info.kind {
        CertKind::Ca => "cluster CA",
        CertKind::Issuer => "issuer",
        CertKind::Node => "node",
        CertKind::Operator => "operator",
        CertKind::Unspecified => "unspecified",
    };
    let time = |ms: u64| {
        let secs = ms / 1000;
        format!("{secs} (unix seconds)")
    };
    println!("kind:       {kind}");
    println!("name:       {}", info.name);
    println!("cluster:    {}", info.cluster_id);
    println!("peer id:    {}", info.peer_id());
    println!("serial:     {:016x}", info.serial);
    println!("roles:      {}", info.roles.join(","));
    println!("voter:      {}", info.voter);
    println!("not before: {}", time(info.not_before_ms));
    println!("not after:  {}", time(info.not_after_ms));
}
