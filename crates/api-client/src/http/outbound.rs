//! Where an HTTP source's requests may go. Redirects and next-page links stay on the
//! configured origin (scheme, host, port of the source's URL, and of its OAuth2 token
//! endpoint) unless the source's `allowed_hosts` lists the host. Never, unless an entry
//! names it: the admin API's own address (only an entry with its port), link-local and
//! cloud-metadata addresses, and loopback for a source whose URL is not loopback. A
//! refusal is an error of the fetch, counted in `api_requests_refused_total`.
//!
//! Hosts are judged as written in the URL: IP literals by address (IPv4-mapped IPv6
//! as IPv4), names by the name (`localhost`, `*.localhost`, the metadata names). What a
//! name resolves to is checked by [`GuardedResolver`] for names neither configured nor
//! listed: their loopback (unless allowed), link-local and metadata addresses are dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use stream_config::HostPattern;

use super::spec::{Auth, ClientOptions, HttpSpec};
use crate::metrics as m;
use crate::Error;

/// Why a hop was refused; `reason()` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Scheme,
    OtherOrigin,
    AdminAddress,
    Loopback,
    LinkLocal,
    Metadata,
    /// A redirect to another origin of a source with credentials (they would follow it).
    Credentials,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Scheme => "scheme",
            Refusal::OtherOrigin => "other_origin",
            Refusal::AdminAddress => "admin_address",
            Refusal::Loopback => "loopback",
            Refusal::LinkLocal => "link_local",
            Refusal::Metadata => "metadata",
            Refusal::Credentials => "credentials",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Refusal::Scheme => "only http and https are followed",
            Refusal::OtherOrigin => "it is not the configured origin",
            Refusal::AdminAddress => "that is this server's own admin API",
            Refusal::Loopback => "a loopback address, and the configured URL is not loopback",
            Refusal::LinkLocal => "a link-local address",
            Refusal::Metadata => "a cloud-metadata address",
            Refusal::Credentials => {
                "redirect to another origin refused: this source's credentials go only to the origin configured"
            }
        }
    }
}

/// A refusal by a (possibly shared) client's redirect policy or resolver, carried
/// through reqwest's error and found again by downcasting: the source whose request it
/// was counts it and names itself in the message ([`Outbound::explain`]).
#[derive(Debug, Clone)]
pub(crate) enum Refused {
    /// A hop the rules refuse.
    Hop {
        what: &'static str,
        url: Url,
        why: Refusal,
    },
    /// A name that resolves only to addresses the rules refuse.
    Resolved { host: String },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Hop { what, url, why } => write!(
                f,
                "{what} to {}://{}:{} refused: {}",
                url.scheme(),
                url.host_str().unwrap_or("?"),
                url.port_or_known_default().unwrap_or(0),
                why.explain()
            ),
            Refused::Resolved { host } => write!(
                f,
                "`{host}` resolves only to loopback, link-local or cloud-metadata addresses; list it in the source's `allowed_hosts` only if it may go there"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// A source's outbound rules.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    source_id: String,
    /// Configured origins: (scheme, host, port).
    origins: Vec<(String, String, u16)>,
    loopback_ok: bool,
    allowed: Vec<HostPattern>,
    admin: Option<SocketAddr>,
}

/// What a URL's host is.
enum Host {
    Ip(IpAddr),
    Name(String),
}

fn host_of(url: &Url) -> Option<(Host, u16)> {
    let raw = url.host_str()?;
    let bare = raw.trim_start_matches('[').trim_end_matches(']');
    let host = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => Host::Ip(IpAddr::V4(v4)),
            None => Host::Ip(IpAddr::V6(v6)),
        },
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
    };
    Some((host, url.port_or_known_default()?))
}

fn origin_of(url: &Url) -> Option<(String, String, u16)> {
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    Some((url.scheme().to_owned(), host, url.port_or_known_default()?))
}

pub(crate) fn ip_is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

pub(crate) fn ip_is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

pub(crate) fn ip_is_metadata(ip: IpAddr) -> bool {
    const V4: [Ipv4Addr; 4] = [
        Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack…
        Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
        Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
        Ipv4Addr::new(168, 63, 129, 16),   // Azure wire server
    ];
    const V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254); // AWS
    match ip {
        IpAddr::V4(v4) => V4.contains(&v4),
        IpAddr::V6(v6) => v6 == V6,
    }
}

fn name_is_metadata(name: &str) -> bool {
    matches!(
        name,
        "metadata.google.internal"
            | "metadata.goog"
            | "metadata"
            | "instance-data"
            | "instance-data.ec2.internal"
            | "metadata.azure.com"
    )
}

fn name_is_loopback(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

impl Outbound {
    /// The rules of a source whose configured URLs are `configured` (the first one
    /// decides whether loopback is its own ground).
    pub(crate) fn new(
        source_id: &str,
        configured: &[&Url],
        allowed: Vec<HostPattern>,
        admin: Option<SocketAddr>,
    ) -> Self {
        let loopback_ok =
            configured
                .first()
                .and_then(|u| host_of(u))
                .is_some_and(|(h, _)| match h {
                    Host::Ip(ip) => ip_is_loopback(ip),
                    Host::Name(n) => name_is_loopback(&n),
                });
        Self {
            source_id: source_id.to_owned(),
            origins: configured.iter().filter_map(|u| origin_of(u)).collect(),
            loopback_ok,
            allowed,
            admin,
        }
    }

    fn listed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|p| p.matches(host, port))
    }

    fn is_admin(&self, host: &Host, port: u16) -> bool {
        let Some(admin) = self.admin else {
            return false;
        };
        if admin.port() != port {
            return false;
        }
        let admin_local = ip_is_loopback(admin.ip());
        match host {
            Host::Ip(ip) => *ip == admin.ip() || (admin_local && ip_is_loopback(*ip)),
            Host::Name(n) => admin_local && name_is_loopback(n),
        }
    }

    /// Whether a request to `url` may go out.
    pub(crate) fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        let Some((host, port)) = host_of(url) else {
            return Err(Refusal::OtherOrigin);
        };
        let raw = url.host_str().unwrap_or_default();
        if self.is_admin(&host, port)
            && !self
                .allowed
                .iter()
                .any(|p| p.port() == Some(port) && p.matches(raw, port))
        {
            return Err(Refusal::AdminAddress);
        }
        let listed = self.listed(raw, port);
        let (metadata, link_local, loopback) = match &host {
            Host::Ip(ip) => (
                ip_is_metadata(*ip),
                ip_is_link_local(*ip),
                ip_is_loopback(*ip),
            ),
            Host::Name(n) => (name_is_metadata(n), false, name_is_loopback(n)),
        };
        if !listed {
            if metadata {
                return Err(Refusal::Metadata);
            }
            if link_local {
                return Err(Refusal::LinkLocal);
            }
            if loopback && !self.loopback_ok {
                return Err(Refusal::Loopback);
            }
            if !origin_of(url).is_some_and(|o| self.origins.contains(&o)) {
                return Err(Refusal::OtherOrigin);
            }
        }
        Ok(())
    }

    /// Counts the refusal of a hop (`what`: "redirect", "next-page link") and says why,
    /// naming the host and port only (a URL's path and query may hold secrets).
    pub(crate) fn refused(&self, what: &'static str, url: &Url, why: Refusal) -> String {
        self.explain(&Refused::Hop {
            what,
            url: url.clone(),
            why,
        })
    }

    /// Counts a refusal under this source and says why, naming the source's key to
    /// change (the refusal may come from a client this source shares with others).
    pub(crate) fn explain(&self, refused: &Refused) -> String {
        let (reason, text) = match refused {
            Refused::Hop { why, .. } => (
                why.reason(),
                format!(
                    "{refused}; list the host in `sources.{}.allowed_hosts` only if this source may go there",
                    self.source_id
                ),
            ),
            Refused::Resolved { host } => (
                "resolved_address",
                format!(
                    "`{host}` resolves only to loopback, link-local or cloud-metadata addresses; list it in `sources.{}.allowed_hosts` only if this source may go there",
                    self.source_id
                ),
            ),
        };
        metrics::counter!(m::REFUSED, "source" => self.source_id.clone(), "reason" => reason)
            .increment(1);
        tracing::warn!(source = %self.source_id, reason, "{text}");
        text
    }

    /// What decides how a client built for these rules behaves (everything but the
    /// source's id): sources whose keys are equal can share one client.
    pub(crate) fn sharing_key(&self) -> String {
        format!(
            "{:?}|{}|{:?}|{:?}",
            self.origins, self.loopback_ok, self.allowed, self.admin
        )
    }

    /// Whether a name (not an IP literal) is exempt from the resolver's address check:
    /// a configured host, or one the allow-list names by itself. A wildcard entry
    /// (`*.example.com`) exempts nothing: any name under it could be made to resolve to
    /// a metadata or loopback address (DNS rebinding), and nobody allowed that.
    fn name_trusted(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.origins.iter().any(|(_, h, _)| *h == name)
            || self
                .allowed
                .iter()
                .filter(|p| p.names_one_host())
                .any(|p| p.matches(&name, p.port().unwrap_or(0)))
    }

    /// The addresses a looked-up name may be connected to (see the module doc).
    pub(crate) fn filter_resolved(&self, name: &str, addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        if self.name_trusted(name) {
            return addrs;
        }
        addrs
            .into_iter()
            .filter(|a| {
                let ip = match a.ip() {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                    v4 => v4,
                };
                !(ip_is_metadata(ip)
                    || ip_is_link_local(ip)
                    || (ip_is_loopback(ip) && !self.loopback_ok))
            })
            .collect()
    }
}

/// The rules of the source `spec` and `opts` describe.
pub(crate) fn for_spec(spec: &HttpSpec, opts: &ClientOptions) -> Result<Outbound, Error> {
    let mut configured: Vec<Url> = Url::parse(&spec.url).into_iter().collect();
    if let Some(Auth::Oauth2 { token_url, .. }) = &spec.auth {
        configured.extend(Url::parse(token_url));
    }
    let allowed = opts
        .allowed_hosts
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            HostPattern::parse(entry).map_err(|message| Error::Config {
                path: format!("sources.{}.allowed_hosts[{i}]", opts.source_id),
                message,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let configured: Vec<&Url> = configured.iter().collect();
    Ok(Outbound::new(
        &opts.source_id,
        &configured,
        allowed,
        opts.admin_address,
    ))
}

/// The redirect policy of a source: at most 10 hops, each allowed by `rules`; a source
/// with credentials follows none to another origin than the request's.
pub(crate) fn redirect_policy(
    rules: Arc<Outbound>,
    has_credentials: bool,
) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let cross_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() != attempt.url().origin());
        if attempt.previous().len() > 10 {
            return attempt.error("more than 10 redirects");
        }
        let why = match rules.check(attempt.url()) {
            Err(why) => Some(why),
            Ok(()) if cross_origin && has_credentials => Some(Refusal::Credentials),
            Ok(()) => None,
        };
        match why {
            Some(why) => {
                let url = attempt.url().clone();
                attempt.error(Refused::Hop {
                    what: "redirect",
                    url,
                    why,
                })
            }
            None => attempt.follow(),
        }
    })
}

/// The refusal somewhere in an error's chain of causes, if any.
pub(crate) fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cause = c.source();
    }
    None
}

/// reqwest's resolver for a source: the system's lookup, then [`Outbound::filter_resolved`].
#[derive(Debug)]
pub(crate) struct GuardedResolver(pub(crate) Arc<Outbound>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let rules = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = rules.filter_resolved(&host, found);
            if kept.is_empty() {
                let refused = Refused::Resolved { host };
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(configured: &str, allowed: &[&str], admin: Option<&str>) -> Outbound {
        let url = Url::parse(configured).unwrap();
        Outbound::new(
            "s",
            &[&url],
            allowed
                .iter()
                .map(|a| HostPattern::parse(a).unwrap())
                .collect(),
            admin.map(|a| a.parse().unwrap()),
        )
    }

    fn check(r: &Outbound, url: &str) -> Result<(), Refusal> {
        r.check(&Url::parse(url).unwrap())
    }

    #[test]
    fn never_metadata_link_local_admin_or_foreign_loopback_unless_listed() {
        let r = rules("https://api.example.com/x", &[], Some("127.0.0.1:8080"));
        assert_eq!(check(&r, "https://api.example.com/y?page=2"), Ok(()));
        assert_eq!(
            check(&r, "http://api.example.com/y"),
            Err(Refusal::OtherOrigin)
        );
        assert_eq!(
            check(&r, "https://cdn.example.com/y"),
            Err(Refusal::OtherOrigin)
        );
        assert_eq!(
            check(&r, "http://169.254.169.254/latest"),
            Err(Refusal::Metadata)
        );
        assert_eq!(check(&r, "http://[fd00:ec2::254]/"), Err(Refusal::Metadata));
        assert_eq!(
            check(&r, "http://metadata.google.internal/"),
            Err(Refusal::Metadata)
        );
        assert_eq!(check(&r, "http://169.254.1.2/"), Err(Refusal::LinkLocal));
        assert_eq!(check(&r, "http://[fe80::1]/"), Err(Refusal::LinkLocal));
        assert_eq!(check(&r, "http://127.0.0.2:9/"), Err(Refusal::Loopback));
        assert_eq!(check(&r, "http://localhost:9/"), Err(Refusal::Loopback));
        assert_eq!(
            check(&r, "http://[::ffff:127.0.0.1]:9/"),
            Err(Refusal::Loopback)
        );
        assert_eq!(check(&r, "http://0.0.0.0:9/"), Err(Refusal::Loopback));
        assert_eq!(check(&r, "http://2130706433:9/"), Err(Refusal::Loopback));
        assert_eq!(
            check(&r, "http://localhost:8080/config"),
            Err(Refusal::AdminAddress)
        );
        assert_eq!(check(&r, "file:///etc/passwd"), Err(Refusal::Scheme));
        let wide = rules(
            "https://api.example.com/x",
            &["*.example.com", "169.254.1.2", "127.0.0.1"],
            Some("127.0.0.1:8080"),
        );
        assert_eq!(check(&wide, "https://cdn.example.com/y"), Ok(()));
        assert_eq!(check(&wide, "http://169.254.1.2/"), Ok(()));
        assert_eq!(check(&wide, "http://127.0.0.1:9/"), Ok(()));
        // The admin address needs an entry with its port.
        assert_eq!(
            check(&wide, "http://127.0.0.1:8080/"),
            Err(Refusal::AdminAddress)
        );
        let admin_ok = rules(
            "http://127.0.0.1:1/",
            &["127.0.0.1:8080"],
            Some("127.0.0.1:8080"),
        );
        assert_eq!(check(&admin_ok, "http://127.0.0.1:8080/"), Ok(()));
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_loopback_is_refused_by_the_resolver() {
        use reqwest::dns::Resolve as _;
        let resolve = |rules: Outbound| async move {
            let name: reqwest::dns::Name = "localhost".parse().unwrap();
            GuardedResolver(Arc::new(rules)).resolve(name).await
        };
        // A public source: `localhost` (the system's lookup) leads only to loopback.
        let refused = resolve(rules("https://api.example.com/x", &[], None)).await;
        let err = refused.err().expect("refused").to_string();
        assert!(
            err.contains("resolves only to") && err.contains("allowed_hosts"),
            "{err}"
        );
        // A loopback source, or a listed name: resolved as usual.
        let local = resolve(rules("http://127.0.0.1:9/", &[], None)).await;
        assert!(local.is_ok_and(|mut a| a.next().is_some_and(|a| a.ip().is_loopback())));
        let listed = resolve(rules("https://api.example.com/x", &["localhost"], None)).await;
        assert!(listed.is_ok());
    }

    #[test]
    fn the_resolver_drops_addresses_an_untrusted_name_may_not_reach() {
        let r = rules("https://api.example.com/x", &["cdn.example.com"], None);
        let addrs: Vec<SocketAddr> = [
            "127.0.0.1:0",
            "169.254.169.254:0",
            "[fe80::1]:0",
            "93.184.216.34:0",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let public: SocketAddr = "93.184.216.34:0".parse().unwrap();
        assert_eq!(r.filter_resolved("evil.test", addrs.clone()), vec![public]);
        assert_eq!(r.filter_resolved("api.example.com", addrs.clone()), addrs);
        assert_eq!(r.filter_resolved("cdn.example.com.", addrs.clone()), addrs);
        // A wildcard allows the names under it, not where they resolve to.
        let r = rules("https://api.example.com/x", &["*.cdn.example.com"], None);
        assert_eq!(
            r.filter_resolved("x.cdn.example.com", addrs.clone()),
            vec![public]
        );
    }
}
