//! Integration tests of the stream-server binary, run as a real process.

mod api;
mod browser;
mod cli;
mod console;
mod process;
mod summary;
mod topics;
mod ui;
mod ui_api;
