//! Gossipsub topic names (DESIGN.md section 4).

/// Task and availability messages.
pub const COORDINATION: &str = "bzzz/coordination/v1";
/// Agent discussion ("HMMM").
pub const HMMM: &str = "bzzz/hmmm/v1";
/// Admin heartbeat and key-rotation notices.
pub const ADMIN: &str = "bzzz/admin/v1";
/// New-context announcements.
pub const CONTEXT: &str = "bzzz/context/v1";
/// Active health probes.
pub const HEALTH: &str = "bzzz/health/v1";

/// The topics every node subscribes to at start.
pub const ALL: [&str; 5] = [COORDINATION, HMMM, ADMIN, CONTEXT, HEALTH];

/// Prefix of dynamic per-issue discussion rooms.
pub const META_ISSUE_PREFIX: &str = "bzzz/meta/issue/";

/// Longest issue id accepted in a dynamic room name.
pub const MAX_ISSUE_ID_LEN: usize = 128;

/// Topic of the discussion room for issue `id`, or `None` if the id is empty, too long or holds
/// characters other than ASCII letters, digits, `-`, `_` and `.`.
pub fn meta_issue(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ISSUE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| format!("{META_ISSUE_PREFIX}{id}"))
}

/// Whether `topic` is a topic bzzz knows (a fixed one or a valid dynamic room).
pub fn is_known(topic: &str) -> bool {
    ALL.contains(&topic)
        || topic
            .strip_prefix(META_ISSUE_PREFIX)
            .is_some_and(|id| meta_issue(id).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dynamic room names accept plain ids and refuse empty, oversized or odd ones.
    #[test]
    fn meta_issue_names() {
        assert_eq!(meta_issue("42").as_deref(), Some("bzzz/meta/issue/42"));
        assert_eq!(meta_issue(""), None, "empty id must be refused");
        assert_eq!(meta_issue("a/b"), None, "slash must be refused");
        assert_eq!(meta_issue(&"x".repeat(MAX_ISSUE_ID_LEN + 1)), None);
        assert!(is_known(HEALTH));
        assert!(is_known("bzzz/meta/issue/abc-1"));
        assert!(!is_known("bzzz/other/v1"));
    }
}
