//! Who may do an operator action over HTTP: the bearer token checked against the operator token
//! in force ([`crate::auth::OperatorAuth`]).

use axum::http::{HeaderMap, header};
use bzzz_protocol::ErrorCode;

use super::error::ApiError;
use super::state::AppState;

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

/// Checks that the request may do the operator action `what` (e.g. "granting a role"); returns
/// the presented token (forwarded when the action runs on the admin).
pub(crate) fn require_operator(s: &AppState, headers: &HeaderMap, what: &str) -> Result<Option<String>, ApiError> {
    let presented = bearer(headers);
    if !s.operator_token.allows(presented.as_deref()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!("{what} is an operator action: send `Authorization: Bearer <operator token>`"),
        ));
    }
    Ok(presented)
}
