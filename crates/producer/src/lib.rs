//! Reliable Kafka delivery with a dead-letter queue.
