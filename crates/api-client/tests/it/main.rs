//! Integration tests of api-client against real HTTP servers on 127.0.0.1 (wiremock),
//! serving fixtures in each upstream's real shape. One binary.

mod auth;
mod body;
mod connectors;
mod fetch_state;
mod guards;
mod http;
mod limits;
mod noaa;
mod outbound;
mod purpleair;
mod reference;
mod schemas;
mod secrets;

use std::time::Duration;

use api_client::{ClientOptions, HttpApiClient, HttpSpec};

pub(crate) fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).expect("fixture exists")
}

pub(crate) fn opts() -> ClientOptions {
    ClientOptions {
        source_id: "test".into(),
        rate_limit_per_minute: 60_000,
        timeout: Duration::from_secs(5),
        cache_ttl: Duration::ZERO,
        allowed_hosts: Vec::new(),
        admin_address: None,
        limits: Default::default(),
    }
}

pub(crate) fn client(spec: HttpSpec) -> HttpApiClient {
    HttpApiClient::new(spec, opts()).expect("valid spec")
}

/// Fast retries for tests.
pub(crate) fn fast(mut spec: HttpSpec) -> HttpSpec {
    spec.retry_base_seconds = 0.01;
    spec
}
