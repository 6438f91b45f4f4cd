//! Integration tests of the stream-server binary, run as a real process.

mod api;
mod cli;
mod console;
mod summary;
mod topics;
mod ui_api;
