//! Integration tests of the topic resolver, compiled as one binary.

mod resolve;
mod updates;

use stream_config::{Format, Loader, StreamConfig};

pub(crate) fn config(yaml: &str) -> StreamConfig {
    Loader::new()
        .load_str(yaml, Format::Yaml, "<test>")
        .expect("test config is valid")
}
