//! Pages and cursors as pure functions: the first URL of a poll, the next page's URL
//! (next link, `Link` header, cursor token, offset), and the newest incremental cursor.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::Value;

use crate::Record;
use stream_contracts::pointer::pointer_tokens;

use super::spec::{HttpSpec, Incremental, Pagination};
use crate::Cursor;

#[cfg(test)]
pub(crate) fn first_url(
    spec: &HttpSpec,
    source_id: &str,
    cursor: Option<&Cursor>,
) -> Result<Url, crate::Error> {
    let url = Url::parse(&spec.url).map_err(|e| crate::Error::Config {
        path: format!("sources.{}.custom_params.url", source_id),
        message: e.to_string(),
    })?;
    Ok(first_url_from(url, spec, cursor))
}

/// The first page's URL, from the configured URL already parsed (`url`): its query
/// parameters, the incremental cursor, the first offset.
pub(crate) fn first_url_from(mut url: Url, spec: &HttpSpec, cursor: Option<&Cursor>) -> Url {
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &spec.query {
            q.append_pair(k, v);
        }
        if let Some(inc) = &spec.incremental {
            if let Some(value) = cursor.map(|c| c.0.clone()).or_else(|| inc.initial.clone()) {
                q.append_pair(&inc.param, &value);
            }
        }
        if let Pagination::Offset {
            offset_param,
            limit_param,
            limit,
        } = &spec.pagination
        {
            q.append_pair(offset_param, "0");
            q.append_pair(limit_param, &limit.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

pub(crate) fn next_url(
    pagination: &Pagination,
    current: &Url,
    headers: &HeaderMap,
    value_at: &dyn Fn(&str) -> Option<Value>,
    page_len: usize,
) -> Option<Url> {
    match pagination {
        Pagination::None => None,
        Pagination::NextLink { pointer } => {
            let link = value_at(pointer)?;
            let link = link.as_str()?;
            (!link.is_empty())
                .then(|| current.join(link).ok())
                .flatten()
        }
        Pagination::LinkHeader => {
            let header = headers.get(reqwest::header::LINK)?.to_str().ok()?;
            header.split(',').find_map(|part| {
                let (target, params) = part.split_once(';')?;
                let is_next = params.split(';').any(|p| {
                    p.trim()
                        .replace(' ', "")
                        .eq_ignore_ascii_case("rel=\"next\"")
                        || p.trim() == "rel=next"
                });
                let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
                is_next.then(|| current.join(target).ok()).flatten()
            })
        }
        Pagination::Cursor { pointer, param } => {
            let token = value_at(pointer)?;
            let token = match token {
                Value::String(s) if !s.is_empty() => s,
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some(with_param(current, param, &token))
        }
        Pagination::Offset {
            offset_param,
            limit,
            ..
        } => {
            if (page_len as u64) < *limit {
                return None;
            }
            let offset: u64 = current
                .query_pairs()
                .find(|(k, _)| k == offset_param.as_str())
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            // The offset is read back from the URL: at `u64::MAX` the sum overflowed.
            let next = offset.checked_add(*limit)?;
            Some(with_param(current, offset_param, &next.to_string()))
        }
    }
}

/// The newest incremental value, and the values passed over as implausible.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Newest {
    /// The newest value among the records and the old cursor (none without either).
    pub(crate) cursor: Option<Cursor>,
    /// Values that read as timestamps later than `latest`: never the cursor.
    pub(crate) ignored: Vec<String>,
}

/// The newest value of the incremental field among `records` and `old`: numbers compare
/// as numbers, other values as text. A value that reads as a timestamp
/// ([`crate::time::timestamp`]) later than `latest` is not taken: one far-future value
/// would otherwise skip every later record.
pub(crate) fn newest_cursor(
    inc: Option<&Incremental>,
    records: &[Record],
    old: Option<&Cursor>,
    latest: SystemTime,
) -> Newest {
    let mut out = Newest::default();
    let Some(field) = inc.and_then(|inc| pointer_tokens(&inc.field)) else {
        return out;
    };
    let mut newest: Option<String> = old.map(|c| c.0.clone());
    for r in records {
        let Some(v) = r.field(&field) else {
            continue;
        };
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if crate::time::timestamp(&v).is_some_and(|t| t > latest) {
            out.ignored.push(v);
            continue;
        }
        let newer = match &newest {
            None => true,
            Some(cur) => match (v.parse::<f64>(), cur.parse::<f64>()) {
                (Ok(a), Ok(b)) => a > b,
                _ => v > *cur,
            },
        };
        if newer {
            newest = Some(v);
        }
    }
    out.cursor = newest.map(Cursor);
    out
}

fn with_param(url: &Url, param: &str, value: &str) -> Url {
    let mut next = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != param)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(param, value);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    /// The values of a JSON body, by pointer.
    fn values(json: &[u8]) -> impl Fn(&str) -> Option<Value> + '_ {
        move |p| stream_contracts::pointer::find::<Value, _>(json, &pointer_tokens(p)?)
    }

    const NONE: &dyn Fn(&str) -> Option<Value> = &|_| None;

    #[test]
    fn link_header_and_offsets() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<http://h/x?page=1>; rel=\"prev\", </x?page=3>; rel=\"next\"",
            ),
        );
        let cur = Url::parse("http://h/x?page=2").unwrap();
        assert_eq!(
            next_url(&Pagination::LinkHeader, &cur, &h, NONE, 10)
                .unwrap()
                .as_str(),
            "http://h/x?page=3"
        );
        let offset = Pagination::Offset {
            offset_param: "o".into(),
            limit_param: "l".into(),
            limit: 2,
        };
        let spec = HttpSpec {
            pagination: offset.clone(),
            ..HttpSpec::get("http://h/x")
        };
        let first = first_url(&spec, "t", None).unwrap();
        assert_eq!(first.as_str(), "http://h/x?o=0&l=2");
        assert_eq!(
            next_url(&offset, &first, &h, NONE, 2).unwrap().as_str(),
            "http://h/x?l=2&o=2"
        );
        assert!(
            next_url(&offset, &first, &h, NONE, 1).is_none(),
            "a short page is the last"
        );
    }

    #[test]
    fn next_links_and_cursor_tokens_from_the_body() {
        let cur = Url::parse("http://h/api/items?limit=5").unwrap();
        let none = HeaderMap::new();
        let link = Pagination::NextLink {
            pointer: "/links/next".into(),
        };
        let body = json!({"links": {"next": "/api/items?page=2"}}).to_string();
        assert_eq!(
            next_url(&link, &cur, &none, &values(body.as_bytes()), 5)
                .unwrap()
                .as_str(),
            "http://h/api/items?page=2"
        );
        let last = json!({"links": {"next": ""}}).to_string();
        assert!(next_url(&link, &cur, &none, &values(last.as_bytes()), 5).is_none());
        let cursor = Pagination::Cursor {
            pointer: "/meta/next".into(),
            param: "after".into(),
        };
        assert_eq!(
            next_url(
                &cursor,
                &cur,
                &none,
                &values(json!({"meta": {"next": 17}}).to_string().as_bytes()),
                5
            )
            .unwrap()
            .as_str(),
            "http://h/api/items?limit=5&after=17"
        );
        assert!(next_url(&cursor, &cur, &none, &values(br#"{"meta": {}}"#), 5).is_none());
    }

    #[test]
    fn first_url_carries_the_cursor_and_the_newest_value_wins() {
        let inc = Incremental {
            field: "/t".into(),
            param: "since".into(),
            initial: Some("0".into()),
        };
        let spec = HttpSpec {
            incremental: Some(inc.clone()),
            ..HttpSpec::get("http://h/q?x=1")
        };
        assert_eq!(
            first_url(&spec, "t", None).unwrap().as_str(),
            "http://h/q?x=1&since=0"
        );
        let c = Cursor("9".into());
        assert_eq!(
            first_url(&spec, "t", Some(&c)).unwrap().as_str(),
            "http://h/q?x=1&since=9"
        );
        // Numbers compare as numbers (10 > 9), strings as strings; others are skipped.
        let records = [
            json!({"t": 10}),
            json!({"t": "8"}),
            json!({"t": null}),
            json!({}),
        ]
        .map(Record::from);
        let now = SystemTime::now();
        assert_eq!(
            newest_cursor(Some(&inc), &records, Some(&c), now).cursor,
            Some(Cursor("10".into()))
        );
        assert_eq!(
            newest_cursor(None, &records, Some(&c), now),
            Newest::default()
        );
        // A timestamp past `latest` is passed over, whatever else the page holds.
        let dated = [
            json!({"t": "2026-03-01T00:00:00Z"}),
            json!({"t": "2999-12-31T00:00:00Z"}),
            json!({"t": "2026-02-01T00:00:00Z"}),
        ]
        .map(Record::from);
        let latest = crate::time::timestamp("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(
            newest_cursor(Some(&inc), &dated, None, latest),
            Newest {
                cursor: Some(Cursor("2026-03-01T00:00:00Z".into())),
                ignored: vec!["2999-12-31T00:00:00Z".into()],
            }
        );
        let bad = HttpSpec::get("not a url");
        assert!(matches!(
            first_url(&bad, "src", None),
            Err(crate::Error::Config { path, .. }) if path == "sources.src.custom_params.url"
        ));
    }

    /// Fuzz target: any `Link` header, next-link text and current URL — no panic; a
    /// well-formed `rel="next"` among any other links is found and resolved against
    /// the current page.
    #[test]
    fn link_headers_and_next_links_never_panic() {
        use proptest::prelude::*;
        // Other links and junk: anything but a comma and the letter `n` (so never a
        // second `rel="next"`).
        let junk = proptest::collection::vec("[<>;=\"a-mo-z:/?&. \\[\\]]{0,24}", 0..4);
        let target = "[a-z/?=&.]{0,12}";
        let current = prop_oneof![
            Just("http://h/x?page=2".to_owned()),
            "[a-z0-9]{1,6}"
                .prop_map(|q| format!("https://api.example:8443/v1/{q}?offset={}", u64::MAX)),
        ];
        let next_link = "[a-z:/?#@%.\\ \\[\\]]{0,20}";
        crate::fuzz::run(
            "paging/link-header-and-next-link",
            2_000,
            (
                junk,
                target,
                any::<prop::sample::Index>(),
                current,
                next_link,
            ),
            |(mut parts, target, at, current, link)| {
                let current = Url::parse(&current).expect("a generated URL");
                let mut h = HeaderMap::new();
                // Junk alone: no panic, and no next page.
                if let Ok(v) = HeaderValue::from_str(&parts.join(", ")) {
                    h.insert(reqwest::header::LINK, v);
                    let found = next_url(&Pagination::LinkHeader, &current, &h, NONE, 1);
                    prop_assert_eq!(found, None);
                }
                parts.insert(
                    at.index(parts.len() + 1),
                    format!("<{target}>; rel=\"next\""),
                );
                let header = parts.join(", ");
                h.insert(
                    reqwest::header::LINK,
                    HeaderValue::from_str(&header).unwrap(),
                );
                let found = next_url(&Pagination::LinkHeader, &current, &h, NONE, 1);
                prop_assert_eq!(found, current.join(&target).ok(), "{}", header);

                let body = json!({ "next": link }).to_string();
                let next = next_url(
                    &Pagination::NextLink {
                        pointer: "/next".into(),
                    },
                    &current,
                    &h,
                    &values(body.as_bytes()),
                    1,
                );
                prop_assert_eq!(
                    next,
                    (!link.is_empty())
                        .then(|| current.join(&link).ok())
                        .flatten()
                );
                // The offset is read back from the URL, here at its largest.
                let offset = Pagination::Offset {
                    offset_param: "offset".into(),
                    limit_param: "limit".into(),
                    limit: 10,
                };
                let _ = next_url(&offset, &current, &h, NONE, 10);
                Ok(())
            },
        );
    }

    /// Fuzz target: any text at all as a `Link` header or a next link, against any
    /// current page: no panic, and whatever is found is a URL reached from the page.
    #[test]
    fn arbitrary_link_headers_and_next_links_never_panic() {
        use proptest::prelude::*;
        crate::fuzz::run(
            "paging/arbitrary-link-text",
            2_000,
            (any::<String>(), any::<String>(), "[a-z]{1,8}"),
            |(header, link, host)| {
                let current = Url::parse(&format!("https://{host}.example/a/b?x=1")).unwrap();
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&header) {
                    h.insert(reqwest::header::LINK, v);
                }
                if let Some(next) = next_url(&Pagination::LinkHeader, &current, &h, NONE, 1) {
                    let lower = header.to_ascii_lowercase();
                    prop_assert!(lower.contains("next"), "{} from {:?}", next, header);
                }
                let body = json!({ "next": link }).to_string();
                let _ = next_url(
                    &Pagination::NextLink {
                        pointer: "/next".into(),
                    },
                    &current,
                    &h,
                    &values(body.as_bytes()),
                    1,
                );
                Ok(())
            },
        );
    }
}
