//! [`Address`] and [`Temporal`]: constructors, accessors, the canonical printer, pattern matching
//! and serde.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{Field, UcxlError};
use super::{MAX_ADDRESS_LEN, MAX_PATH_SEGMENTS, SCHEME, WILDCARD, parse};

/// Which version of the context at an address is meant.
///
/// Versions are numbered from 1 (the first) to the latest. Different values can name the same
/// version ([`Temporal::First`], `Version(1)` and `Forward(0)`; [`Temporal::Latest`] and `Back(0)`);
/// they stay distinct values so that an address prints the way it was written.
/// [`Temporal::resolve`] turns any of them into a version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Temporal {
    /// `*^`: the latest version.
    Latest,
    /// `*~`: the first version.
    First,
    /// `*~N`: version `N`, `N >= 1`.
    Version(u32),
    /// `~~N`: `N` versions back from the latest (`~~` is `~~1`, `~~0` is the latest).
    Back(u32),
    /// `^^N`: `N` versions forward from the first (`^^` is `^^1`, `^^0` is the first).
    Forward(u32),
}

impl Temporal {
    /// The version number this names in a history of versions `1..=latest`, or `None` if there is
    /// no such version (empty history, a version past the latest, or a step past either end).
    pub fn resolve(self, latest: u32) -> Option<u32> {
        if latest == 0 {
            return None;
        }
        match self {
            Temporal::Latest => Some(latest),
            Temporal::First => Some(1),
            Temporal::Version(n) => (1..=latest).contains(&n).then_some(n),
            Temporal::Back(n) => latest.checked_sub(n).filter(|v| *v >= 1),
            Temporal::Forward(n) => n.checked_add(1).filter(|v| *v <= latest),
        }
    }

    /// Checks what the type cannot: `Version(0)` does not exist.
    fn validate(self) -> Result<Self, UcxlError> {
        match self {
            Temporal::Version(0) => Err(UcxlError::new(Field::Temporal, "version numbers start at 1")),
            t => Ok(t),
        }
    }
}

/// Canonical form: `*^`, `*~`, `*~N`, and the shortest spelling of a step (`~~` for one step back,
/// `~~N` otherwise; the same for `^^`), so the canonical form is never longer than any input.
impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Temporal::Latest => f.write_str("*^"),
            Temporal::First => f.write_str("*~"),
            Temporal::Version(n) => write!(f, "*~{n}"),
            Temporal::Back(1) => f.write_str("~~"),
            Temporal::Back(n) => write!(f, "~~{n}"),
            Temporal::Forward(1) => f.write_str("^^"),
            Temporal::Forward(n) => write!(f, "^^{n}"),
        }
    }
}

/// Parses the temporal part alone, e.g. `"~~2"` (no leading `/`). Errors have [`Field::Temporal`].
impl FromStr for Temporal {
    type Err = UcxlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::temporal(s)
    }
}

/// A valid UCXL address: `ucxl://agent:role@project:task[/temporal][/segment...]`.
///
/// Idents and segments are case-sensitive and kept as written. An address whose idents or path
/// segments include [`WILDCARD`] (`"any"`) is a pattern: use it with [`Address::matches`], not as a
/// storage key. Equality, hashing and ordering compare every part, the temporal part included; use
/// [`Address::base`] for the key that all versions share.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub(super) agent: String,
    pub(super) role: String,
    pub(super) project: String,
    pub(super) task: String,
    pub(super) temporal: Option<Temporal>,
    pub(super) path: Vec<String>,
}

impl Address {
    /// Parses `s` (see `docs/protocol/ucxl.md` for the grammar). Never panics; the error names the
    /// field that is wrong.
    pub fn parse(s: &str) -> Result<Self, UcxlError> {
        parse::address(s)
    }

    /// An address with no temporal part and no path, from its four names.
    pub fn new(agent: &str, role: &str, project: &str, task: &str) -> Result<Self, UcxlError> {
        Ok(Self {
            agent: parse::ident(Field::Agent, agent)?.to_owned(),
            role: parse::ident(Field::Role, role)?.to_owned(),
            project: parse::ident(Field::Project, project)?.to_owned(),
            task: parse::ident(Field::Task, task)?.to_owned(),
            temporal: None,
            path: Vec::new(),
        })
    }

    /// This address with its temporal part replaced. Fails on `Version(0)` or if the address would
    /// be longer than [`MAX_ADDRESS_LEN`].
    pub fn with_temporal(mut self, temporal: Option<Temporal>) -> Result<Self, UcxlError> {
        self.temporal = temporal.map(Temporal::validate).transpose()?;
        self.check_len()
    }

    /// This address with its path replaced by `segments`. Fails on an invalid segment, more than
    /// [`MAX_PATH_SEGMENTS`] segments, or if the address would be longer than [`MAX_ADDRESS_LEN`].
    pub fn with_path<I, S>(mut self, segments: I) -> Result<Self, UcxlError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut path = Vec::new();
        for (i, segment) in segments.into_iter().enumerate() {
            if i == MAX_PATH_SEGMENTS {
                return Err(parse::too_many_segments());
            }
            path.push(parse::segment(i + 1, segment.as_ref())?.to_owned());
        }
        self.path = path;
        self.check_len()
    }

    fn check_len(self) -> Result<Self, UcxlError> {
        let len = self.canonical_len();
        if len > MAX_ADDRESS_LEN {
            return Err(parse::too_long(len));
        }
        Ok(self)
    }

    /// Length of the canonical form in bytes, without printing it.
    fn canonical_len(&self) -> usize {
        let idents = self.agent.len() + self.role.len() + self.project.len() + self.task.len();
        let temporal = self.temporal.map_or(0, |t| 1 + t.to_string().len());
        let path: usize = self.path.iter().map(|s| 1 + s.len()).sum();
        SCHEME.len() + idents + 3 + temporal + path
    }

    /// The agent name.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The role name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The project name.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The task name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The temporal part, if any.
    pub fn temporal(&self) -> Option<Temporal> {
        self.temporal
    }

    /// The path segments, in order; empty if the address has no path.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// Whether any ident or path segment is the wildcard `"any"` (exactly lowercase).
    pub fn is_pattern(&self) -> bool {
        [&self.agent, &self.role, &self.project, &self.task]
            .into_iter()
            .chain(&self.path)
            .any(|s| s == WILDCARD)
    }

    /// The address without its temporal part: the key under which all versions are indexed.
    pub fn base(&self) -> Address {
        Address {
            temporal: None,
            ..self.clone()
        }
    }

    /// Whether this address is one that `pattern` selects (for discovery).
    ///
    /// Each ident must equal the pattern's or the pattern's must be `"any"`. A pattern with no path
    /// matches every path; otherwise the paths must have the same number of segments and each
    /// pattern segment must be equal or `"any"`. Temporal parts are ignored. Matching is not
    /// symmetric: `"any"` in `self` matches only `"any"` in the pattern.
    pub fn matches(&self, pattern: &Address) -> bool {
        fn part(value: &str, pattern: &str) -> bool {
            pattern == WILDCARD || pattern == value
        }
        part(&self.agent, &pattern.agent)
            && part(&self.role, &pattern.role)
            && part(&self.project, &pattern.project)
            && part(&self.task, &pattern.task)
            && (pattern.path.is_empty()
                || (pattern.path.len() == self.path.len()
                    && self.path.iter().zip(&pattern.path).all(|(v, p)| part(v, p))))
    }
}

/// The canonical form: lowercase scheme, names as written, canonical temporal part, path.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}@{}:{}", self.agent, self.role, self.project, self.task)?;
        if let Some(t) = self.temporal {
            write!(f, "/{t}")?;
        }
        for segment in &self.path {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

/// Prints `Address("ucxl://...")`, the canonical form, so test failures are readable.
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Address").field(&self.to_string()).finish()
    }
}

impl FromStr for Address {
    type Err = UcxlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

/// Serialized as the canonical string.
impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserialized from a string, with the same checks as [`Address::parse`].
impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AddressVisitor;

        impl Visitor<'_> for AddressVisitor {
            type Value = Address;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UCXL address string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Address, E> {
                Address::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(AddressVisitor)
    }
}
