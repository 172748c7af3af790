//! UCXL addresses: where context lives (DESIGN.md section 5, grammar in `docs/protocol/ucxl.md`).
//!
//! ```text
//! ucxl://agent:role@project:task[/temporal][/segment...]
//! ```
//!
//! [`Address::parse`] is the one parser every boundary uses (HTTP ingress, DHT store, gossip, SLURP
//! events); [`Address`]'s `Display` is the canonical printer, and `parse(a.to_string()) == a` holds
//! for every address. An [`Address`] value is always valid: its fields are private and every
//! constructor checks the grammar and the bounds below.
//!
//! Errors name the part of the address that is wrong ([`Field`]) and say why, quoting at most
//! [`QUOTE_LIMIT`] bytes of the input. [`UcxlError::code`] maps an error to its HTTP code
//! ([`UcxlCode`]).
//!
//! The parser never panics, on any input, and rejects input longer than [`MAX_ADDRESS_LEN`] before
//! looking at it. Its properties are tested in `protocol/tests/ucxl_props.rs` and fuzzed by
//! `fuzz/fuzz_targets/ucxl_parse.rs`.

mod address;
mod code;
mod error;
mod parse;

#[cfg(test)]
mod tests;

pub use address::{Address, Temporal};
pub use code::UcxlCode;
pub use error::{Field, UcxlError};

/// The scheme every address starts with, as printed. Input may spell it in any case.
pub const SCHEME: &str = "ucxl://";

/// The wildcard ident and path segment, exactly lowercase. `"ANY"` or `"Any"` is an ordinary name.
pub const WILDCARD: &str = "any";

/// Longest address accepted, in bytes of input (the canonical form is never longer than the input).
pub const MAX_ADDRESS_LEN: usize = 1024;

/// Longest agent, role, project or task name, in bytes (ASCII, so also in characters).
pub const MAX_IDENT_LEN: usize = 64;

/// Longest path segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Most path segments in one address.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// Most digits in a temporal count or version number (`u32::MAX` has 10).
pub const MAX_NUMBER_DIGITS: usize = 10;

/// Most bytes of the offending input that an error message quotes.
pub const QUOTE_LIMIT: usize = 40;
