//! Property tests of the UCXL parser and printer (`bzzz_protocol::ucxl`).
//!
//! 1. Every valid address prints to a string that parses back to it, and printing is a fixpoint.
//! 2. Non-canonical spellings (scheme case, `~~1` for `~~`) parse to the same address.
//! 3. `parse` never panics: on arbitrary strings, on lossy-converted arbitrary bytes, on strings
//!    built from the grammar's tokens, and on valid addresses with random edits. Whenever such an
//!    input parses, its canonical form parses to the same address (and is no longer than the input);
//!    whenever it fails, the message is short.

use bzzz_protocol::ucxl::{Address, Field, MAX_ADDRESS_LEN, MAX_PATH_SEGMENTS, Temporal};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Cases per property. Six properties at this count run in about a second in a debug build.
const CASES: u32 = 2000;

/// Upper bound on an error message, in bytes: the quote of the input is capped, so messages stay
/// short whatever the input.
const MAX_MESSAGE_LEN: usize = 400;

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[A-Za-z0-9_-]{1,12}",
        1 => "[A-Za-z0-9_-]{1,64}",
        1 => Just("any".to_owned()),
    ]
}

fn temporal() -> impl Strategy<Value = Temporal> {
    prop_oneof![
        Just(Temporal::Latest),
        Just(Temporal::First),
        (1..=u32::MAX).prop_map(Temporal::Version),
        (1u32..4).prop_map(Temporal::Version),
        any::<u32>().prop_map(Temporal::Back),
        (0u32..3).prop_map(Temporal::Back),
        any::<u32>().prop_map(Temporal::Forward),
        (0u32..3).prop_map(Temporal::Forward),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[A-Za-z0-9_.-]{1,12}",
        1 => "[A-Za-z0-9_.-]{1,255}",
        1 => Just("any".to_owned()),
    ]
    .prop_filter("\".\" and \"..\" are not segments", |s| s != "." && s != "..")
}

/// Valid addresses, from the smallest up to the length and segment-count bounds. Paths that would
/// make the address too long are cut short.
fn address() -> impl Strategy<Value = Address> {
    (
        [ident(), ident(), ident(), ident()],
        proptest::option::of(temporal()),
        vec(segment(), 0..=MAX_PATH_SEGMENTS),
    )
        .prop_map(|([agent, role, project, task], temporal, mut path)| {
            loop {
                let built = Address::new(&agent, &role, &project, &task)
                    .and_then(|a| a.with_temporal(temporal))
                    .and_then(|a| a.with_path(&path));
                match built {
                    Ok(a) => break a,
                    Err(e) if e.field() == Field::Length && !path.is_empty() => {
                        path.pop();
                    }
                    Err(e) => panic!("generated parts should build an address: {e}"),
                }
            }
        })
}

/// Pieces of the grammar, valid and not, to assemble inputs that get deep into the parser.
fn token() -> impl Strategy<Value = String> {
    let fixed = select(vec![
        "ucxl://",
        "UCXL://",
        ":",
        "@",
        "/",
        "//",
        "*^",
        "*~",
        "~~",
        "^^",
        "*",
        "~",
        "^",
        "0",
        "00",
        "1",
        "01",
        "7",
        "4294967295",
        "4294967296",
        "99999999999",
        "any",
        "ANY",
        ".",
        "..",
        "...",
        "a",
        "Z",
        "_",
        "-",
        "%20",
        "%",
        "?",
        "#",
        "=",
        " ",
        "\t",
        "\n",
        "\u{e9}",
        "\u{0}",
        "\u{202e}",
        "\u{1f41d}",
        "\\",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        6 => fixed,
        2 => "[A-Za-z0-9_.-]{1,12}",
        1 => "[A-Za-z0-9_.-]{60,70}",
        1 => "[0-9]{1,12}",
    ]
}

fn scheme_prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("ucxl://".to_owned()),
        1 => Just("UcXl://".to_owned()),
        1 => Just(String::new()),
        1 => "[a-zA-Z:/ ]{0,8}",
    ]
}

/// Strings assembled from grammar tokens: either free-form after a scheme, or shaped like an
/// address (names and delimiters, mostly the right ones, then a tail) so that many get far into
/// the parser and some parse.
fn grammar_soup() -> impl Strategy<Value = String> {
    let free = (scheme_prefix(), vec(token(), 0..48)).prop_map(|(prefix, tokens)| prefix + &tokens.concat());
    let name = || prop_oneof![6 => "[A-Za-z0-9_-]{1,8}", 1 => token()];
    let delim = |d: &'static str| prop_oneof![6 => Just(d.to_owned()), 1 => token()];
    let tail = vec(
        prop_oneof![3 => token().prop_map(|t| format!("/{t}")), 1 => token()],
        0..10,
    );
    let shaped = (
        scheme_prefix(),
        name(),
        delim(":"),
        name(),
        delim("@"),
        name(),
        delim(":"),
        name(),
        tail,
    )
        .prop_map(|(p, a, d1, r, d2, pr, d3, t, tail)| [p, a, d1, r, d2, pr, d3, t, tail.concat()].concat());
    prop_oneof![free, shaped]
}

/// Valid addresses with one to three random edits (insert a token, delete a character, replace a
/// character with a token).
fn mutated() -> impl Strategy<Value = String> {
    (address(), vec((0u8..3, any::<Index>(), token()), 1..4)).prop_map(|(a, edits)| {
        let mut chars: Vec<char> = a.to_string().chars().collect();
        for (kind, at, tok) in edits {
            let i = at.index(chars.len() + 1);
            match kind {
                0 => {
                    chars.splice(i..i, tok.chars());
                }
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ if i < chars.len() => {
                    chars.splice(i..=i, tok.chars());
                }
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

/// What must hold for any input: if it parses, the canonical form is no longer and parses to the
/// same address, which matches itself and its base; if not, the message is bounded.
fn check_any(input: &str) -> Result<(), TestCaseError> {
    match Address::parse(input) {
        Ok(a) => {
            let printed = a.to_string();
            prop_assert!(
                printed.len() <= input.len(),
                "canonical form {printed:?} is longer than the input {input:?}"
            );
            let again = Address::parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&a), "input {:?} printed as {:?}", input, printed);
            prop_assert!(
                a.matches(&a) && a.matches(&a.base()),
                "{a} should match itself and its base"
            );
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.len() <= MAX_MESSAGE_LEN,
                "error message for a {}-byte input is {} bytes: {msg}",
                input.len(),
                msg.len()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// `parse(a.to_string()) == a` for every valid address, and printing is a fixpoint.
    #[test]
    fn valid_addresses_round_trip(a in address()) {
        let printed = a.to_string();
        prop_assert!(printed.len() <= MAX_ADDRESS_LEN, "{} bytes: {printed}", printed.len());
        let parsed = Address::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&a), "printed as {:?}", printed);
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(printed));
        let base = a.base();
        prop_assert_eq!(base.temporal(), None);
        prop_assert_eq!(base.path(), a.path());
    }

    /// Other spellings of an address (scheme in any case, explicit `1` after `~~` and `^^`) parse to
    /// the same address and print canonically.
    #[test]
    fn other_spellings_parse_to_the_same_address(a in address(), upper in any::<[bool; 4]>(), explicit: bool) {
        let canonical = a.to_string();
        let scheme: String = "ucxl"
            .chars()
            .zip(upper)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        // Spelled from the parts, not from the printer, so the test does not trust `Display`.
        let temporal = match a.temporal() {
            Some(Temporal::Back(1)) if explicit => "/~~1".to_owned(),
            Some(Temporal::Forward(1)) if explicit => "/^^1".to_owned(),
            Some(t) => format!("/{t}"),
            None => String::new(),
        };
        let path: String = a.path().iter().map(|s| format!("/{s}")).collect();
        let spelled =
            format!("{scheme}://{}:{}@{}:{}{temporal}{path}", a.agent(), a.role(), a.project(), a.task());
        prop_assume!(spelled.len() <= MAX_ADDRESS_LEN);
        let parsed = Address::parse(&spelled);
        prop_assert_eq!(parsed.as_ref(), Ok(&a), "spelled {:?}", spelled);
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(canonical));
    }

    /// `parse` never panics on arbitrary strings.
    #[test]
    fn never_panics_on_strings(s in any::<String>()) {
        check_any(&s)?;
    }

    /// `parse` never panics on arbitrary bytes (lossy-converted), up to past the length bound.
    #[test]
    fn never_panics_on_bytes(bytes in vec(any::<u8>(), 0..1100)) {
        check_any(&String::from_utf8_lossy(&bytes))?;
    }

    /// `parse` never panics on strings made of the grammar's tokens, and round-trips what it accepts.
    #[test]
    fn never_panics_on_grammar_soup(s in grammar_soup()) {
        check_any(&s)?;
    }

    /// `parse` never panics on edited valid addresses, and round-trips what it accepts.
    #[test]
    fn never_panics_on_mutated_addresses(s in mutated()) {
        check_any(&s)?;
    }
}

/// The generators reach the interesting regions: some soup and some mutants parse, some do not.
#[test]
fn generators_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    for (name, strategy) in [("soup", grammar_soup().boxed()), ("mutated", mutated().boxed())] {
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..500 {
            let s = match strategy.new_tree(&mut runner) {
                Ok(tree) => tree.current(),
                Err(e) => panic!("{name}: generator failed: {e}"),
            };
            if Address::parse(&s).is_ok() {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(
            accepted >= 5 && rejected >= 5,
            "{name}: expected both valid and invalid inputs, got {accepted} accepted, {rejected} rejected"
        );
    }
}
