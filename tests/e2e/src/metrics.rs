//! The server's `/metrics` (Prometheus text) parsed for assertions.

/// Prometheus text, parsed into (name, labels, value).
#[derive(Debug, Clone)]
pub struct Metrics(Vec<(String, String, f64)>);

impl Metrics {
    /// Parses the exposition format (comments skipped).
    pub fn parse(text: &str) -> Self {
        let mut out = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            if let Ok(v) = value.parse::<f64>() {
                out.push((name.to_owned(), labels.to_owned(), v));
            }
        }
        Self(out)
    }

    /// The series called `name` with no labels at all (e.g. `queue_size`'s total, which
    /// sits beside its per-priority series), or 0.
    pub fn unlabelled(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, l, _)| n == name && l.is_empty())
            .map_or(0.0, |(_, _, v)| *v)
    }

    /// The sum over series called `name` whose labels include every `k="v"` of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.split(',').any(|p| p == format!("{k}=\"{v}\"")))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}
