//! The node's run mode.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseModeError;

/// What a node runs: an ordinary agent, or a dedicated bootstrap (DHT seed) node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// An ordinary mesh member that runs tasks; the default.
    #[default]
    Agent,
    /// A long-lived, well-known node other nodes join through.
    Bootstrap,
}

impl Mode {
    /// The canonical lower-case name (`"agent"` or `"bootstrap"`), as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Agent => "agent",
            Mode::Bootstrap => "bootstrap",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ParseModeError;

    /// Parses `agent` or `bootstrap`, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("agent") {
            Ok(Mode::Agent)
        } else if t.eq_ignore_ascii_case("bootstrap") {
            Ok(Mode::Bootstrap)
        } else {
            Err(ParseModeError { value: s.to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both mode names parse (case-insensitively, trimmed) and round-trip through Display.
    #[test]
    fn mode_parses_and_displays() {
        for (text, want) in [
            ("agent", Mode::Agent),
            ("bootstrap", Mode::Bootstrap),
            (" Bootstrap\n", Mode::Bootstrap),
            ("AGENT", Mode::Agent),
        ] {
            let got = text.parse::<Mode>();
            assert_eq!(got, Ok(want), "parsing {text:?}: expected {want:?}, got {got:?}");
        }
        for m in [Mode::Agent, Mode::Bootstrap] {
            let back = m.to_string().parse::<Mode>();
            assert_eq!(back, Ok(m), "round trip of {m}: expected {m:?}, got {back:?}");
        }
        assert_eq!(
            Mode::default(),
            Mode::Agent,
            "default mode: expected Agent, got {:?}",
            Mode::default()
        );
    }

    /// An unknown mode is rejected and the error names the bad value and the allowed ones.
    #[test]
    fn mode_rejects_unknown_value_naming_it() {
        let got = "seeder".parse::<Mode>();
        let Err(err) = got else {
            panic!("expected an error for \"seeder\", got {got:?}");
        };
        let msg = err.to_string();
        for needle in ["seeder", "agent", "bootstrap"] {
            assert!(
                msg.contains(needle),
                "error message should contain {needle:?}, got {msg:?}"
            );
        }
    }

    /// Serde reads the lower-case names (the same ones `FromStr` accepts) and rejects others.
    #[test]
    fn mode_serde_uses_lowercase_names() {
        use serde::Deserialize;
        use serde::de::value::{Error as DeError, StrDeserializer};
        for (text, want) in [("agent", Mode::Agent), ("bootstrap", Mode::Bootstrap)] {
            let got = Mode::deserialize(StrDeserializer::<DeError>::new(text));
            assert!(
                matches!(got, Ok(m) if m == want),
                "deserializing {text:?}: expected {want:?}, got {got:?}"
            );
        }
        let got = Mode::deserialize(StrDeserializer::<DeError>::new("Agent"));
        assert!(got.is_err(), "deserializing \"Agent\": expected an error, got {got:?}");
    }
}
