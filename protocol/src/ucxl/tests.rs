//! Unit tests of the grammar, the bounds, the canonical printer, matching and serde. Property tests
//! are in `protocol/tests/ucxl_props.rs`.

use super::*;

/// Parses `s`, failing the test with the error if it is rejected.
fn ok(s: &str) -> Address {
    Address::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse, got: {e}"))
}

/// Parses `s`, failing the test if it is accepted.
fn err(s: &str) -> UcxlError {
    match Address::parse(s) {
        Ok(a) => panic!("{s:?} should be rejected, parsed as {a}"),
        Err(e) => e,
    }
}

/// Asserts that `s` is rejected in `field` with a reason containing `needle`.
fn rejects(s: &str, field: Field, needle: &str) {
    let e = err(s);
    assert_eq!(e.field(), field, "{s:?}: expected a {field} error, got: {e}");
    assert!(
        e.reason().contains(needle),
        "{s:?}: expected reason with {needle:?}, got: {e}"
    );
}

/// `n` copies of `c`.
fn rep(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

const BASE: &str = "ucxl://alice:dev@bzzz:t1";

/// The smallest address parses into its four names, with no temporal part and no path.
#[test]
fn parses_the_four_idents() {
    let a = ok(BASE);
    assert_eq!(
        (a.agent(), a.role(), a.project(), a.task()),
        ("alice", "dev", "bzzz", "t1")
    );
    assert_eq!(a.temporal(), None);
    assert!(a.path().is_empty());
    assert_eq!(a.to_string(), BASE);
}

/// Every temporal form parses to its variant and prints canonically.
#[test]
fn temporal_forms() {
    let cases = [
        ("*^", Temporal::Latest, "*^"),
        ("*~", Temporal::First, "*~"),
        ("*~1", Temporal::Version(1), "*~1"),
        ("*~42", Temporal::Version(42), "*~42"),
        ("*~4294967295", Temporal::Version(u32::MAX), "*~4294967295"),
        ("~~", Temporal::Back(1), "~~"),
        ("~~1", Temporal::Back(1), "~~"),
        ("~~0", Temporal::Back(0), "~~0"),
        ("~~7", Temporal::Back(7), "~~7"),
        ("~~4294967295", Temporal::Back(u32::MAX), "~~4294967295"),
        ("^^", Temporal::Forward(1), "^^"),
        ("^^1", Temporal::Forward(1), "^^"),
        ("^^0", Temporal::Forward(0), "^^0"),
        ("^^4294967295", Temporal::Forward(u32::MAX), "^^4294967295"),
    ];
    for (text, want, canonical) in cases {
        let a = ok(&format!("{BASE}/{text}"));
        assert_eq!(a.temporal(), Some(want), "{text}");
        assert_eq!(a.to_string(), format!("{BASE}/{canonical}"), "{text}");
        assert_eq!(text.parse::<Temporal>(), Ok(want), "{text} alone");
        assert_eq!(want.to_string(), canonical, "{want:?} printed alone");
    }
}

/// Invalid temporal parts are temporal errors (so HTTP answers `UCXL-400-TEMPORAL_INVALID`).
#[test]
fn temporal_errors() {
    let cases = [
        ("*~0", "start at 1"),
        ("*~01", "leading zeros"),
        ("~~00", "leading zeros"),
        ("~~01", "leading zeros"),
        ("^^007", "leading zeros"),
        ("*~4294967296", "at most 4294967295"),
        ("~~9999999999", "at most 4294967295"),
        ("^^12345678901", "at most 10 digits"),
        ("~~00000000000", "at most 10 digits"),
        ("*^1", "nothing may follow"),
        ("*^^", "nothing may follow"),
        ("*", "not a temporal part"),
        ("~", "not a temporal part"),
        ("^", "not a temporal part"),
        ("~^", "not a temporal part"),
        ("*x", "not a temporal part"),
        ("~~a", "expected digits"),
        ("~~+1", "expected digits"),
        ("~~-1", "expected digits"),
        ("^^1a", "expected digits"),
        ("*~ 1", "expected digits"),
        ("~~\u{0661}", "expected digits"),
    ];
    for (text, needle) in cases {
        let e = err(&format!("{BASE}/{text}"));
        assert!(e.is_temporal(), "{text}: expected a temporal error, got: {e}");
        assert_eq!(e.code(), UcxlCode::TemporalInvalid, "{text}");
        assert!(e.reason().contains(needle), "{text}: expected {needle:?} in: {e}");
        assert_eq!(
            text.parse::<Temporal>().map_err(|e| e.field()),
            Err(Field::Temporal),
            "{text} alone"
        );
    }
}

/// The temporal part may only come directly after the task, and only once.
#[test]
fn temporal_position() {
    let a = ok(&format!("{BASE}/*^/notes/today"));
    assert_eq!(a.temporal(), Some(Temporal::Latest));
    assert_eq!(a.path(), ["notes", "today"]);
    rejects(&format!("{BASE}/notes/*^"), Field::Temporal, "directly after the task");
    rejects(&format!("{BASE}/*^/~~2"), Field::Temporal, "only one temporal part");
    // Not a temporal part at all: an ordinary bad segment.
    rejects(&format!("{BASE}/notes/~x"), Field::Path, "'~'");
}

/// Path segments: the segment alphabet, dots, and the ban on "." and "..".
#[test]
fn path_segments() {
    let a = ok(&format!("{BASE}/a/B.c/_-./.../.hidden/v1.2"));
    assert_eq!(a.path(), ["a", "B.c", "_-.", "...", ".hidden", "v1.2"]);
    rejects(&format!("{BASE}/."), Field::Path, "\".\" is not allowed");
    rejects(&format!("{BASE}/a/.."), Field::Path, "segment 2: \"..\" is not allowed");
    rejects(&format!("{BASE}/a/"), Field::Path, "trailing '/'");
    rejects(&format!("{BASE}/"), Field::Path, "trailing '/'");
    rejects(&format!("{BASE}/*^/"), Field::Path, "trailing '/'");
    rejects(&format!("{BASE}//a"), Field::Path, "'//'");
    rejects(&format!("{BASE}/a//b"), Field::Path, "'//'");
    rejects(&format!("{BASE}/a:b"), Field::Path, "':'");
    rejects(&format!("{BASE}/a@b"), Field::Path, "'@'");
    rejects(&format!("{BASE}/a\\b"), Field::Path, "'\\\\'");
}

/// Characters outside the alphabets are rejected with a reason that says what they are.
#[test]
fn forbidden_characters_have_reasons() {
    let cases = [
        ("a%20b", "percent-encoding"),
        ("a?x=1", "query"),
        ("a#frag", "fragment"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\u{a0}b", "whitespace"),
        ("caf\u{e9}", "non-ASCII"),
        ("a\u{202e}b", "non-ASCII"),
        ("a\u{0}b", "control character"),
        ("a\u{7f}b", "control character"),
        ("a$b", "'$'"),
    ];
    for (bad, needle) in cases {
        rejects(&format!("ucxl://{bad}:r@p:t"), Field::Agent, needle);
        rejects(&format!("ucxl://a:{bad}@p:t"), Field::Role, needle);
        rejects(&format!("ucxl://a:r@{bad}:t"), Field::Project, needle);
        rejects(&format!("ucxl://a:r@p:{bad}"), Field::Task, needle);
        rejects(&format!("ucxl://a:r@p:t/{bad}"), Field::Path, needle);
        rejects(&format!("ucxl://a:r@p:t/*^/x/{bad}"), Field::Path, needle);
    }
    // A query or fragment straight after the task or the temporal part.
    rejects(&format!("{BASE}?x"), Field::Task, "query");
    rejects(&format!("{BASE}#x"), Field::Task, "fragment");
    rejects(&format!("{BASE}/*^?x"), Field::Temporal, "nothing may follow");
    rejects(&format!("{BASE} "), Field::Task, "whitespace");
    rejects(&format!("{BASE}\n"), Field::Task, "whitespace");
}

/// Idents take letters, digits, `_` and `-`, but not `.`.
#[test]
fn ident_alphabet() {
    let a = ok("ucxl://A-Z_09:r0le@Pro-ject_:T-1");
    assert_eq!(a.agent(), "A-Z_09");
    rejects("ucxl://a.b:r@p:t", Field::Agent, "'.'");
    rejects("ucxl://a:r@p:t.1", Field::Task, "'.'");
}

/// Each ident is required and must be followed by its delimiter.
#[test]
fn missing_and_misplaced_delimiters() {
    rejects("ucxl://", Field::Agent, "missing");
    rejects("ucxl://alice", Field::Agent, "followed by ':' and the role");
    rejects("ucxl://:r@p:t", Field::Agent, "empty");
    rejects(
        "ucxl://alice@p:t",
        Field::Agent,
        "expected ':' after \"alice\", found '@'",
    );
    rejects("ucxl://a/b:r@p:t", Field::Agent, "found '/'");
    rejects("ucxl://a:", Field::Role, "missing");
    rejects("ucxl://a:r", Field::Role, "followed by '@'");
    rejects("ucxl://a:@p:t", Field::Role, "empty");
    rejects("ucxl://a:r:x@p:t", Field::Role, "found ':'");
    rejects("ucxl://a:r@", Field::Project, "missing");
    rejects("ucxl://a:r@p", Field::Project, "followed by ':'");
    rejects("ucxl://a:r@@p:t", Field::Project, "empty");
    rejects("ucxl://a:r@:t", Field::Project, "empty");
    rejects("ucxl://a:r@p@q:t", Field::Project, "found '@'");
    rejects("ucxl://a:r@p:", Field::Task, "empty");
    rejects("ucxl://a:r@p:/x", Field::Task, "empty");
    rejects("ucxl://a:r@p:t:u", Field::Task, "unexpected ':'");
    rejects("ucxl://a:r@p:t@u", Field::Task, "unexpected '@'");
}

/// The scheme is required, accepted in any case and printed lowercase.
#[test]
fn scheme() {
    for spelling in ["UCXL://", "Ucxl://", "uCxL://"] {
        let a = ok(&format!("{spelling}alice:dev@bzzz:t1"));
        assert_eq!(a.to_string(), BASE, "{spelling}");
    }
    rejects("", Field::Scheme, "empty");
    rejects(" ucxl://a:r@p:t", Field::Scheme, "leading whitespace");
    rejects("http://a:r@p:t", Field::Scheme, "does not start with \"ucxl://\"");
    rejects("ucxl:/a:r@p:t", Field::Scheme, "does not start");
    rejects("ucxl:a:r@p:t", Field::Scheme, "does not start");
    rejects("ucxl", Field::Scheme, "does not start");
    rejects("ucx\u{e9}://a:r@p:t", Field::Scheme, "does not start");
    rejects("\u{1f41d}\u{1f41d}://a:r@p:t", Field::Scheme, "does not start");
}

/// Idents and segments are case-sensitive; only lowercase "any" is the wildcard.
#[test]
fn case_sensitivity() {
    assert_ne!(ok("ucxl://Alice:dev@bzzz:t1"), ok(BASE));
    assert_ne!(ok(&format!("{BASE}/Notes")), ok(&format!("{BASE}/notes")));
    assert_eq!(
        ok("ucxl://Alice:DEV@Bzzz:T1/Notes").to_string(),
        "ucxl://Alice:DEV@Bzzz:T1/Notes"
    );
    assert!(!ok("ucxl://ANY:Any@aNy:t/ANY").is_pattern());
}

/// Idents: 64 bytes is the longest accepted, in every position.
#[test]
fn ident_length_bound() {
    let max = rep('x', MAX_IDENT_LEN);
    let over = rep('x', MAX_IDENT_LEN + 1);
    for (field, at) in [
        (Field::Agent, 0),
        (Field::Role, 1),
        (Field::Project, 2),
        (Field::Task, 3),
    ] {
        let mut parts = ["a", "r", "p", "t"];
        parts[at] = max.as_str();
        ok(&format!("ucxl://{}:{}@{}:{}", parts[0], parts[1], parts[2], parts[3]));
        parts[at] = over.as_str();
        rejects(
            &format!("ucxl://{}:{}@{}:{}", parts[0], parts[1], parts[2], parts[3]),
            field,
            "65 bytes long; at most 64",
        );
    }
}

/// Segments: 255 bytes is the longest accepted.
#[test]
fn segment_length_bound() {
    ok(&format!("{BASE}/{}", rep('s', MAX_SEGMENT_LEN)));
    rejects(
        &format!("{BASE}/{}", rep('s', MAX_SEGMENT_LEN + 1)),
        Field::Path,
        "256 bytes long; at most 255",
    );
}

/// Paths: 32 segments is the most accepted, with or without a temporal part.
#[test]
fn segment_count_bound() {
    let path = |n: usize| "/s".repeat(n);
    assert_eq!(ok(&format!("{BASE}{}", path(MAX_PATH_SEGMENTS))).path().len(), 32);
    assert_eq!(ok(&format!("{BASE}/~~3{}", path(MAX_PATH_SEGMENTS))).path().len(), 32);
    rejects(
        &format!("{BASE}{}", path(MAX_PATH_SEGMENTS + 1)),
        Field::Path,
        "more than 32",
    );
    rejects(
        &format!("{BASE}/*^{}", path(MAX_PATH_SEGMENTS + 1)),
        Field::Path,
        "more than 32",
    );
}

/// The whole address: 1024 bytes is the longest accepted; longer input is rejected before parsing.
#[test]
fn total_length_bound() {
    // "ucxl://alice:dev@bzzz:t1" is 24 bytes; four segments of 1 + 249 bytes make 1024.
    let at = format!("{BASE}{}", format!("/{}", rep('s', 249)).repeat(4));
    assert_eq!(at.len(), MAX_ADDRESS_LEN);
    assert_eq!(ok(&at).to_string(), at);
    let over = format!("{at}x");
    rejects(&over, Field::Length, "1025 bytes long; at most 1024");
    // Length is checked before anything else, even the scheme.
    rejects(&rep('%', 1025), Field::Length, "1025 bytes");
    // An input at the limit whose canonical form is shorter still round-trips.
    let step = format!("{BASE}/~~1{}", format!("/{}", rep('s', 248)).repeat(4));
    assert_eq!(step.len(), MAX_ADDRESS_LEN);
    let a = ok(&step);
    assert_eq!(a.to_string().len(), MAX_ADDRESS_LEN - 1);
    assert_eq!(ok(&a.to_string()), a);
}

/// Error messages name the field and quote a bounded prefix of the input, never all of it.
#[test]
fn error_messages_are_bounded() {
    let huge = format!("ucxl://{}", rep('a', 1 << 20));
    let e = err(&huge);
    assert_eq!(e.field(), Field::Length);
    assert!(
        e.to_string().len() < 100,
        "message too long: {} bytes",
        e.to_string().len()
    );

    let long_agent = format!("ucxl://{}$:r@p:t", rep('a', 900));
    let e = err(&long_agent);
    assert_eq!(e.field(), Field::Agent);
    let msg = e.to_string();
    assert!(msg.starts_with("invalid ucxl address: agent: "), "{msg}");
    assert!(msg.contains(&format!("\"{}\"...", rep('a', QUOTE_LIMIT))), "{msg}");
    assert!(msg.len() < 200, "message too long ({} bytes): {msg}", msg.len());

    // The cut respects character boundaries (here it falls inside the two-byte 'é').
    let e = err(&format!("ucxl://{}\u{e9}\u{e9}:r@p:t", rep('a', QUOTE_LIMIT - 1)));
    assert!(
        e.to_string().contains(&format!("\"{}\"...", rep('a', QUOTE_LIMIT - 1))),
        "{e}"
    );
    // Control characters are escaped, so a message is one line.
    let e = err("ucxl://a\nb\r:r@p:t");
    assert!(
        !e.to_string().contains(['\n', '\r']) && e.to_string().contains("\\n"),
        "{e:?}"
    );
}

/// Each field's errors carry that field, and only temporal errors map to `TEMPORAL_INVALID`.
#[test]
fn error_fields_and_codes() {
    let cases = [
        ("x", Field::Scheme),
        ("ucxl://$:r@p:t", Field::Agent),
        ("ucxl://a:$@p:t", Field::Role),
        ("ucxl://a:r@$:t", Field::Project),
        ("ucxl://a:r@p:$", Field::Task),
        ("ucxl://a:r@p:t/~~x", Field::Temporal),
        ("ucxl://a:r@p:t/$", Field::Path),
    ];
    for (s, field) in cases {
        let e = err(s);
        assert_eq!(e.field(), field, "{s}: {e}");
        let want = if field == Field::Temporal {
            UcxlCode::TemporalInvalid
        } else {
            UcxlCode::InvalidAddress
        };
        assert_eq!(e.code(), want, "{s}");
        assert!(e.to_string().contains(&format!(": {}: ", field.as_str())), "{e}");
    }
    assert_eq!(err(&rep('a', 2000)).code(), UcxlCode::InvalidAddress);
}

/// `is_pattern` is true exactly when an ident or a segment is lowercase "any".
#[test]
fn is_pattern() {
    for p in [
        "ucxl://any:r@p:t",
        "ucxl://a:any@p:t",
        "ucxl://a:r@any:t",
        "ucxl://a:r@p:any",
    ] {
        assert!(ok(p).is_pattern(), "{p}");
    }
    assert!(ok(&format!("{BASE}/*^/x/any")).is_pattern());
    assert!(!ok(BASE).is_pattern());
    assert!(!ok("ucxl://many:anyone@company:Any/anyway/ANY").is_pattern());
}

/// `base` drops the temporal part and keeps everything else.
#[test]
fn base_drops_only_the_temporal_part() {
    let a = ok(&format!("{BASE}/~~3/notes/x"));
    let b = a.base();
    assert_eq!(b.to_string(), format!("{BASE}/notes/x"));
    assert_eq!(b.base(), b);
    for t in ["*^", "*~", "*~5", "~~", "^^9"] {
        assert_eq!(ok(&format!("{BASE}/{t}/notes/x")).base(), b, "{t}");
    }
    assert_eq!(ok(BASE).base(), ok(BASE));
}

/// `matches`: idents equal or "any"; an empty pattern path matches every path; otherwise the same
/// number of segments, each equal or "any"; temporal parts ignored.
#[test]
fn matches() {
    let addr = ok("ucxl://alice:dev@bzzz:t1/*^/notes/today");
    let yes = [
        "ucxl://alice:dev@bzzz:t1",
        "ucxl://any:any@any:any",
        "ucxl://any:dev@bzzz:any/~~3",
        "ucxl://alice:dev@bzzz:t1/notes/today",
        "ucxl://alice:dev@bzzz:t1/*~1/notes/any",
        "ucxl://any:any@any:any/any/any",
    ];
    let no = [
        "ucxl://bob:dev@bzzz:t1",
        "ucxl://alice:ops@bzzz:t1",
        "ucxl://alice:dev@other:t1",
        "ucxl://alice:dev@bzzz:t2",
        "ucxl://Alice:dev@bzzz:t1",
        "ucxl://ANY:dev@bzzz:t1",
        "ucxl://alice:dev@bzzz:t1/notes",
        "ucxl://alice:dev@bzzz:t1/any",
        "ucxl://alice:dev@bzzz:t1/notes/today/more",
        "ucxl://alice:dev@bzzz:t1/notes/Today",
        "ucxl://alice:dev@bzzz:t1/any/any/any",
    ];
    for p in yes {
        assert!(addr.matches(&ok(p)), "{addr} should match {p}");
    }
    for p in no {
        assert!(!addr.matches(&ok(p)), "{addr} should not match {p}");
    }
    // Not symmetric: a wildcard in the address is only matched by a wildcard in the pattern.
    let wild = ok("ucxl://any:dev@bzzz:t1");
    assert!(!wild.matches(&ok("ucxl://alice:dev@bzzz:t1")));
    assert!(wild.matches(&wild));
}

/// `resolve` maps each temporal form onto versions 1..=latest, or `None` outside that range.
#[test]
fn resolve() {
    use Temporal::*;
    let cases = [
        (Latest, 5, Some(5)),
        (First, 5, Some(1)),
        (Version(3), 5, Some(3)),
        (Version(5), 5, Some(5)),
        (Version(6), 5, None),
        (Version(0), 5, None),
        (Back(0), 5, Some(5)),
        (Back(1), 5, Some(4)),
        (Back(4), 5, Some(1)),
        (Back(5), 5, None),
        (Back(u32::MAX), 5, None),
        (Forward(0), 5, Some(1)),
        (Forward(4), 5, Some(5)),
        (Forward(5), 5, None),
        (Forward(u32::MAX), u32::MAX, None),
        (Latest, 0, None),
        (First, 0, None),
        (Back(0), 0, None),
    ];
    for (t, latest, want) in cases {
        assert_eq!(t.resolve(latest), want, "{t:?} with latest {latest}");
    }
}

/// The constructors accept what the parser accepts and reject what it rejects, bounds included.
#[test]
fn constructors() {
    let a = Address::new("alice", "dev", "bzzz", "t1")
        .and_then(|a| a.with_temporal(Some(Temporal::Back(1))))
        .and_then(|a| a.with_path(["notes", "today"]))
        .unwrap_or_else(|e| panic!("valid parts should build: {e}"));
    assert_eq!(a, ok(&format!("{BASE}/~~/notes/today")));

    let fields = [Field::Agent, Field::Role, Field::Project, Field::Task];
    for (i, field) in fields.into_iter().enumerate() {
        let mut parts = ["a", "r", "p", "t"];
        parts[i] = "a:b";
        let e = Address::new(parts[0], parts[1], parts[2], parts[3]).map(|a| a.to_string());
        assert_eq!(e.map_err(|e| e.field()), Err(field), "bad ident at position {i}");
    }
    let base = ok(BASE);
    let field = |r: Result<Address, UcxlError>| r.map(|a| a.to_string()).map_err(|e| e.field());
    assert_eq!(
        field(base.clone().with_temporal(Some(Temporal::Version(0)))),
        Err(Field::Temporal)
    );
    assert_eq!(field(base.clone().with_path(["a", ""])), Err(Field::Path));
    assert_eq!(field(base.clone().with_path([".."])), Err(Field::Path));
    assert_eq!(field(base.clone().with_path(["a/b"])), Err(Field::Path));
    assert!(base.clone().with_path(vec!["s"; MAX_PATH_SEGMENTS]).is_ok());
    assert_eq!(
        field(base.clone().with_path(vec!["s"; MAX_PATH_SEGMENTS + 1])),
        Err(Field::Path)
    );
    // 24 + 4 * 250 = 1024 bytes; one more temporal part is too long.
    let long = base.with_path(vec![rep('s', 249); 4]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(long.to_string().len(), MAX_ADDRESS_LEN);
    assert_eq!(
        field(long.clone().with_temporal(Some(Temporal::Latest))),
        Err(Field::Length)
    );
    assert_eq!(
        field(long.clone().with_path(vec![rep('s', 250); 4])),
        Err(Field::Length)
    );
    assert_eq!(
        long.with_temporal(None).map(|a| a.to_string().len()),
        Ok(MAX_ADDRESS_LEN)
    );
}

/// Serde uses the canonical string: JSON round-trips, invalid strings and non-strings are refused.
#[test]
fn serde_round_trip() {
    let a = ok("UCXL://alice:dev@bzzz:t1/~~1/notes");
    let json = serde_json::to_string(&a).unwrap_or_else(|e| panic!("serialize: {e}"));
    assert_eq!(json, "\"ucxl://alice:dev@bzzz:t1/~~/notes\"");
    let back: Address = serde_json::from_str(&json).unwrap_or_else(|e| panic!("deserialize {json}: {e}"));
    assert_eq!(back, a);

    let owned: Vec<Address> = serde_json::from_value(serde_json::json!([BASE, "ucxl://a:r@p:t/*^"]))
        .unwrap_or_else(|e| panic!("deserialize from a Value: {e}"));
    assert_eq!(owned.len(), 2);

    let bad = serde_json::from_str::<Address>("\"ucxl://a:r@p:t/~~01\"").map(|a| a.to_string());
    let msg = bad.map_err(|e| e.to_string());
    assert!(msg.as_ref().is_err_and(|m| m.contains("temporal")), "{msg:?}");
    assert!(serde_json::from_str::<Address>("42").is_err());

    let code = serde_json::to_string(&UcxlCode::TemporalInvalid).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, "\"UCXL-400-TEMPORAL_INVALID\"");
}

/// Every code string carries its own HTTP status, and the strings are distinct.
#[test]
fn ucxl_code_strings() {
    let mut seen = std::collections::HashSet::new();
    for c in UcxlCode::ALL {
        let s = c.as_str();
        assert!(
            s.starts_with(&format!("UCXL-{}-", c.status())),
            "{s} should carry status {}",
            c.status()
        );
        assert!(seen.insert(s), "{s} appears twice");
        assert_eq!(c.to_string(), s);
    }
    assert_eq!(UcxlCode::InvalidAddress.as_str(), "UCXL-400-INVALID_ADDRESS");
    assert_eq!(UcxlCode::Timeout.status(), 504);
}

/// The example messages in `docs/protocol/ucxl.md` are the messages the parser gives.
#[test]
fn documented_messages() {
    let long = format!("ucxl://a:r@p:t/{}", rep('s', 1010));
    let cases = [
        (
            "http://a:r@p:t",
            r#"scheme: "http://a:r@p:t" does not start with "ucxl://""#,
        ),
        ("ucxl://alice@p:t", r#"agent: expected ':' after "alice", found '@'"#),
        (
            "ucxl://a:d v@p:t",
            r#"role: "d v": whitespace (' ') is not allowed; use A-Z a-z 0-9 _ -"#,
        ),
        (
            "ucxl://a:r@p:t1?x=1",
            r#"task: "t1?x=1": a query ('?') is not allowed; use A-Z a-z 0-9 _ -"#,
        ),
        (
            "ucxl://a:r@p:t/*~01",
            r#"temporal: "*~01": leading zeros are not allowed"#,
        ),
        (
            "ucxl://a:r@p:t/notes/*^",
            r#"temporal: "*^": the temporal part must come directly after the task"#,
        ),
        ("ucxl://a:r@p:t/notes/", "path: a trailing '/' is not allowed"),
        ("ucxl://a:r@p:t/notes/..", r#"path: segment 2: ".." is not allowed"#),
        (
            long.as_str(),
            "length: the address is 1025 bytes long; at most 1024 are allowed",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            err(input).to_string(),
            format!("invalid ucxl address: {want}"),
            "{input}"
        );
    }
}
