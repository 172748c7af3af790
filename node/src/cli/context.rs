//! The `bzzz context` verbs: put, get, delete, history, discover.

use std::path::PathBuf;

use bzzz_client::types::{ContextRead, VersionView};

use super::print::{format_time_ms, print_json, printed_json};
use super::{CliError, ContextAddressArgs, ContextGetArgs, ContextListArgs, ContextPutArgs};

/// Reads the content to write: `file`, or stdin.
fn read_content(file: Option<&PathBuf>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(f) => std::fs::read(f).map_err(|e| CliError::Local {
            what: format!("cannot read {}", f.display()),
            reason: e.to_string(),
        }),
        None => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).map_err(|e| CliError::Local {
                what: "cannot read stdin".into(),
                reason: e.to_string(),
            })?;
            Ok(buf)
        }
    }
}

/// `bzzz context put`.
pub(super) async fn put(a: &ContextPutArgs) -> Result<(), CliError> {
    let content = read_content(a.file.as_ref())?;
    let v = a.client.client()?.context_put(&a.address, content).await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!(
        "wrote {} version {} ({} replicas, record {}){}",
        v.address,
        v.version,
        v.replicas,
        v.record_key,
        if v.duplicate {
            " [duplicate of an earlier write]"
        } else {
            ""
        }
    );
    Ok(())
}

/// `bzzz context get`: the content to stdout or `--output`; `--json` prints the version instead.
pub(super) async fn get(a: &ContextGetArgs) -> Result<(), CliError> {
    let r = a.client.client()?.context_get(&a.address).await?;
    if a.client.json {
        /// The version read and the content's size, without the content.
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            read: &'a ContextRead,
            size: usize,
        }
        print_json(&Shown {
            read: &r,
            size: r.content.len(),
        });
        return Ok(());
    }
    match &a.output {
        Some(f) => std::fs::write(f, &r.content).map_err(|e| CliError::Local {
            what: format!("cannot write {}", f.display()),
            reason: e.to_string(),
        }),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(&r.content)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::Local {
                    what: "cannot write stdout".into(),
                    reason: e.to_string(),
                })
        }
    }
}

/// `bzzz context delete`.
pub(super) async fn delete(a: &ContextAddressArgs) -> Result<(), CliError> {
    let v = a.client.client()?.context_delete(&a.address).await?;
    if !printed_json(a.client.json, &v) {
        println!("deleted {} at version {}", v.address, v.version);
    }
    Ok(())
}

/// One line of a version listing.
fn version_line(v: &VersionView) -> String {
    format!(
        "v{:<4} {}  author {}  {} bytes  role {}{}",
        v.version.to_string(),
        format_time_ms(v.time_ms),
        v.author,
        v.size,
        v.role,
        if v.tombstone { "  deleted" } else { "" }
    )
}

/// `bzzz context history`.
pub(super) async fn history(a: &ContextListArgs) -> Result<(), CliError> {
    let v = a.client.client()?.context_history(&a.address, a.limit).await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!("{}: {} versions (showing {})", v.address, v.total, v.versions.len());
    for version in &v.versions {
        println!("  {}", version_line(version));
    }
    Ok(())
}

/// `bzzz context discover`.
pub(super) async fn discover(a: &ContextListArgs) -> Result<(), CliError> {
    let v = a.client.client()?.context_discover(&a.address, a.limit).await?;
    if printed_json(a.client.json, &v) {
        return Ok(());
    }
    println!(
        "{}: {} addresses{}",
        v.pattern,
        v.addresses.len(),
        if v.truncated { " (truncated: more matched)" } else { "" }
    );
    for address in &v.addresses {
        println!("  {}  latest {}", address.address, version_line(address));
    }
    Ok(())
}
