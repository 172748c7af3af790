//! [`UcxlError`]: why an address was rejected, and which part of it was wrong.

use std::fmt;

use super::{QUOTE_LIMIT, UcxlCode};

/// The part of an address an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The `ucxl://` prefix (also used for empty input).
    Scheme,
    /// The agent name, before the first `:`.
    Agent,
    /// The role name, between `:` and `@`.
    Role,
    /// The project name, between `@` and `:`.
    Project,
    /// The task name, after the second `:`.
    Task,
    /// The temporal part (`*^`, `*~N`, `~~N`, `^^N`).
    Temporal,
    /// The path segments after the task or the temporal part.
    Path,
    /// The address as a whole is longer than [`MAX_ADDRESS_LEN`](super::MAX_ADDRESS_LEN).
    Length,
}

impl Field {
    /// The field's name as used in error messages, e.g. `"agent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Scheme => "scheme",
            Field::Agent => "agent",
            Field::Role => "role",
            Field::Project => "project",
            Field::Task => "task",
            Field::Temporal => "temporal",
            Field::Path => "path",
            Field::Length => "length",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid UCXL address (or why address parts do not make one).
///
/// The message names the field and the reason, and quotes at most [`QUOTE_LIMIT`] bytes of the
/// input, so it is safe to return to a client and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ucxl address: {field}: {reason}")]
pub struct UcxlError {
    field: Field,
    reason: String,
}

impl UcxlError {
    pub(super) fn new(field: Field, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The part of the address that is wrong.
    pub fn field(&self) -> Field {
        self.field
    }

    /// A human-readable reason, without the field name.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the error is in the temporal part; the HTTP layer answers these with
    /// [`UcxlCode::TemporalInvalid`] instead of [`UcxlCode::InvalidAddress`].
    pub fn is_temporal(&self) -> bool {
        self.field == Field::Temporal
    }

    /// The HTTP error code for this error.
    pub fn code(&self) -> UcxlCode {
        if self.is_temporal() {
            UcxlCode::TemporalInvalid
        } else {
            UcxlCode::InvalidAddress
        }
    }
}

/// `s` quoted and escaped for an error message, cut to at most [`QUOTE_LIMIT`] bytes of `s`
/// (at a character boundary) with `...` after the quote when cut.
pub(super) fn quote(s: &str) -> String {
    let end = s.floor_char_boundary(QUOTE_LIMIT);
    match s.get(..end) {
        Some(head) if end < s.len() => format!("{head:?}..."),
        _ => format!("{s:?}"),
    }
}

/// Why character `c` may not appear in an ident or a path segment.
pub(super) fn bad_char(c: char) -> String {
    match c {
        '%' => "percent-encoding ('%') is not supported".to_owned(),
        '?' => "a query ('?') is not allowed".to_owned(),
        '#' => "a fragment ('#') is not allowed".to_owned(),
        c if c.is_whitespace() => format!("whitespace ({c:?}) is not allowed"),
        c if !c.is_ascii() => format!("non-ASCII character {c:?} is not allowed"),
        c if c.is_ascii_control() => format!("control character {c:?} is not allowed"),
        c => format!("character {c:?} is not allowed"),
    }
}
