//! Integration tests of the topic resolver, compiled as one binary.

mod resolve;
mod updates;

use std::collections::BTreeMap;

use serde::Deserialize;
use topic_resolver::{PartitionKey, Rules};

/// The routing of a test document: `routing:` (the rules) and `sources:` (each with its
/// type, optional `topic` and `partition_key`), as a stream manager would hand them over.
pub(crate) fn config(yaml: &str) -> Rules {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        routing: Rules,
        #[serde(default)]
        sources: BTreeMap<String, Source>,
    }
    #[derive(Deserialize)]
    struct Source {
        source_type: String,
        topic: Option<String>,
        partition_key: Option<Key>,
    }
    /// The manager's config shape: exactly one of `pointer` or `geo`.
    #[derive(Deserialize)]
    struct Key {
        pointer: Option<String>,
        geo: Option<Geo>,
    }
    #[derive(Deserialize)]
    struct Geo {
        lat: String,
        lon: String,
        precision: u8,
    }
    let doc: Doc = serde_yaml::from_str(yaml).expect("test routing is valid YAML");
    let mut rules = doc.routing;
    for (id, s) in doc.sources {
        if let Some(topic) = s.topic {
            rules.custom_mappings.entry(id.clone()).or_insert(topic);
        }
        if let Some(key) = s.partition_key {
            let key = match (key.pointer, key.geo) {
                (Some(p), None) => PartitionKey::Pointer(p),
                (None, Some(g)) => PartitionKey::Geo {
                    lat: g.lat,
                    lon: g.lon,
                    precision: g.precision,
                },
                _ => panic!("test key of {id}: give exactly one of pointer or geo"),
            };
            rules.keys.insert(id.clone(), key);
        }
        rules.source_types.insert(id, s.source_type);
    }
    rules
}
