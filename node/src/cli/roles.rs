//! The `bzzz roles` verbs: list, grant.

use super::print::{format_time_ms, printed_json};
use super::{CliError, ClientArgs, RolesGrantArgs, read_token_file};

/// `bzzz roles list`.
pub(super) async fn list(a: &ClientArgs) -> Result<(), CliError> {
    let v = a.client()?.roles().await?;
    if printed_json(a.json, &v) {
        return Ok(());
    }
    if !v.has_policy {
        println!("no role policy in the cluster state yet");
    }
    println!("{} roles", v.roles.len());
    println!(
        "  {:<16} {:>9}  {:<12} {:>5}  can read",
        "name", "authority", "self-service", "epoch"
    );
    for r in &v.roles {
        println!(
            "  {:<16} {:>9}  {:<12} {:>5}  {}",
            r.name,
            r.authority.to_string(),
            if r.self_service { "yes" } else { "no" },
            r.epoch.to_string(),
            if r.can_read.is_empty() {
                "-".to_string()
            } else {
                r.can_read.join(", ")
            }
        );
    }
    println!("{} grants", v.grants.len());
    for g in &v.grants {
        println!(
            "  {:<16} {}  {}  {}",
            g.role,
            g.peer_id,
            g.source,
            format_time_ms(g.granted_at_ms)
        );
    }
    println!("{} pending", v.pending.len());
    for p in &v.pending {
        println!(
            "  {:<16} {}  asked {}",
            p.role,
            p.peer_id,
            format_time_ms(p.requested_at_ms)
        );
    }
    Ok(())
}

/// `bzzz roles grant ROLE --peer ID` (an operator action).
pub(super) async fn grant(a: &RolesGrantArgs) -> Result<(), CliError> {
    let mut client = a.client.client()?;
    if let Some(token) = read_token_file(a.token_file.as_ref())? {
        client = client.with_token(token);
    }
    let v = client.grant_role(&a.role, &a.peer).await?;
    if !printed_json(a.client.json, &v) {
        println!("granted role {} to {}", v.role, v.peer_id);
    }
    Ok(())
}
