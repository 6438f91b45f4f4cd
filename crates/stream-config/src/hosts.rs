//! Entries of a source's outbound allow-list (`sources.<id>.allowed_hosts`): a host
//! (`api.example.com`, `10.0.0.7`, `[::1]`), optionally with a port (`cdn.example.com:443`),
//! or every subdomain of a domain (`*.example.com`). Parsed here so `validate` and the
//! HTTP client read them the same way.

use std::net::IpAddr;

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: PatternHost,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternHost {
    Ip(IpAddr),
    Name(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    Subdomains(String),
}

const HINT: &str =
    "give a host, optionally with a port: `api.example.com`, `cdn.example.com:443`, `*.example.com`, `10.0.0.7:8080`, `[::1]:9000`";

impl HostPattern {
    /// Parses an entry; the error says what is wrong and what to write instead.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("`{entry}` {why}; {HINT}");
        let entry_t = entry.trim();
        if entry_t.is_empty() {
            return Err(bad("is empty"));
        }
        if entry_t.contains("://") || entry_t.contains('/') || entry_t.contains('@') {
            return Err(bad("is not a bare host (no scheme, path or user)"));
        }
        let (host, port) = if let Some(rest) = entry_t.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("has an unclosed `[`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("has text after `]`"))?,
                ),
            };
            (ip, port)
        } else if entry_t.matches(':').count() > 1 {
            (entry_t, None) // a bare IPv6 address
        } else {
            match entry_t.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (entry_t, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(bad("has an invalid port (1-65535)")),
            },
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            PatternHost::Ip(ip)
        } else if let Some(domain) = host.strip_prefix("*.") {
            check_name(domain).map_err(&bad)?;
            PatternHost::Subdomains(domain.to_owned())
        } else {
            check_name(&host).map_err(&bad)?;
            PatternHost::Name(host)
        };
        Ok(Self { host, port })
    }

    /// True for an entry naming one host (`api.example.com`, `10.0.0.7`), false for a
    /// wildcard (`*.example.com`).
    pub fn names_one_host(&self) -> bool {
        !matches!(self.host, PatternHost::Subdomains(_))
    }

    /// The port the entry names, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// True when `host` (a URL's host: a name, or an IP address with or without IPv6
    /// brackets) on `port` is allowed by this entry.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match &self.host {
            PatternHost::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            PatternHost::Name(name) => host == *name,
            PatternHost::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        }
    }
}

/// `validate`'s rule: every entry parses (`sources.<id>.allowed_hosts[i]` otherwise).
pub(crate) fn check(c: &mut crate::validate::Checker, p: crate::path::KeyPath, hosts: &[String]) {
    for (i, entry) in hosts.iter().enumerate() {
        if let Err(why) = HostPattern::parse(entry) {
            c.fail(
                p.index(i),
                why,
                "the configured URL's origin is always allowed; list only the other hosts redirects or next-page links may go to",
            );
        }
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if ok {
        Ok(())
    } else {
        Err("is not a host name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_entry_and_what_to_write() {
        let yaml = "sources:\n  web:\n    source_type: http_json\n    allowed_hosts: [cdn.example.com, \"https://x.example/\"]\n";
        let err = crate::Loader::new()
            .load_str(yaml, crate::Format::Yaml, "hosts.yaml")
            .unwrap_err();
        let items = &err.diagnostics().unwrap().items;
        assert_eq!(items.len(), 1, "{err}");
        assert_eq!(items[0].path, "sources.web.allowed_hosts[1]");
        assert!(items[0].message.contains("not a bare host"), "{err}");
        assert!(
            items[0].hint.as_deref().unwrap().contains("origin"),
            "{err}"
        );
    }

    #[test]
    fn entries_parse_and_match_host_and_port() {
        let p = HostPattern::parse("Cdn.Example.com:443").unwrap();
        assert!(p.matches("cdn.example.com", 443));
        assert!(!p.matches("cdn.example.com", 80));
        let any = HostPattern::parse("127.0.0.1").unwrap();
        assert!(any.matches("127.0.0.1", 1) && any.port().is_none());
        let v6 = HostPattern::parse("[::1]:9000").unwrap();
        assert!(v6.matches("[::1]", 9000) && !v6.matches("[::1]", 9001));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.b.example.com", 1));
        assert!(!wild.matches("example.com", 1) && !wild.matches("badexample.com", 1));
        for bad in [
            "", "http://h", "h/x", "u@h", "h:0", "h:x", "[::1", "a..b", "*.", "h h",
        ] {
            let err = HostPattern::parse(bad).unwrap_err();
            assert!(err.contains("give a host"), "{bad}: {err}");
        }
    }
}
