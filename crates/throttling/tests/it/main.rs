//! Integration tests of the throttle, compiled as one binary. Time is tokio's, paused.

mod control;
mod enforce;
mod seed;
