//! Tests of parsing, environment overrides, validation and reload comparison.

use super::*;

/// The default configuration (an empty file) is valid once it names a mesh key, or opts into an
/// open mesh explicitly; without either it is refused with an error that says how to make one.
#[test]
fn empty_file_is_default_and_needs_a_mesh_key() {
    let mut c = Config::from_yaml("").expect("empty yaml is the default");
    assert_eq!(c, Config::default());
    let e = c.validate().expect_err("no mesh key").to_string();
    assert!(
        e.contains("p2p.swarm_key_file") && e.contains("bzzz keygen mesh-key") && e.contains("insecure_open_mesh"),
        "got {e}"
    );
    c.p2p.swarm_key_file = Some("/run/secrets/bzzz_swarm_key".into());
    c.validate().expect("defaults with a mesh key validate");
    c.p2p.swarm_key_file = None;
    c.p2p.insecure_open_mesh = true;
    c.validate().expect("an explicit open mesh validates");
    let mut env = Config::default();
    env.apply_env(|k| (k == "BZZZ_INSECURE_OPEN_MESH").then(|| "true".to_string()))
        .expect("valid env");
    assert!(env.p2p.insecure_open_mesh);
    assert!(
        env.apply_env(|k| (k == "BZZZ_INSECURE_OPEN_MESH").then(|| "yes please".to_string()))
            .is_err()
    );
}

/// The documented example config parses and validates, so the docs cannot drift from the code.
#[test]
fn documented_example_is_valid() {
    let text = include_str!("../../../docs/config.example.yaml");
    let c = Config::from_yaml(text).expect("docs/config.example.yaml parses");
    c.validate().expect("docs/config.example.yaml validates");
    let d = Config::default();
    assert_eq!(c.election, d.election, "the example documents the election defaults");
    assert_eq!(c.context, d.context, "the example documents the context defaults");
    assert_eq!(c.roles, d.roles, "the example documents the default role policy");
}

/// Context and role settings are checked, and errors name the field.
#[test]
fn context_and_roles_are_validated() {
    let mut c = Config::default();
    c.context.write_quorum = 4;
    let e = c.validate().expect_err("quorum above R");
    assert!(e.to_string().contains("context.write_quorum"), "got {e}");

    let mut c = Config::default();
    c.context.replication_factor = 0;
    let e = c.validate().expect_err("R = 0");
    assert!(e.to_string().contains("context.replication_factor"), "got {e}");

    let c = Config::from_yaml("roles:\n  policy:\n    dev:\n      authority: 1\n      can_read: [ghost]\n")
        .expect("parses");
    let e = c.validate().expect_err("unknown can_read role");
    assert!(
        e.to_string().contains("roles.policy") && e.to_string().contains("ghost"),
        "got {e}"
    );

    let e = Config::from_yaml("roles:\n  policy:\n    dev:\n      authorty: 1\n").expect_err("typo");
    assert!(e.to_string().contains("authorty"), "got {e}");

    let mut c = Config::default();
    c.roles.policy.clear();
    let e = c.validate().expect_err("empty policy");
    assert!(e.to_string().contains("roles.policy"), "got {e}");

    let mut c = Config::default();
    c.agent.role = "any".into();
    let e = c.validate().expect_err("reserved role name");
    assert!(e.to_string().contains("agent.role"), "got {e}");

    let c = Config::from_yaml("roles:\n  policy:\n    dev:\n      authority: 5\n      self_service: true\n")
        .expect("parses");
    let policy = c.roles.to_policy().expect("valid");
    assert!(policy.roles["dev"].self_service);
}

/// Unknown fields, bad values and bad addresses are errors that name the field.
#[test]
fn errors_name_the_field() {
    let e = Config::from_yaml("p2p:\n  listn: []\n").expect_err("typo must fail");
    assert!(e.to_string().contains("listn"), "got {e}");

    let mut c = Config::default();
    c.p2p.listen = vec!["not-an-addr".into()];
    let e = c.validate().expect_err("bad multiaddr must fail");
    assert!(e.to_string().contains("p2p.listen[0]"), "got {e}");

    let mut c = Config::default();
    c.p2p.bootstrap_peers = vec!["/ip4/1.2.3.4/udp/1".into()];
    let e = c.validate().expect_err("udp bootstrap must fail");
    assert!(e.to_string().contains("p2p.bootstrap_peers[0]"), "got {e}");

    let mut c = Config::default();
    c.api.listen = "8080".into();
    let e = c.validate().expect_err("port-only api listen must fail");
    assert!(e.to_string().contains("api.listen"), "got {e}");

    let mut c = Config::default();
    c.dht.put_quorum = "most".into();
    let e = c.validate().expect_err("bad quorum must fail");
    assert!(e.to_string().contains("dht.put_quorum"), "got {e}");

    let mut c = Config::default();
    c.gossip.max_message_bytes = 1;
    let e = c.validate().expect_err("tiny message limit must fail");
    assert!(e.to_string().contains("gossip.max_message_bytes"), "got {e}");
}

/// A reload's comparison names each changed field by its YAML path, sections and maps
/// field by field, lists whole.
#[test]
fn changed_fields_are_named() {
    let a = Config::default();
    assert!(a.changed_fields(&a.clone()).is_empty());
    let mut b = a.clone();
    b.log.level = "debug".into();
    b.dht.max_records = 5;
    b.p2p.bootstrap_peers = vec!["/ip4/10.0.0.1/tcp/9000".into()];
    b.api.operator_token_file = Some("/run/secrets/t".into());
    b.roles.policy.insert(
        "dev".into(),
        RoleConfig {
            authority: 1,
            ..RoleConfig::default()
        },
    );
    assert_eq!(
        a.changed_fields(&b),
        vec![
            "api.operator_token_file",
            "dht.max_records",
            "log.level",
            "p2p.bootstrap_peers",
            "roles.policy.dev"
        ]
    );
}

/// Environment variables override the file.
#[test]
fn env_overrides() {
    let mut c = Config::from_yaml("agent:\n  role: reviewer\n").expect("parses");
    c.apply_env(|k| match k {
        "BZZZ_AGENT_ROLE" => Some("architect".into()),
        "BZZZ_BOOTSTRAP_PEERS" => Some("/ip4/127.0.0.1/tcp/9101, localhost:9102".into()),
        "BZZZ_OPERATOR_TOKEN_FILE" => Some("/run/secrets/bzzz_operator_token".into()),
        _ => None,
    })
    .expect("valid env");
    assert_eq!(c.agent.role, "architect");
    assert_eq!(
        c.api.operator_token_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/bzzz_operator_token"))
    );
    assert_eq!(c.p2p.bootstrap_peers.len(), 2);
    c.p2p.insecure_open_mesh = true;
    c.validate().expect("valid");
    let e = c
        .apply_env(|k| (k == "BZZZ_MODE").then(|| "queen".to_string()))
        .expect_err("bad mode must fail");
    assert!(e.to_string().contains("BZZZ_MODE"), "got {e}");
}

/// Every variable of the table sets the field [`ENV_VARS`] names for it.
#[test]
fn every_env_var_sets_its_field() {
    let value = |k: &str| match k {
        "BZZZ_MODE" => Some("bootstrap".to_string()),
        "BZZZ_P2P_LISTEN" | "BZZZ_EXTERNAL_ADDRESSES" | "BZZZ_BOOTSTRAP_PEERS" => Some("a, b,,c".to_string()),
        "BZZZ_INSECURE_OPEN_MESH" => Some("true".to_string()),
        "BZZZ_JOIN_TIMEOUT_MS" => Some("5000".to_string()),
        k => Some(format!("v-{k}")),
    };
    let mut c = Config::default();
    c.apply_env(value).expect("valid env");
    let d = Config::default();
    let mut changed = d.changed_fields(&c);
    changed.sort();
    let mut expected: Vec<String> = ENV_VARS
        .iter()
        .map(|(_, field)| field.split(' ').next().unwrap_or(field).to_string())
        .collect();
    expected.sort();
    assert_eq!(changed, expected, "each variable changes exactly its field");
    assert_eq!(c.p2p.listen, ["a", "b", "c"], "lists are comma-separated and trimmed");
    assert_eq!(c.node.mode, bzzz_bootstrap::Mode::Bootstrap);
    assert_eq!(c.log.format, "v-BZZZ_LOG_FORMAT");

    c.apply_env(|k| (k == "BZZZ_IDENTITY_KEY_FILE").then(String::new))
        .expect("empty unsets");
    assert_eq!(
        c.node.identity_key_file, None,
        "an empty path variable unsets the field"
    );
}
