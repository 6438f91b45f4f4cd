//! Data contracts as the manager keeps them: compiled from the configuration at start
//! and at each reload, and checked again when dead letters are replayed. Records are
//! checked at enqueue by the record path (`record_path`'s contracts).

use producer::DeadLetter;
use stream_config::SchemaMode;

use crate::Result;

/// The names `schema: builtin:NAME` may use (the connectors' shipped schemas).
pub fn builtin_schemas() -> Vec<String> {
    api_client::builtin_schemas()
        .map(|(n, _)| n.to_owned())
        .collect()
}

/// Compiles `cfg`'s contracts (see `api_client::Contracts::compile`).
pub(crate) fn compile(
    cfg: &stream_config::StreamConfig,
    roots: Option<&[std::path::PathBuf]>,
) -> Result<api_client::Contracts> {
    api_client::Contracts::compile(cfg, roots).map_err(crate::component("contracts"))
}

impl crate::StreamManager {
    /// The letters a replay may send: each is checked against the contracts in force
    /// (enforced sources only) for the topic it will go to; one that still fails keeps
    /// its row (`permanent_failure`, with the new details) and counts as failed.
    pub(crate) async fn recheck_for_replay(
        &self,
        letters: &[DeadLetter],
        topic: Option<&str>,
    ) -> Result<(Vec<DeadLetter>, usize)> {
        let contracts = self.shared.contracts();
        if contracts.is_empty() {
            return Ok((letters.to_vec(), 0));
        }
        let (mut pass, mut refused) = (Vec::with_capacity(letters.len()), 0);
        for letter in letters {
            let to = topic.unwrap_or(&letter.source_topic);
            let source = letter.source_id.as_str();
            let violation = if contracts.mode(source) == SchemaMode::Observe {
                None
            } else {
                match record_path::stored_record(&letter.payload) {
                    Some(v) => contracts.check_value(source, to, &v),
                    None => contracts.check_text(source, to, &letter.payload),
                }
            };
            match violation {
                None => pass.push(letter.clone()),
                Some(v) => {
                    refused += 1;
                    let store = self.shared.delivery.store();
                    let details = format!("replay refused, still invalid: {}", v.details);
                    store.retry_failed(letter.id, &details, None).await?;
                }
            }
        }
        Ok((pass, refused))
    }
}
