//! Small helpers shared by the workspace: the wall clock in milliseconds and an error's cause
//! chain as one line.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current wall-clock time in milliseconds since the Unix epoch: 0 before the epoch,
/// `u64::MAX` past what a `u64` holds.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The error and every cause under it, `outer: inner: ...`, for log lines and the binary's
/// last words (so that e.g. a sled lock held by another process is named, not only "cannot open
/// sled database"). A cause whose text the line already holds is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with an optional cause, for the chain tests.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    /// Causes are joined outer to inner with ": ".
    #[test]
    fn chain_joins_causes() {
        let e = Layer(
            "open db",
            Some(Box::new(Layer("lock held", Some(Box::new(Layer("EAGAIN", None)))))),
        );
        assert_eq!(error_chain(&e), "open db: lock held: EAGAIN");
    }

    /// A cause the outer message already quotes is not repeated.
    #[test]
    fn chain_skips_repeated_causes() {
        let e = Layer("open db: lock held", Some(Box::new(Layer("lock held", None))));
        assert_eq!(error_chain(&e), "open db: lock held");
    }

    /// The clock is past 2020-01-01 on any machine running the tests.
    #[test]
    fn clock_is_after_2020() {
        assert!(now_unix_ms() > 1_577_836_800_000, "got {}", now_unix_ms());
    }
}
