//! The record path used on its own, without the stream manager: components built by
//! hand, a producer and stores of the test's own.

mod standalone;
