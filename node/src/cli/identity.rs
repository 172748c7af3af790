//! The `bzzz identity` verbs: key files only, never a node.

use super::{CliError, IdentityCommand};

/// `bzzz identity new|show`.
pub(super) fn run(c: &IdentityCommand) -> Result<(), CliError> {
    use std::io::Write;
    let local = |what: String| {
        move |e: crate::identity::IdentityError| CliError::Local {
            what,
            reason: e.to_string(),
        }
    };
    match c {
        IdentityCommand::New(a) if a.output.as_os_str() == "-" => {
            let (key, bytes) = crate::identity::generate();
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| CliError::Local {
                    what: "cannot write the key to stdout".into(),
                    reason: e.to_string(),
                })?;
            eprintln!("{}", key.public().to_peer_id());
        }
        IdentityCommand::New(a) => {
            let key =
                crate::identity::create_key_file(&a.output).map_err(local("cannot create the identity key".into()))?;
            println!("{}", key.public().to_peer_id());
        }
        IdentityCommand::Show(a) => {
            let key = crate::identity::read_key_file(&a.file).map_err(local("cannot read the identity key".into()))?;
            println!("{}", key.public().to_peer_id());
        }
    }
    Ok(())
}
