//! Semantic rules on a deserialized configuration. Every rule that fails adds a problem;
//! nothing stops at the first.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::model::{ContentRule, IngestionModeKind, RuleOperator, SourceConfig, StreamConfig};
use crate::path::KeyPath;

/// A rule violation before it is given a file position.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    pub(crate) fn fail(
        &mut self,
        path: KeyPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let hint = hint.into();
        self.problems.push(Problem {
            path,
            message: message.into(),
            hint: (!hint.is_empty()).then_some(hint),
        });
    }

    fn pointer(&mut self, path: KeyPath, pointer: &str) {
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            self.fail(
                path,
                format!("`{pointer}` is not a JSON pointer"),
                format!(
                    "write it as `/{}` (JSON pointers start with `/`)",
                    pointer.replace('.', "/")
                ),
            );
        }
    }

    fn topic(&mut self, path: KeyPath, topic: &str, allow_template: bool) {
        if let Err(why) = topic_resolver::check_topic(topic, allow_template) {
            self.fail(
                path,
                why,
                "topic names are 1-249 characters of a-z A-Z 0-9 . _ -",
            );
        }
    }
}

pub(crate) fn validate(
    cfg: &StreamConfig,
    source_types: Option<&BTreeSet<String>>,
) -> Vec<Problem> {
    let mut c = Checker::default();
    let root = KeyPath::default();

    // Every number's range (ranges.rs), then the rules between keys.
    crate::ranges::check(&mut c, cfg);

    // kafka
    let k = root.key("kafka");
    let servers = cfg.kafka.bootstrap_servers.trim();
    if servers.is_empty() {
        c.fail(
            k.key("bootstrap_servers"),
            "must not be empty",
            "use `host:port[,host:port]` or `embedded`",
        );
    } else if !cfg.kafka.is_embedded() {
        for server in servers.split(',').map(str::trim) {
            let port_ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                c.fail(
                    k.key("bootstrap_servers"),
                    format!("`{server}` is not `host:port`"),
                    "use `host:port[,host:port]`, or `embedded` for the in-process broker",
                );
            }
        }
    }
    if cfg.kafka.client_id.trim().is_empty() {
        c.fail(k.key("client_id"), "must not be empty", "");
    }
    // librdkafka refuses a producer whose batches may wait longer than a record may.
    let timeout = cfg.kafka.message_timeout_ms.unwrap_or(300_000);
    if cfg.kafka.linger_ms >= timeout {
        c.fail(
            k.key("linger_ms"),
            format!(
                "linger_ms ({}) must be below message_timeout_ms ({timeout})",
                cfg.kafka.linger_ms
            ),
            "a record would time out while its batch is still waiting: lower linger_ms or raise message_timeout_ms (default 300000)",
        );
    }
    cfg.kafka
        .security
        .check(&mut c, k.key("security"), cfg.kafka.is_embedded());
    cfg.cluster
        .check(&mut c, root.key("cluster"), cfg.kafka.is_embedded());

    // throttling
    let t = root.key("throttling");
    let th = &cfg.throttling;
    if th.min_send_rate > th.max_send_rate {
        c.fail(
            t.key("min_send_rate"),
            format!(
                "min_send_rate ({}) is above max_send_rate ({})",
                th.min_send_rate, th.max_send_rate
            ),
            "min_send_rate must be <= max_send_rate",
        );
    }
    if th.target_consumer_lag >= th.critical_consumer_lag {
        c.fail(
            t.key("target_consumer_lag"),
            format!(
                "target_consumer_lag ({}) must be below critical_consumer_lag ({})",
                th.target_consumer_lag, th.critical_consumer_lag
            ),
            "",
        );
    }
    if !(th.critical_share > 0.0 && th.critical_share <= 1.0) {
        c.fail(
            t.key("critical_share"),
            format!("must be above 0 and at most 1, got {}", th.critical_share),
            "e.g. 0.2: CRITICAL records may use up to a fifth of max_send_rate on their own",
        );
    }
    for (i, group) in th.consumer_groups.iter().flatten().enumerate() {
        if group.trim().is_empty() {
            c.fail(
                t.key("consumer_groups").index(i),
                "consumer group name is empty",
                "",
            );
        }
    }

    // queue

    // dlq
    let d = root.key("dlq");
    match url::Url::parse(&cfg.dlq.url) {
        Ok(u) if matches!(u.scheme(), "sqlite" | "postgres" | "postgresql") => {}
        Ok(u) => c.fail(
            d.key("url"),
            format!("unsupported DLQ scheme `{}`", u.scheme()),
            "use `sqlite://path/to/dlq.db` or `postgres://user:password@host/db`",
        ),
        Err(e) => c.fail(
            d.key("url"),
            format!("not a URL: {e}"),
            "use `sqlite://path/to/dlq.db` or `postgres://user:password@host/db`",
        ),
    }

    // topics
    for (name, topic) in &cfg.topics {
        let p = root.key("topics").key(name);
        c.topic(p.clone(), name, false);
        if topic.retention_ms < -1 || topic.retention_ms == 0 {
            c.fail(
                p.key("retention_ms"),
                "must be positive, or -1 to keep forever",
                "",
            );
        }
    }

    // routing
    let r = root.key("routing");
    for (source, topic) in &cfg.routing.custom_mappings {
        c.topic(r.key("custom_mappings").key(source), topic, true);
    }
    for (i, rule) in cfg.routing.content_rules.iter().enumerate() {
        content_rule(&mut c, r.key("content_rules").index(i), rule);
    }
    for (i, m) in cfg.routing.pattern_mappings.iter().enumerate() {
        let p = r.key("pattern_mappings").index(i);
        if let Err(e) = regex::Regex::new(&m.pattern) {
            c.fail(
                p.key("pattern"),
                format!("invalid regex: {}", one_line(&e.to_string())),
                "",
            );
        }
        c.topic(p.key("topic"), &m.topic, true);
    }
    c.topic(r.key("fallback_topic"), &cfg.routing.fallback_topic, false);
    if let Err(why) = topic_resolver::check_order(&cfg.routing.order) {
        c.fail(
            r.key("order"),
            why,
            "the seed's order, the default: [custom_mappings, content_rules, pattern_mappings]",
        );
    }
    for (i, rule) in cfg.routing.priority_rules.iter().enumerate() {
        let as_content = ContentRule {
            field: rule.field.clone(),
            operator: rule.operator,
            value: rule.value.clone(),
            topic: "unused".to_owned(),
        };
        content_rule(&mut c, r.key("priority_rules").index(i), &as_content);
    }

    // sources
    for (id, src) in &cfg.sources {
        source(&mut c, root.key("sources").key(id), id, src, source_types);
    }

    // server
    let s = root.key("server");
    match cfg.server.listen.parse::<SocketAddr>() {
        Ok(addr) => {
            if !addr.ip().is_loopback() && cfg.server.admin_token.is_none() {
                c.fail(
                    s.key("admin_token"),
                    format!("the admin API listens on non-loopback {addr} without a token"),
                    "set `server.admin_token` (e.g. `${ADMIN_TOKEN}`) or listen on 127.0.0.1",
                );
            }
        }
        Err(_) => c.fail(
            s.key("listen"),
            format!("`{}` is not `ip:port`", cfg.server.listen),
            "e.g. `127.0.0.1:8080`",
        ),
    }
    if cfg
        .server
        .admin_token
        .as_ref()
        .is_some_and(|t| t.expose().is_empty())
    {
        c.fail(
            s.key("admin_token"),
            "must not be empty",
            "remove the key to disable auth on loopback",
        );
    }
    if cfg.server.read_token.is_some() && cfg.server.admin_token.is_none() {
        c.fail(
            s.key("read_token"),
            "a read-only token without an admin token would leave changes unprotected",
            "set `server.admin_token` too",
        );
    }
    let ns = &cfg.server.metrics_namespace;
    let ns_ok = ns
        .chars()
        .next()
        .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
        && ns.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !ns_ok {
        c.fail(
            s.key("metrics_namespace"),
            format!("`{ns}` is not a valid metric prefix"),
            "use letters, digits and `_`",
        );
    }

    c.problems
}

fn content_rule(c: &mut Checker, p: KeyPath, rule: &ContentRule) {
    c.pointer(p.key("field"), &rule.field);
    use RuleOperator::*;
    match rule.operator {
        Exists => {}
        In => {
            if !rule.value.is_array() {
                c.fail(
                    p.key("value"),
                    "operator `in` needs a list value",
                    "e.g. `value: [\"high\", \"critical\"]`",
                );
            }
        }
        Gt | Gte | Lt | Lte => {
            if !rule.value.is_number() {
                c.fail(
                    p.key("value"),
                    format!("operator `{:?}` needs a number value", rule.operator).to_lowercase(),
                    "",
                );
            }
        }
        Matches => match rule.value.as_str() {
            Some(re) => {
                if let Err(e) = regex::Regex::new(re) {
                    c.fail(
                        p.key("value"),
                        format!("invalid regex: {}", one_line(&e.to_string())),
                        "",
                    );
                }
            }
            None => c.fail(
                p.key("value"),
                "operator `matches` needs a regex string value",
                "",
            ),
        },
        Eq | Ne => {
            if rule.value.is_null() {
                c.fail(
                    p.key("value"),
                    "a value is required",
                    "use operator `exists` to test for presence",
                );
            }
        }
    }
    c.topic(p.key("topic"), &rule.topic, true);
}

fn source(
    c: &mut Checker,
    p: KeyPath,
    id: &str,
    src: &SourceConfig,
    source_types: Option<&BTreeSet<String>>,
) {
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
    {
        c.fail(
            p.clone(),
            format!("source id `{id}` must be letters, digits, `_`, `-` or `.`"),
            "",
        );
    }
    if let Some(known) = source_types {
        if !known.contains(&src.source_type) {
            let hint = match crate::closest(&src.source_type, known.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "known types: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            c.fail(
                p.key("source_type"),
                format!("unknown source_type `{}`", src.source_type),
                hint,
            );
        }
    }
    if let Some(topic) = &src.topic {
        c.topic(p.key("topic"), topic, true);
    }
    let i = p.key("ingestion");
    let ing = &src.ingestion;
    if let Some(expr) = &ing.cron {
        if let Err(e) = cron_syntax(expr) {
            c.fail(
                i.key("cron"),
                format!("invalid cron expression `{expr}`: {e}"),
                "use 5 fields (min hour day month weekday) or 6 with seconds first",
            );
        }
    }
    if let Some(key) = &src.partition_key {
        let k = p.key("partition_key");
        match (&key.pointer, &key.geo) {
            (Some(ptr), None) => c.pointer(k.key("pointer"), ptr),
            (None, Some(geo)) => {
                c.pointer(k.key("geo").key("lat"), &geo.lat);
                c.pointer(k.key("geo").key("lon"), &geo.lon);
                if !(1..=12).contains(&geo.precision) {
                    c.fail(
                        k.key("geo").key("precision"),
                        format!("must be 1-12, got {}", geo.precision),
                        "",
                    );
                }
            }
            _ => c.fail(k, "give exactly one of `pointer` or `geo`", ""),
        }
    }
    crate::hosts::check(c, p.key("allowed_hosts"), &src.allowed_hosts);
    dedup_window(c, &p, src);
}

/// The most identities a dedup window may remember: each is 11 bytes of the fetch state
/// committed with the cursor (api-client `http/state.rs`), so this is an 11 MB snapshot,
/// read back at every start and claim (and ~50 MB of memory).
pub(crate) const MAX_DEDUP_WINDOW: u64 = 1_000_000;

/// `custom_params.dedup.window` (an HTTP source's dedup window) is what its store must
/// hold: 1 to [`MAX_DEDUP_WINDOW`] identities.
fn dedup_window(c: &mut Checker, p: &KeyPath, src: &SourceConfig) {
    let Some(w) = src.custom_params.get("dedup").and_then(|d| d.get("window")) else {
        return;
    };
    if !w
        .as_u64()
        .is_some_and(|n| (1..=MAX_DEDUP_WINDOW).contains(&n))
    {
        c.fail(
            p.key("custom_params").key("dedup").key("window"),
            format!("must be a whole number of identities between 1 and {MAX_DEDUP_WINDOW}, got {w}"),
            "each identity is 11 bytes of fetch state, loaded at every start and claim; keep the window to what the upstream repeats (the built-in connectors use 100000)",
        );
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What is valid but probably not meant, one diagnostic each (no positions): the server
/// logs them at start and on reload, `validate` prints them.
pub fn warnings(cfg: &StreamConfig) -> Vec<crate::Diagnostic> {
    let mut out = cfg.kafka.security.warnings();
    for (id, src) in &cfg.sources {
        // api.weather.gov asks every client for a contact in its User-Agent.
        let agent = src.custom_params.get("user_agent").and_then(|v| v.as_str());
        if src.source_type == "noaa_weather" && !agent.is_some_and(|a| a.contains('@')) {
            out.push(
                crate::Diagnostic::new(
                    format!("sources.{id}.custom_params.user_agent"),
                    "api.weather.gov asks for a contact in the User-Agent; the default has none (\"contact: set custom_params.user_agent\")",
                )
                .with_hint("e.g. `user_agent: \"wildfire-pipeline (ops@example.org)\"`"),
            );
        }
        let ing = &src.ingestion;
        let interval = match ing.mode {
            IngestionModeKind::Batch if ing.cron.is_some() => continue,
            IngestionModeKind::Batch => ing.schedule_interval_seconds as f64,
            IngestionModeKind::RealTime
            | IngestionModeKind::ContinuousStreaming
            | IngestionModeKind::Custom(_) => ing.polling_interval_seconds,
        };
        if src.cache_ttl_seconds as f64 > interval {
            out.push(
                crate::Diagnostic::new(
                    format!("sources.{id}.cache_ttl_seconds"),
                    format!(
                        "a {} s response cache answers polls every {interval} s with \"nothing new\": the upstream is asked once per {} s",
                        src.cache_ttl_seconds, src.cache_ttl_seconds
                    ),
                )
                .with_hint("set it to at most the polling interval, or 0 (the default)"),
            );
        }
    }
    out
}

/// Each source's `ingestion.mode` among the `known` mode names (the built-in three and
/// those a program registered); nothing is checked without the list.
pub(crate) fn ingestion_modes(
    cfg: &StreamConfig,
    known: Option<&BTreeSet<String>>,
) -> Vec<Problem> {
    let mut c = Checker::default();
    let Some(known) = known else {
        return c.problems;
    };
    for (id, src) in &cfg.sources {
        let name = src.ingestion.mode.name();
        if !known.contains(name) {
            let hint = match crate::closest(name, known.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => String::new(),
            };
            let names = known.iter().cloned().collect::<Vec<_>>().join(", ");
            let path = KeyPath::default().key("sources").key(id).key("ingestion");
            c.fail(
                path.key("mode"),
                format!("unknown ingestion mode `{name}`; registered: {names}"),
                hint,
            );
        }
    }
    c.problems
}

/// Whether `expr` is a cron expression the ingestion modes accept: 5 fields, or 6 with
/// seconds first. Only the syntax, checked here to report it at its line; the schedule
/// itself is `ingestion_modes::parse_cron`'s (a test there keeps the two in step).
fn cron_syntax(expr: &str) -> std::result::Result<(), String> {
    use croner::parser::{CronParser, Seconds};
    let parser = CronParser::builder().seconds(Seconds::Optional).build();
    parser.parse(expr).map(drop).map_err(|e| e.to_string())
}
