//! What the client verbs share: the CLI's error type and output helpers.

use serde::Serialize;

/// A client-side failure, printed to stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The node could not be reached, answered with an error, or answered unexpectedly.
    #[error(transparent)]
    Client(#[from] bzzz_client::ClientError),
    /// A local file or stream could not be read or written.
    #[error("{what}: {reason}")]
    Local {
        /// What was read or written.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The node answered, and the answer says the check failed (a self-test, a replication
    /// check).
    #[error("{code}: {message}")]
    Failed {
        /// Stable code, e.g. `BZZZ-TEST-FAILED`.
        code: String,
        /// What failed.
        message: String,
    },
}

/// Prints `v` as pretty JSON with its keys sorted, as the node's answer reads with `--json`.
pub(super) fn print_json(v: &impl Serialize) {
    match serde_json::to_value(v) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())),
        Err(e) => eprintln!("error: cannot print the answer as JSON: {e}"),
    }
}

/// Prints `v` when `json` is set; says whether it did (the verb's text output is skipped then).
pub(super) fn printed_json(json: bool, v: &impl Serialize) -> bool {
    if json {
        print_json(v);
    }
    json
}

/// A Unix time in milliseconds as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn format_time_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Prints a list of strings as indented lines under `title`, or `title: none`.
pub(super) fn print_list(title: &str, items: &[String]) {
    if items.is_empty() {
        println!("{title}: none");
    } else {
        println!("{title}:");
        for i in items {
            println!("  {i}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time_ms(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
    }
}
