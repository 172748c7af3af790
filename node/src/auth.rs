//! Who may act as operator: the operator token and the handle that holds the one in force.
//!
//! A leaf: the HTTP layer (`api/`) checks requests against it, the context service forwards a
//! presented token to the admin, and a config reload replaces it. Nothing here knows HTTP.

use std::sync::{Arc, RwLock};

/// The operator token: `Debug` never shows it, and comparisons go through digests.
#[derive(Clone)]
pub struct OperatorToken(String);

impl OperatorToken {
    /// Wraps a token read from its file.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// Whether `presented` is this token (compares SHA-256 digests, so timing says nothing).
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::Digest;
        sha2::Sha256::digest(presented.as_bytes()) == sha2::Sha256::digest(self.0.as_bytes())
    }

    /// Reads the token from `path` (surrounding whitespace trimmed). The error says why, never
    /// what the file holds.
    pub fn read_file(path: &std::path::Path) -> Result<OperatorToken, String> {
        let token = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let token = token.trim();
        if token.is_empty() {
            return Err("the file is empty".into());
        }
        Ok(OperatorToken(token.to_owned()))
    }
}

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(<redacted>)")
    }
}

/// The operator token in force, shared by the API and the context service; a config reload
/// replaces it (token rotation without a restart). `None` inside: no token is asked for. Cheap
/// to clone.
#[derive(Clone, Default)]
pub struct OperatorAuth(Arc<RwLock<Option<OperatorToken>>>);

impl OperatorAuth {
    /// Starts with `token` in force.
    pub fn new(token: Option<OperatorToken>) -> Self {
        Self(Arc::new(RwLock::new(token)))
    }

    /// Whether operator actions need a token.
    pub fn is_required(&self) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Whether `presented` may act as operator: always when no token is configured, otherwise
    /// only the token itself.
    pub fn allows(&self, presented: Option<&str>) -> bool {
        match &*self.0.read().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(token) => presented.is_some_and(|p| token.matches(p)),
        }
    }

    /// Puts `token` in force from now on.
    pub fn replace(&self, token: Option<OperatorToken>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = token;
    }
}

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorAuth")
            .field("required", &self.is_required())
            .finish()
    }
}
