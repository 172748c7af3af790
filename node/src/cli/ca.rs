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
            for role in &a.roles {
                bzzz_storage::raft::validate_role_name(role).map_err(|e| CliError::Local {
                    what: format!("--roles: `{role}`"),
                    reason: e.to_string(),
                })?;
            }
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
