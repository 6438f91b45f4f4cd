//! The embedded broker: librdkafka's in-process Kafka-protocol cluster (`MockCluster`),
//! for running the service with no external Kafka. Any Kafka client can connect to its
//! bootstrap address on 127.0.0.1.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

use crate::Error;

/// A running in-process broker. It lives on its own thread (the mock cluster handle is
/// not `Send`); dropping this value shuts it down.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster and creates `topics` (name, partitions) on it. The mock
    /// has no CreateTopics API, so topics are created here, through its own interface.
    pub fn start(topics: &[(String, i32)]) -> Result<Self, Error> {
        let topics = topics.to_vec();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                for (name, partitions) in &topics {
                    if let Err(e) = cluster.create_topic(name, (*partitions).max(1), 1) {
                        let _ = ready_tx.send(Err(format!("topic {name}: {e}")));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Keep the cluster alive until told to stop (or the owner is gone).
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .map_err(|e| Error::Embedded(format!("cannot start its thread: {e}")))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| Error::Embedded("its thread died".into()))?
            .map_err(Error::Embedded)?;
        Ok(Self {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `host:port` to give Kafka clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
