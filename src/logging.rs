//! Log output: JSON (see [`json_line`]) or human-readable text on stderr, level from
//! `--log-level` or `RUST_LOG`.
//! Lines are appended to a bounded in-memory batch that a writer thread empties with one
//! `write` per batch (see [`batch`]), so a request never waits for stderr and never wakes
//! another thread per line; when the batch is full a line is dropped and counted
//! (`tollgate_log_lines_dropped_total`), never blocking.

mod batch;
mod json_line;

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use tracing_subscriber::EnvFilter;

use self::batch::Batch;

/// Bytes waiting for the writer thread at most; past it lines are dropped and counted.
const BATCH_BYTES: usize = 4 << 20;

static BATCH: OnceLock<Arc<Batch>> = OnceLock::new();

/// Keeps the writer thread; dropping it writes what is waiting and stops the thread.
pub struct LogGuard(Option<batch::Flusher>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(flusher) = self.0.take() {
            flusher.stop();
        }
    }
}

/// Log lines dropped because the batch to stderr was full.
pub fn dropped_lines() -> u64 {
    BATCH.get().map_or(0, |b| b.dropped_lines())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Install the global subscriber. `format` defaults to text on a terminal, JSON otherwise.
/// Keep the guard until the process ends.
pub fn init(format: Option<LogFormat>, level: Option<&str>) -> LogGuard {
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let batch = Arc::new(Batch::new(BATCH_BYTES));
    let flusher = batch::Flusher::start(batch.clone(), std::io::stderr());
    let _ = BATCH.set(batch.clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(batch::Writers(batch));
    let _ = match format {
        LogFormat::Json => builder.event_format(json_line::JsonLine).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard(flusher)
}
