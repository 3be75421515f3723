//! A bounded batch of log lines and the thread that writes it out. A line is appended under
//! a short lock (no system call, no wake-up); the writer thread wakes when the batch passes
//! [`WAKE_BYTES`] or every [`FLUSH_EVERY`], swaps the batch for an empty one and writes it
//! with one `write_all`. So the cost per line is a copy, and a busy sidecar makes a few
//! hundred writes a second instead of one per request. A slow or blocked stderr only fills
//! the batch: past its bound lines are dropped and counted, requests never wait.
//!
//! std's `Mutex` on purpose (the project bans it for async code): tracing calls writers
//! synchronously, the lock is held for one copy of one line and never across an await or
//! any I/O, and the writer thread holds it only to swap buffers. (The tests' sleeps run
//! on plain threads.)
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Wake the writer early once this much is waiting.
const WAKE_BYTES: usize = 64 << 10;
/// A line waits at most about this long before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

pub struct Batch {
    state: Mutex<State>,
    wake: Condvar,
    limit: usize,
    dropped: AtomicU64,
}

struct State {
    lines: Vec<u8>,
    stopping: bool,
}

/// One log event's writer: tracing formats a whole line, then writes it here once.
pub struct LineWriter<'a>(&'a Batch);

impl Batch {
    /// A batch holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Batch {
            state: Mutex::new(State {
                lines: Vec::with_capacity(WAKE_BYTES * 2),
                stopping: false,
            }),
            wake: Condvar::new(),
            limit,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn dropped_lines(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only bytes behind: keep using them.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Append one line whole, or drop it whole when the batch is full.
    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.lines.len() + line.len() > self.limit {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = state.lines.len();
        state.lines.extend_from_slice(line);
        let crossed = before < WAKE_BYTES && state.lines.len() >= WAKE_BYTES;
        drop(state);
        if crossed {
            self.wake.notify_one();
        }
    }

    /// Wait until there is something to write (or `FLUSH_EVERY` passed), then take it,
    /// leaving `spare`'s allocation in its place. `None` once stopping and empty.
    fn take(&self, spare: Vec<u8>) -> Option<Vec<u8>> {
        let mut state = self.lock();
        if state.lines.len() < WAKE_BYTES && !state.stopping {
            state = self
                .wake
                .wait_timeout(state, FLUSH_EVERY)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        if state.lines.is_empty() && state.stopping {
            return None;
        }
        Some(std::mem::replace(&mut state.lines, spare))
    }
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the subscriber writes through: the shared batch.
#[derive(Clone)]
pub struct Writers(pub Arc<Batch>);

impl<'a> MakeWriter<'a> for Writers {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}

/// The writer thread; [`Flusher::stop`] writes what is left and joins it.
pub struct Flusher {
    batch: Arc<Batch>,
    thread: JoinHandle<()>,
}

impl Flusher {
    /// `None` when the thread cannot be started: then lines pile up to the bound and are
    /// counted as dropped, which `tollgate_log_lines_dropped_total` shows.
    pub fn start<W: Write + Send + 'static>(batch: Arc<Batch>, mut out: W) -> Option<Flusher> {
        let worker = batch.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-log".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(WAKE_BYTES * 2);
                while let Some(mut lines) = worker.take(spare) {
                    if !lines.is_empty() {
                        // Nowhere to report a failing stderr; the lines are lost either way.
                        let _ = out.write_all(&lines).and_then(|()| out.flush());
                        lines.clear();
                    }
                    // Keep a normal-sized buffer; give back one a burst grew.
                    if lines.capacity() > WAKE_BYTES * 8 {
                        lines = Vec::with_capacity(WAKE_BYTES * 2);
                    }
                    spare = lines;
                }
            })
            .ok()?;
        Some(Flusher { batch, thread })
    }

    pub fn stop(self) {
        self.batch.lock().stopping = true;
        self.batch.wake.notify_one();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_and_in_order_and_stop_writes_the_rest() {
        let batch = Arc::new(Batch::new(1 << 20));
        let sink = Sink::default();
        let flusher = Flusher::start(batch.clone(), sink.clone()).unwrap();
        for i in 0..10_000 {
            Writers(batch.clone())
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        flusher.stop();
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(lines.iter().enumerate().all(|(i, l)| *l == format!("line {i}")));
        assert_eq!(batch.dropped_lines(), 0);
    }

    #[test]
    fn a_line_waits_at_most_about_the_flush_interval() {
        let batch = Arc::new(Batch::new(1 << 20));
        let sink = Sink::default();
        let flusher = Flusher::start(batch.clone(), sink.clone()).unwrap();
        Writers(batch.clone()).make_writer().write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        flusher.stop();
    }

    /// A writer that blocks until released: stderr piped to a reader that stopped reading.
    struct Stuck(Arc<(Mutex<bool>, Condvar)>, Sink);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_blocked_stderr_drops_and_counts_lines_without_blocking_the_caller() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let batch = Arc::new(Batch::new(1000));
        let flusher = Flusher::start(batch.clone(), Stuck(gate.clone(), sink.clone())).unwrap();
        let mut line = [b'x'; 100];
        line[99] = b'\n';
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            Writers(batch.clone()).make_writer().write_all(&line).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the caller waited");
        assert!(batch.dropped_lines() > 0);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        flusher.stop();
        let written = sink.0.lock().unwrap().len();
        assert!(written <= 2000 && written > 0, "{written} bytes");
        assert_eq!(written % 100, 0, "only whole lines: {written} bytes");
    }
}
