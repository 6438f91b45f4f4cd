//! Topic administration: create the configured topics that are missing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use stream_config::{Compression, TopicConfig};

use crate::Error;

/// What happened to one configured topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// It was there already.
    Existed,
    /// It was created.
    Created,
    /// The broker refused, with its reason.
    Refused(String),
}

/// Creates every topic of `topics` missing from the cluster at `config`'s brokers.
/// Refusals are reported per topic (the caller decides whether that is fatal), also
/// when the creation request fails as a whole: each topic it was to create is then
/// `Refused` with that reason. An error means the cluster's metadata could not be read.
///
/// librdkafka's mock cluster does not implement CreateTopics: against it, missing
/// topics are refused after `timeout` (the embedded server creates its topics through
/// the mock's own API instead).
pub async fn ensure_topics(
    config: &ClientConfig,
    topics: &BTreeMap<String, TopicConfig>,
    default_compression: Compression,
    timeout: Duration,
) -> Result<BTreeMap<String, TopicOutcome>, Error> {
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    if crate::security::uses_oauthbearer(config) {
        // rdkafka 0.38's admin client polls only its own queue, so librdkafka's
        // OAUTHBEARER token request would never be answered and every call would time out.
        return Err(Error::Kafka {
            what: "topic creation",
            source: "with SASL OAUTHBEARER the configured topics are not created (rdkafka's admin client cannot answer token requests): create them beforehand".into(),
        });
    }
    let admin: Arc<AdminClient<DefaultClientContext>> =
        Arc::new(config.create().map_err(crate::security::config_error)?);
    let for_metadata = admin.clone();
    let existing: Vec<String> = tokio::task::spawn_blocking(move || {
        for_metadata
            .inner()
            .fetch_metadata(None, timeout)
            .map(|md| md.topics().iter().map(|t| t.name().to_owned()).collect())
    })
    .await
    .map_err(|e| Error::kafka("reading cluster metadata", e))?
    .map_err(|e| Error::kafka("reading cluster metadata", e))?;

    let mut outcomes = BTreeMap::new();
    let mut specs = Vec::new();
    let mut settings: Vec<(String, String, String, Option<&'static str>)> = Vec::new();
    for (name, t) in topics {
        if existing.iter().any(|e| e == name) {
            outcomes.insert(name.clone(), TopicOutcome::Existed);
            continue;
        }
        let compression = t.compression_type.unwrap_or(default_compression);
        settings.push((
            name.clone(),
            t.retention_ms.to_string(),
            compression.as_str().to_owned(),
            t.cleanup_policy.map(|p| p.as_str()),
        ));
        specs.push((
            name.clone(),
            t.partitions as i32,
            t.replication_factor as i32,
        ));
    }
    if specs.is_empty() {
        return Ok(outcomes);
    }
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&settings)
        .map(
            |((name, partitions, rf), (_, retention, compression, cleanup))| {
                let compression = if compression == "none" {
                    "uncompressed"
                } else {
                    compression.as_str()
                };
                let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(*rf))
                    .set("retention.ms", retention)
                    .set("compression.type", compression);
                match cleanup {
                    Some(policy) => topic.set("cleanup.policy", policy),
                    None => topic,
                }
            },
        )
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = match admin.create_topics(new_topics.iter(), &options).await {
        Ok(results) => results,
        Err(e) => {
            // The request as a whole failed (not allowed, not supported, timed out):
            // every topic it was to create is still missing, for that reason.
            let why = format!("creating topics failed: {e}");
            tracing::error!(error = %e, topics = specs.len(), "the broker did not create the missing topics");
            for (name, ..) in &specs {
                outcomes.insert(name.clone(), TopicOutcome::Refused(why.clone()));
            }
            return Ok(outcomes);
        }
    };
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, "created topic");
                outcomes.insert(name, TopicOutcome::Created);
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                outcomes.insert(name, TopicOutcome::Existed);
            }
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "broker refused to create topic");
                outcomes.insert(name, TopicOutcome::Refused(code.to_string()));
            }
        }
    }
    Ok(outcomes)
}
