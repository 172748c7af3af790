//! The parser. It reads left to right and reports the first problem it finds, after checking the
//! total length before anything else.
//!
//! It never panics: it slices only with checked operations (`split_at_checked`, `strip_prefix`,
//! `split`), and every delimiter of the grammar is ASCII, so the runs it splits off are ASCII.

use super::address::{Address, Temporal};
use super::error::{Field, UcxlError, bad_char, quote};
use super::{MAX_ADDRESS_LEN, MAX_IDENT_LEN, MAX_NUMBER_DIGITS, MAX_PATH_SEGMENTS, MAX_SEGMENT_LEN, SCHEME};

/// The delimiters of the grammar. One found where another was expected is reported as "expected X,
/// found Y" rather than as a character that is not allowed.
const DELIMITERS: [char; 3] = [':', '@', '/'];

/// Parses a whole address.
pub(super) fn address(input: &str) -> Result<Address, UcxlError> {
    if input.len() > MAX_ADDRESS_LEN {
        return Err(too_long(input.len()));
    }
    let rest = scheme(input)?;
    let (agent, rest) = ident_then(Field::Agent, rest, ':', "':' and the role")?;
    let (role, rest) = ident_then(Field::Role, rest, '@', "'@' and the project")?;
    let (project, rest) = ident_then(Field::Project, rest, ':', "':' and the task")?;
    let (task, tail) = task(rest)?;
    let (temporal, path) = match tail {
        Some(tail) => temporal_and_path(tail)?,
        None => (None, Vec::new()),
    };
    Ok(Address {
        agent: agent.to_owned(),
        role: role.to_owned(),
        project: project.to_owned(),
        task: task.to_owned(),
        temporal,
        path,
    })
}

/// Strips the scheme, in any case.
fn scheme(input: &str) -> Result<&str, UcxlError> {
    if input.is_empty() {
        return Err(UcxlError::new(Field::Scheme, "the address is empty"));
    }
    match input.split_at_checked(SCHEME.len()) {
        Some((prefix, rest)) if prefix.eq_ignore_ascii_case(SCHEME) => Ok(rest),
        _ if input.starts_with(char::is_whitespace) => {
            Err(UcxlError::new(Field::Scheme, "leading whitespace is not allowed"))
        }
        _ => Err(UcxlError::new(
            Field::Scheme,
            format!("{} does not start with \"{SCHEME}\"", quote(input)),
        )),
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_segment_byte(b: u8) -> bool {
    is_ident_byte(b) || b == b'.'
}

/// Splits `s` before its first byte that `keep` rejects. `keep` accepts only ASCII, so the split
/// is at a character boundary; the fallback is unreachable and only keeps this panic-free (the
/// callers validate the run again).
fn split_run(s: &str, keep: fn(u8) -> bool) -> (&str, &str) {
    let end = s.bytes().position(|b| !keep(b)).unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}

/// The error for `c`, a character that may not appear in an ident, found in `s` (which starts with
/// the ident): quotes the token up to the next delimiter, so the reader sees the name they wrote.
fn bad_char_in(field: Field, s: &str, c: char) -> UcxlError {
    let token = s.split(DELIMITERS).next().unwrap_or(s);
    UcxlError::new(field, format!("{}: {}; use A-Z a-z 0-9 _ -", quote(token), bad_char(c)))
}

/// Parses an ident that must be followed by `delim`; returns it and the input after `delim`.
fn ident_then<'a>(field: Field, s: &'a str, delim: char, next: &str) -> Result<(&'a str, &'a str), UcxlError> {
    let (run, rest) = split_run(s, is_ident_byte);
    match rest.chars().next() {
        Some(c) if c == delim => {
            let name = ident(field, run)?;
            Ok((name, rest.strip_prefix(delim).unwrap_or(rest)))
        }
        None if run.is_empty() => Err(UcxlError::new(field, format!("the {field} is missing"))),
        None => Err(UcxlError::new(
            field,
            format!("{} must be followed by {next}", quote(run)),
        )),
        Some(c) if DELIMITERS.contains(&c) && run.is_empty() => Err(UcxlError::new(
            field,
            format!("must not be empty (found {c:?} where it should start)"),
        )),
        Some(c) if DELIMITERS.contains(&c) => Err(UcxlError::new(
            field,
            format!("expected {delim:?} after {}, found {c:?}", quote(run)),
        )),
        Some(c) => Err(bad_char_in(field, s, c)),
    }
}

/// Parses the task, which ends the address or is followed by `/`; returns it and the input after
/// that `/`, if any.
fn task(s: &str) -> Result<(&str, Option<&str>), UcxlError> {
    let (run, rest) = split_run(s, is_ident_byte);
    match rest.chars().next() {
        None => Ok((ident(Field::Task, run)?, None)),
        Some('/') => Ok((ident(Field::Task, run)?, rest.strip_prefix('/'))),
        Some(c) if DELIMITERS.contains(&c) => Err(UcxlError::new(
            Field::Task,
            format!("unexpected {c:?} after {}", quote(run)),
        )),
        Some(c) => Err(bad_char_in(Field::Task, s, c)),
    }
}

/// Checks one ident (agent, role, project or task) on its own; `field` says which.
pub(super) fn ident(field: Field, s: &str) -> Result<&str, UcxlError> {
    if s.is_empty() {
        return Err(UcxlError::new(field, "must not be empty"));
    }
    if let Some(c) = s.chars().find(|c| !u8::try_from(*c).is_ok_and(is_ident_byte)) {
        return Err(UcxlError::new(
            field,
            format!("{}: {}; use A-Z a-z 0-9 _ -", quote(s), bad_char(c)),
        ));
    }
    if s.len() > MAX_IDENT_LEN {
        return Err(UcxlError::new(
            field,
            format!(
                "{} is {} bytes long; at most {MAX_IDENT_LEN} are allowed",
                quote(s),
                s.len()
            ),
        ));
    }
    Ok(s)
}

/// Parses what follows the `/` after the task: an optional temporal part, then path segments.
fn temporal_and_path(tail: &str) -> Result<(Option<Temporal>, Vec<String>), UcxlError> {
    let mut temporal = None;
    let mut path = Vec::new();
    let mut pieces = tail.split('/').peekable();
    let mut first = true;
    while let Some(piece) = pieces.next() {
        if piece.is_empty() {
            let reason = if pieces.peek().is_none() {
                "a trailing '/' is not allowed"
            } else {
                "an empty segment ('//') is not allowed"
            };
            return Err(UcxlError::new(Field::Path, reason));
        }
        let looks_temporal = piece.starts_with(['*', '~', '^']);
        if first && looks_temporal {
            temporal = Some(self::temporal(piece)?);
        } else if looks_temporal && self::temporal(piece).is_ok() {
            let reason = if temporal.is_some() {
                format!("{}: only one temporal part is allowed", quote(piece))
            } else {
                format!("{}: the temporal part must come directly after the task", quote(piece))
            };
            return Err(UcxlError::new(Field::Temporal, reason));
        } else {
            if path.len() == MAX_PATH_SEGMENTS {
                return Err(too_many_segments());
            }
            path.push(segment(path.len() + 1, piece)?.to_owned());
        }
        first = false;
    }
    Ok((temporal, path))
}

/// Checks path segment number `index` (from 1) on its own.
pub(super) fn segment(index: usize, s: &str) -> Result<&str, UcxlError> {
    let fail = |reason: String| Err(UcxlError::new(Field::Path, format!("segment {index}: {reason}")));
    if s.is_empty() {
        return fail("must not be empty".to_owned());
    }
    if s == "." || s == ".." {
        return fail(format!("{s:?} is not allowed"));
    }
    if let Some(c) = s.chars().find(|c| !u8::try_from(*c).is_ok_and(is_segment_byte)) {
        return fail(format!("{}: {}; use A-Z a-z 0-9 _ - .", quote(s), bad_char(c)));
    }
    if s.len() > MAX_SEGMENT_LEN {
        return fail(format!(
            "{} is {} bytes long; at most {MAX_SEGMENT_LEN} are allowed",
            quote(s),
            s.len()
        ));
    }
    Ok(s)
}

/// Parses a temporal part on its own (without the leading `/`).
pub(super) fn temporal(s: &str) -> Result<Temporal, UcxlError> {
    if s == "*^" {
        return Ok(Temporal::Latest);
    }
    if s.starts_with("*^") {
        return Err(UcxlError::new(
            Field::Temporal,
            format!("{}: nothing may follow \"*^\"", quote(s)),
        ));
    }
    if let Some(digits) = s.strip_prefix("*~") {
        return match digits {
            "" => Ok(Temporal::First),
            _ => match number(s, digits)? {
                0 => Err(UcxlError::new(
                    Field::Temporal,
                    format!("{}: version numbers start at 1", quote(s)),
                )),
                n => Ok(Temporal::Version(n)),
            },
        };
    }
    if let Some(digits) = s.strip_prefix("~~") {
        return match digits {
            "" => Ok(Temporal::Back(1)),
            _ => number(s, digits).map(Temporal::Back),
        };
    }
    if let Some(digits) = s.strip_prefix("^^") {
        return match digits {
            "" => Ok(Temporal::Forward(1)),
            _ => number(s, digits).map(Temporal::Forward),
        };
    }
    Err(UcxlError::new(
        Field::Temporal,
        format!(
            "{} is not a temporal part; expected \"*^\", \"*~\", \"*~N\", \"~~\", \"~~N\", \"^^\" or \"^^N\"",
            quote(s)
        ),
    ))
}

/// Parses the non-empty number `digits` at the end of the temporal part `whole`.
fn number(whole: &str, digits: &str) -> Result<u32, UcxlError> {
    let fail = |reason: String| Err(UcxlError::new(Field::Temporal, format!("{}: {reason}", quote(whole))));
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return fail(format!("expected digits after the prefix, found {c:?}"));
    }
    if digits.len() > MAX_NUMBER_DIGITS {
        return fail(format!("numbers have at most {MAX_NUMBER_DIGITS} digits"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return fail("leading zeros are not allowed".to_owned());
    }
    // Only ASCII digits, 1 to 10 of them: the one possible failure is a value past u32::MAX.
    digits
        .parse::<u32>()
        .or_else(|_| fail(format!("numbers are at most {}", u32::MAX)))
}

/// The error for an address of `len` bytes, past [`MAX_ADDRESS_LEN`].
pub(super) fn too_long(len: usize) -> UcxlError {
    UcxlError::new(
        Field::Length,
        format!("the address is {len} bytes long; at most {MAX_ADDRESS_LEN} are allowed"),
    )
}

/// The error for a path of more than [`MAX_PATH_SEGMENTS`] segments.
pub(super) fn too_many_segments() -> UcxlError {
    UcxlError::new(
        Field::Path,
        format!("more than {MAX_PATH_SEGMENTS} segments; at most {MAX_PATH_SEGMENTS} are allowed"),
    )
}
