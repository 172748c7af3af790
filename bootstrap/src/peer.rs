//! Parsing and resolving configured bootstrap peers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::error::BootstrapError;

/// Longest DNS name accepted, in bytes (RFC 1035, without the trailing dot).
const MAX_DNS_NAME_LEN: usize = 253;
/// Longest DNS label accepted, in bytes (RFC 1035).
const MAX_DNS_LABEL_LEN: usize = 63;

/// One configured bootstrap peer, as the operator wrote it.
///
/// Holds the original text (shown by [`Display`](fmt::Display)), the parsed
/// multiaddr (host + TCP port + optional `/p2p/<peer id>`) and the optional
/// expected peer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapPeer {
    original: String,
    addr: Multiaddr,
    peer_id: Option<PeerId>,
}

/// The host part of a bootstrap address, before it becomes a multiaddr.
enum Host<'a> {
    Ip4(Ipv4Addr),
    Ip6(Ipv6Addr),
    Dns(&'a str),
    Dns4(&'a str),
    Dns6(&'a str),
}

impl Host<'_> {
    fn protocol(&self) -> Protocol<'static> {
        match self {
            Host::Ip4(ip) => Protocol::Ip4(*ip),
            Host::Ip6(ip) => Protocol::Ip6(*ip),
            Host::Dns(name) => Protocol::Dns((*name).to_owned().into()),
            Host::Dns4(name) => Protocol::Dns4((*name).to_owned().into()),
            Host::Dns6(name) => Protocol::Dns6((*name).to_owned().into()),
        }
    }
}

impl BootstrapPeer {
    /// Parses one bootstrap address.
    ///
    /// Accepts a multiaddr (`/ip4/1.2.3.4/tcp/9000`, `/ip6/::1/tcp/9000`,
    /// `/dns4/tasks.dht-bootstrap/tcp/9101`, `/dns/..`, `/dns6/..`, each
    /// optionally ending in `/p2p/<peer id>`) or a `host:port` shorthand
    /// (`1.2.3.4:9000`, `[::1]:9000`, or a DNS name, which becomes
    /// `/dns/<name>/tcp/<port>`). Surrounding whitespace is ignored. The
    /// address must name a TCP port in `1..=65535`.
    ///
    /// Errors name the input and what is wrong with it; this never panics.
    pub fn parse(s: &str) -> Result<BootstrapPeer, BootstrapError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(invalid(text, "the address is empty"));
        }
        let (host, port, peer_id) = if text.starts_with('/') {
            parse_multiaddr(text)?
        } else {
            let (host, port) = parse_shorthand(text)?;
            (host, port, None)
        };
        let mut addr = Multiaddr::empty();
        addr.push(host.protocol());
        addr.push(Protocol::Tcp(port));
        if let Some(id) = peer_id {
            addr.push(Protocol::P2p(id));
        }
        Ok(BootstrapPeer {
            original: text.to_owned(),
            addr,
            peer_id,
        })
    }

    /// The parsed address: host, TCP port and, if configured, the `/p2p/<peer id>` suffix.
    pub fn addr(&self) -> &Multiaddr {
        &self.addr
    }

    /// The peer id the operator pinned with `/p2p/<peer id>`, if any.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.peer_id
    }

    /// True when the host is a DNS name (`/dns`, `/dns4`, `/dns6` or a name in `host:port`).
    pub fn is_dns(&self) -> bool {
        matches!(
            self.addr.iter().next(),
            Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_))
        )
    }

    /// Resolves the peer to dialable addresses.
    ///
    /// DNS names are looked up with [`tokio::net::lookup_host`] and every
    /// address is returned (Docker Swarm's `tasks.<service>` returns one A
    /// record per task), in resolver order without duplicates, as
    /// `/ip4|ip6/<ip>/tcp/<port>[/p2p/<id>]`. `/dns4` keeps only IPv4 and
    /// `/dns6` only IPv6 results. IP addresses come back unchanged.
    ///
    /// Cancel-safe: dropping the future loses nothing (it holds no state
    /// besides the pending lookup). It applies no timeout of its own.
    pub async fn resolve(&self) -> Result<Vec<Multiaddr>, BootstrapError> {
        let mut parts = self.addr.iter();
        let (name, want_v4, want_v6) = match parts.next() {
            Some(Protocol::Dns(name)) => (name, true, true),
            Some(Protocol::Dns4(name)) => (name, true, false),
            Some(Protocol::Dns6(name)) => (name, false, true),
            _ => return Ok(vec![self.addr.clone()]),
        };
        let port = match parts.next() {
            Some(Protocol::Tcp(port)) => port,
            // `parse` always puts the TCP port second; keep this total anyway.
            _ => {
                return Err(BootstrapError::MissingPort {
                    input: self.original.clone(),
                });
            }
        };
        let host = name.into_owned();
        let found = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| BootstrapError::Resolve {
                host: host.clone(),
                source,
            })?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for sa in found {
            let ip = sa.ip();
            let wanted = match ip {
                IpAddr::V4(_) => want_v4,
                IpAddr::V6(_) => want_v6,
            };
            if wanted && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        if ips.is_empty() {
            return Err(BootstrapError::NoAddresses { host });
        }
        Ok(ips
            .into_iter()
            .map(|ip| {
                let mut addr = Multiaddr::from(ip);
                addr.push(Protocol::Tcp(port));
                if let Some(id) = self.peer_id {
                    addr.push(Protocol::P2p(id));
                }
                addr
            })
            .collect())
    }
}

impl fmt::Display for BootstrapPeer {
    /// Writes the address as the operator wrote it (trimmed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl FromStr for BootstrapPeer {
    type Err = BootstrapError;

    /// Same as [`BootstrapPeer::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BootstrapPeer::parse(s)
    }
}

/// Parses a list of bootstrap peers separated by commas and/or whitespace
/// (as in an environment variable); empty entries are skipped, the first bad
/// entry is reported.
pub fn parse_peer_list(s: &str) -> Result<Vec<BootstrapPeer>, BootstrapError> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(BootstrapPeer::parse)
        .collect()
}

fn invalid(input: &str, reason: impl Into<String>) -> BootstrapError {
    BootstrapError::InvalidAddress {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn missing_port(input: &str) -> BootstrapError {
    BootstrapError::MissingPort {
        input: input.to_owned(),
    }
}

/// Parses `/<host proto>/<host>/tcp/<port>[/p2p/<id>]` (one trailing `/` tolerated).
fn parse_multiaddr<'a>(text: &'a str) -> Result<(Host<'a>, u16, Option<PeerId>), BootstrapError> {
    let body = text.strip_prefix('/').unwrap_or(text);
    let body = body.strip_suffix('/').unwrap_or(body);
    let segs: Vec<&str> = body.split('/').collect();
    let proto = segs.first().copied().unwrap_or("");
    let value = segs.get(1).copied();
    let need_value = |v: Option<&'a str>| -> Result<&'a str, BootstrapError> {
        match v {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(invalid(text, format!("/{proto} needs a value"))),
        }
    };
    let host = match proto {
        "ip4" => {
            let v = need_value(value)?;
            Host::Ip4(
                v.parse()
                    .map_err(|_| invalid(text, format!("{v:?} is not an IPv4 address")))?,
            )
        }
        "ip6" => {
            let v = need_value(value)?;
            Host::Ip6(
                v.parse()
                    .map_err(|_| invalid(text, format!("{v:?} is not an IPv6 address")))?,
            )
        }
        "dns" => Host::Dns(check_dns_name(text, need_value(value)?)?),
        "dns4" => Host::Dns4(check_dns_name(text, need_value(value)?)?),
        "dns6" => Host::Dns6(check_dns_name(text, need_value(value)?)?),
        "dnsaddr" => {
            return Err(invalid(
                text,
                "/dnsaddr is not supported; use /dns, /dns4 or /dns6 with a /tcp port",
            ));
        }
        _ => {
            return Err(invalid(
                text,
                format!("must start with /ip4, /ip6, /dns, /dns4 or /dns6, not /{proto}"),
            ));
        }
    };
    // Anything other than `/tcp/<port>` after the host (nothing, `/udp/..`,
    // `/quic-v1`, ...) means there is no TCP port to dial.
    if segs.get(2).copied() != Some("tcp") {
        return Err(missing_port(text));
    }
    let port = match segs.get(3) {
        Some(p) if !p.is_empty() => parse_port(text, p)?,
        _ => return Err(missing_port(text)),
    };
    let peer_id = match segs.get(4).copied() {
        None => None,
        Some("p2p" | "ipfs") => {
            let id = match segs.get(5) {
                Some(id) if !id.is_empty() => *id,
                _ => return Err(invalid(text, "/p2p needs a peer id")),
            };
            let parsed = PeerId::from_str(id).map_err(|e| invalid(text, format!("invalid peer id {id:?}: {e}")))?;
            Some(parsed)
        }
        Some(other) => {
            return Err(invalid(
                text,
                format!("unsupported /{other} after the tcp port (only /p2p/<peer id> may follow)"),
            ));
        }
    };
    if let Some(extra) = segs.get(6) {
        return Err(invalid(text, format!("unexpected /{extra} after the peer id")));
    }
    Ok((host, port, peer_id))
}

/// Parses `ipv4:port`, `[ipv6]:port` or `name:port`.
fn parse_shorthand(text: &str) -> Result<(Host<'_>, u16), BootstrapError> {
    if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(invalid(text, "missing closing ']' after the IPv6 address"));
        };
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| invalid(text, format!("{inside:?} is not an IPv6 address")))?;
        let port = match after.strip_prefix(':') {
            Some(p) if !p.is_empty() => parse_port(text, p)?,
            Some(_) => return Err(missing_port(text)),
            None if after.is_empty() => return Err(missing_port(text)),
            None => {
                return Err(invalid(text, format!("expected ':<port>' after ']', found {after:?}")));
            }
        };
        return Ok((Host::Ip6(ip), port));
    }
    if text.matches(':').count() > 1 {
        return Err(invalid(
            text,
            "IPv6 addresses need brackets, e.g. [::1]:9000 (or use /ip6/<addr>/tcp/<port>)",
        ));
    }
    let Some((host, port)) = text.split_once(':') else {
        // No port at all: say so if the rest is a usable host, otherwise say what is wrong with it.
        if text.parse::<Ipv4Addr>().is_err() {
            check_dns_name(text, text)?;
        }
        return Err(missing_port(text));
    };
    if port.is_empty() {
        return Err(missing_port(text));
    }
    if host.is_empty() {
        return Err(invalid(text, "the host is empty"));
    }
    let port = parse_port(text, port)?;
    let host = match host.parse::<Ipv4Addr>() {
        Ok(ip) => Host::Ip4(ip),
        Err(_) => Host::Dns(check_dns_name(text, host)?),
    };
    Ok((host, port))
}

fn parse_port(text: &str, port: &str) -> Result<u16, BootstrapError> {
    match port.parse::<u16>() {
        Ok(0) => Err(invalid(text, "tcp port 0 cannot be dialled")),
        Ok(p) => Ok(p),
        Err(_) => Err(invalid(text, format!("tcp port {port:?} is not a number in 1..=65535"))),
    }
}

/// Checks that `name` is a plausible DNS host name (letters, digits, `-`, `_`).
fn check_dns_name<'a>(text: &str, name: &'a str) -> Result<&'a str, BootstrapError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(invalid(text, "the host name is empty"));
    }
    if bare.len() > MAX_DNS_NAME_LEN {
        return Err(invalid(
            text,
            format!("host name is longer than {MAX_DNS_NAME_LEN} bytes"),
        ));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(invalid(text, format!("host name {name:?} has an empty label")));
        }
        if label.len() > MAX_DNS_LABEL_LEN {
            return Err(invalid(
                text,
                format!("host name label {label:?} is longer than {MAX_DNS_LABEL_LEN} bytes"),
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(invalid(
                text,
                format!("host name {name:?} contains {bad:?}; only letters, digits, '-' and '_' are allowed"),
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid(
                text,
                format!("host name label {label:?} starts or ends with '-'"),
            ));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn peer_id() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519().public().to_peer_id()
    }

    fn parse_ok(s: &str) -> BootstrapPeer {
        match BootstrapPeer::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("parsing {s:?}: expected Ok, got error: {e}"),
        }
    }

    fn parse_err(s: &str) -> BootstrapError {
        match BootstrapPeer::parse(s) {
            Ok(p) => panic!("parsing {s:?}: expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    /// Every accepted form parses to the expected multiaddr, DNS flag and peer id,
    /// and Display gives back the original text.
    #[test]
    fn parse_accepts_every_documented_form() {
        let cases: &[(&str, &str, bool)] = &[
            ("/ip4/1.2.3.4/tcp/9000", "/ip4/1.2.3.4/tcp/9000", false),
            ("/ip6/::1/tcp/9000", "/ip6/::1/tcp/9000", false),
            (
                "/dns4/tasks.dht-bootstrap/tcp/9101",
                "/dns4/tasks.dht-bootstrap/tcp/9101",
                true,
            ),
            (
                "/dns/bootstrap.example.com/tcp/1",
                "/dns/bootstrap.example.com/tcp/1",
                true,
            ),
            ("/dns6/seed.example/tcp/65535", "/dns6/seed.example/tcp/65535", true),
            ("/ip4/1.2.3.4/tcp/9000/", "/ip4/1.2.3.4/tcp/9000", false),
            ("10.0.0.7:9000", "/ip4/10.0.0.7/tcp/9000", false),
            ("[::1]:9000", "/ip6/::1/tcp/9000", false),
            ("[2001:db8::5]:4001", "/ip6/2001:db8::5/tcp/4001", false),
            ("dht-bootstrap:9101", "/dns/dht-bootstrap/tcp/9101", true),
            ("tasks.dht-bootstrap:9101", "/dns/tasks.dht-bootstrap/tcp/9101", true),
            ("bzzz_seed.local.:9101", "/dns/bzzz_seed.local./tcp/9101", true),
            ("  localhost:9000\n", "/dns/localhost/tcp/9000", true),
        ];
        for (input, want_addr, want_dns) in cases {
            let p = parse_ok(input);
            assert_eq!(
                p.addr().to_string(),
                *want_addr,
                "addr of {input:?}: expected {want_addr}, got {}",
                p.addr()
            );
            assert_eq!(
                p.is_dns(),
                *want_dns,
                "is_dns of {input:?}: expected {want_dns}, got {}",
                p.is_dns()
            );
            assert_eq!(
                p.peer_id(),
                None,
                "peer id of {input:?}: expected None, got {:?}",
                p.peer_id()
            );
            assert_eq!(
                p.to_string(),
                input.trim(),
                "display of {input:?}: expected the trimmed original, got {p}"
            );
            let via_from_str: Result<BootstrapPeer, _> = input.parse();
            assert!(
                matches!(&via_from_str, Ok(q) if *q == p),
                "FromStr of {input:?}: expected {p:?}, got {via_from_str:?}"
            );
        }
    }

    /// A `/p2p/<peer id>` suffix (real ed25519 id) is parsed on IP and DNS addresses and kept in addr().
    #[test]
    fn parse_accepts_p2p_suffix_with_real_peer_id() {
        let id = peer_id();
        for input in [
            format!("/ip4/127.0.0.1/tcp/9000/p2p/{id}"),
            format!("/ip6/::1/tcp/9000/p2p/{id}"),
            format!("/dns4/tasks.dht-bootstrap/tcp/9101/p2p/{id}"),
            format!("/dns/seed/tcp/9101/ipfs/{id}"),
        ] {
            let p = parse_ok(&input);
            assert_eq!(
                p.peer_id(),
                Some(id),
                "peer id of {input:?}: expected {id}, got {:?}",
                p.peer_id()
            );
            let last = p.addr().iter().last();
            assert_eq!(
                last,
                Some(Protocol::P2p(id)),
                "addr of {input:?} should end in /p2p/{id}, got {}",
                p.addr()
            );
        }
    }

    /// Garbage, empty, port-less, UDP-only and bad-peer-id inputs are rejected with the
    /// right variant, and the message names the input.
    #[test]
    fn parse_rejects_bad_input_naming_it() {
        #[derive(Debug)]
        enum Want {
            Invalid,
            NoPort,
        }
        let cases: &[(&str, Want)] = &[
            ("", Want::Invalid),
            ("   ", Want::Invalid),
            ("garbage!!", Want::Invalid),
            ("bogus", Want::NoPort),
            ("not a host:9000", Want::Invalid),
            ("/", Want::Invalid),
            ("/garbage/1.2.3.4/tcp/1", Want::Invalid),
            ("/ip4/1.2.3.999/tcp/9000", Want::Invalid),
            ("/ip4/1.2.3.4", Want::NoPort),
            ("/ip4/1.2.3.4/tcp", Want::NoPort),
            ("/ip4/1.2.3.4/tcp/", Want::NoPort),
            ("/ip4/1.2.3.4/udp/9000", Want::NoPort),
            ("/ip4/1.2.3.4/udp/9000/quic-v1", Want::NoPort),
            ("/dns4/tasks.dht-bootstrap", Want::NoPort),
            ("/ip4/1.2.3.4/tcp/70000", Want::Invalid),
            ("/ip4/1.2.3.4/tcp/0", Want::Invalid),
            ("/ip4/1.2.3.4/tcp/9000/p2p/notapeerid", Want::Invalid),
            ("/ip4/1.2.3.4/tcp/9000/p2p/", Want::Invalid),
            ("/ip4/1.2.3.4/tcp/9000/ws", Want::Invalid),
            ("/dnsaddr/bootstrap.libp2p.io/tcp/4001", Want::Invalid),
            ("/dns//tcp/9000", Want::Invalid),
            ("/dns/-bad-/tcp/9000", Want::Invalid),
            ("/dns/a..b/tcp/9000", Want::Invalid),
            ("1.2.3.4", Want::NoPort),
            ("1.2.3.4:", Want::NoPort),
            ("1.2.3.4:port", Want::Invalid),
            (":9000", Want::Invalid),
            ("::1:9000", Want::Invalid),
            ("[::1]", Want::NoPort),
            ("[::1]:", Want::NoPort),
            ("[::1", Want::Invalid),
            ("[nope]:9000", Want::Invalid),
            ("[::1]x9000", Want::Invalid),
            ("tcp://1.2.3.4:9000", Want::Invalid),
            ("héllo:9000", Want::Invalid),
        ];
        for (input, want) in cases {
            let err = parse_err(input);
            let ok = matches!(
                (&err, want),
                (BootstrapError::InvalidAddress { .. }, Want::Invalid)
                    | (BootstrapError::MissingPort { .. }, Want::NoPort)
            );
            assert!(ok, "parsing {input:?}: expected {want:?}, got {err:?}");
            let msg = err.to_string();
            let quoted = format!("{:?}", input.trim());
            assert!(
                msg.contains(&quoted),
                "error for {input:?} should name the input ({quoted}), got {msg:?}"
            );
        }
    }

    /// A bad peer id error says that the peer id is what is wrong.
    #[test]
    fn parse_bad_peer_id_says_so() {
        let msg = parse_err("/ip4/1.2.3.4/tcp/9000/p2p/12D3KooWnotreal").to_string();
        assert!(
            msg.contains("peer id") && msg.contains("12D3KooWnotreal"),
            "expected the message to blame the peer id, got {msg:?}"
        );
    }

    /// parse never panics, whatever the input: random mixes of address fragments,
    /// punctuation and non-ASCII text either parse or return an error.
    #[test]
    fn parse_never_panics_on_arbitrary_strings() {
        let id = peer_id().to_string();
        let tokens: Vec<&str> = vec![
            "/",
            "/",
            ":",
            "[",
            "]",
            ".",
            "-",
            "_",
            "ip4",
            "ip6",
            "dns",
            "dns4",
            "dns6",
            "dnsaddr",
            "tcp",
            "udp",
            "p2p",
            "ipfs",
            "1.2.3.4",
            "::1",
            "9000",
            "0",
            "65536",
            "-1",
            "localhost",
            "tasks.dht-bootstrap",
            &id,
            "12D3KooW",
            "é",
            "日本",
            "🐝",
            "\u{0}",
            "\u{202e}",
            " ",
            "\n",
            "%",
            "\\",
            "ffff:ffff",
            "99999999999999999999",
        ];
        let mut rng = StdRng::seed_from_u64(0xB2_22);
        let mut accepted = 0usize;
        for _ in 0..3000 {
            let n = rng.gen_range(0..12);
            let s: String = (0..n).map(|_| tokens[rng.gen_range(0..tokens.len())]).collect();
            if BootstrapPeer::parse(&s).is_ok() {
                accepted += 1;
            }
            // Also some fully random unicode.
            let len = rng.gen_range(0..40);
            let u: String = (0..len).map(|_| rng.r#gen::<char>()).collect();
            let _ = BootstrapPeer::parse(&u);
            let _ = parse_peer_list(&u);
        }
        assert!(
            accepted < 3000,
            "expected most random strings to be rejected, got {accepted} of 3000 accepted"
        );
    }

    /// Comma/whitespace separated lists parse every entry and report the first bad one.
    #[test]
    fn parse_peer_list_splits_and_reports() {
        let got = parse_peer_list(" /ip4/1.2.3.4/tcp/1, seed:2 ,,\n[::1]:3 ");
        let texts: Option<Vec<String>> = got.as_ref().ok().map(|v| v.iter().map(ToString::to_string).collect());
        assert_eq!(
            texts,
            Some(vec![
                "/ip4/1.2.3.4/tcp/1".to_owned(),
                "seed:2".to_owned(),
                "[::1]:3".to_owned()
            ]),
            "expected three peers, got {got:?}"
        );
        let empty = parse_peer_list("  ");
        assert!(
            matches!(&empty, Ok(v) if v.is_empty()),
            "expected an empty list, got {empty:?}"
        );
        let bad = parse_peer_list("seed:2,bogus");
        assert!(
            matches!(&bad, Err(BootstrapError::MissingPort { input }) if input == "bogus"),
            "expected MissingPort for \"bogus\", got {bad:?}"
        );
    }

    /// IP addresses resolve to themselves, unchanged (including the /p2p suffix).
    #[tokio::test]
    async fn resolve_returns_ip_addresses_unchanged() {
        let id = peer_id();
        for input in ["/ip4/10.1.2.3/tcp/9000".to_owned(), format!("/ip6/::1/tcp/9/p2p/{id}")] {
            let p = parse_ok(&input);
            let got = p.resolve().await;
            assert!(
                matches!(&got, Ok(v) if v == &vec![p.addr().clone()]),
                "resolving {input:?}: expected [{}], got {got:?}",
                p.addr()
            );
        }
    }

    /// `localhost:PORT` resolves to at least one loopback address with the same port
    /// and the pinned peer id carried over.
    #[tokio::test]
    async fn resolve_localhost_gives_loopback() {
        let id = peer_id();
        for input in [
            "localhost:9123".to_owned(),
            format!("/dns4/localhost/tcp/9123/p2p/{id}"),
        ] {
            let p = parse_ok(&input);
            let got = match p.resolve().await {
                Ok(v) => v,
                Err(e) => panic!("resolving {input:?}: expected loopback addresses, got {e}"),
            };
            assert!(
                !got.is_empty(),
                "resolving {input:?}: expected at least one address, got none"
            );
            for addr in &got {
                let parts: Vec<Protocol<'_>> = addr.iter().collect();
                let loopback = matches!(parts.first(), Some(Protocol::Ip4(ip)) if ip.is_loopback())
                    || matches!(parts.first(), Some(Protocol::Ip6(ip)) if ip.is_loopback());
                assert!(loopback, "resolving {input:?}: expected loopback, got {addr}");
                assert_eq!(
                    parts.get(1),
                    Some(&Protocol::Tcp(9123)),
                    "resolving {input:?}: expected tcp/9123 in {addr}"
                );
                if input.contains("/p2p/") {
                    assert_eq!(
                        parts.get(2),
                        Some(&Protocol::P2p(id)),
                        "resolving {input:?}: expected /p2p/{id} in {addr}"
                    );
                }
            }
        }
    }

    /// A name that does not exist fails with an error naming the host.
    #[tokio::test]
    async fn resolve_unknown_name_names_host() {
        let p = parse_ok("/dns4/no-such-host.invalid/tcp/9000");
        let got = p.resolve().await;
        match got {
            Err(e @ (BootstrapError::Resolve { .. } | BootstrapError::NoAddresses { .. })) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("no-such-host.invalid"),
                    "expected the error to name the host, got {msg:?}"
                );
            }
            other => panic!("expected a resolve error, got {other:?}"),
        }
    }
}
