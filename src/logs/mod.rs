//! Where log lines go: stdout, through a bounded queue that a thread of its own drains, so that
//! a slow or stalled reader (a pipe to a busy journald) never blocks a request (docs/OPERATIONS.md).
//! Lines that do not fit in the queue are dropped and counted
//! (`portcullis_log_lines_dropped_total`).
//!
//! The writer thread wakes at most every few milliseconds and writes everything queued in one
//! go: a line costs the request a copy under an uncontended lock, never a wake-up of another
//! thread (tracing-appender's writer wakes its thread for every line, which on a proxy pinned to
//! one core cost a fifth of its throughput).
//!
//! The thread is started by [`start_queue`] once the gateway runs: `run -d` forks after
//! startup, and a thread started before the fork would not exist in the child. Until then,
//! lines are written to stdout directly (only startup writes them).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

pub use crate::audit::{audit_layer, AuditLayer};

mod access;
pub use access::{write as access, AccessLine, Listener};

/// The log's output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Lines held while stdout is slow, at most, unless `PORTCULLIS_LOG_QUEUE` says otherwise.
const QUEUE_LINES: usize = 8192;
pub(crate) const QUEUE_ENV: &str = "PORTCULLIS_LOG_QUEUE";
/// How long lines may wait for the writer: they are written in batches.
const BATCH_EVERY: Duration = Duration::from_millis(10);

static QUEUE: OnceLock<Queue> = OnceLock::new();

struct Queue {
    pending: Mutex<Pending>,
    /// Signalled when a line arrives in an empty queue and the writer is idle.
    arrived: Condvar,
    max_lines: usize,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: usize,
    /// The writer is waiting for a first line (not asleep between batches).
    writer_idle: bool,
}

impl Queue {
    fn push(&self, line: &[u8]) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.lines >= self.max_lines {
            drop(p);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        p.bytes.extend_from_slice(line);
        p.lines += 1;
        if p.writer_idle {
            p.writer_idle = false;
            self.arrived.notify_one();
        }
    }

    /// Takes what is queued, waiting for a first line when nothing is.
    fn take(&self, spare: Vec<u8>) -> Vec<u8> {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        while p.lines == 0 {
            p.writer_idle = true;
            p = self.arrived.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        p.lines = 0;
        std::mem::replace(&mut p.bytes, spare)
    }

    /// Writes out what is queued, on the caller's thread.
    fn flush_now(&self) {
        let bytes = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            p.lines = 0;
            std::mem::take(&mut p.bytes)
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&bytes);
        let _ = out.flush();
    }
}

fn writer_thread(queue: &'static Queue) {
    let mut spare = Vec::new();
    loop {
        let mut batch = queue.take(spare);
        // A stalled reader blocks this thread only; requests keep queueing (or dropping).
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&batch);
        let _ = out.flush();
        drop(out);
        batch.clear();
        spare = batch;
        std::thread::sleep(BATCH_EVERY);
    }
}

/// Queues one whole line (stdout directly until the queue is started).
fn write_line(line: &[u8]) {
    match QUEUE.get() {
        Some(queue) => queue.push(line),
        None => {
            let _ = std::io::stdout().lock().write_all(line);
        }
    }
}

/// The subscriber's writer for one event: the queue once started, stdout before.
struct Output;

/// One event's line (the formatter writes it whole).
struct Line;

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Output {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line
    }
}

/// Installs the global subscriber: `PORTCULLIS_LOG` as a `tracing` filter (default `info`),
/// JSON lines or text. Pingora's `log` records come through the same subscriber.
pub fn init(format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(Output);
    let lines = match format {
        LogFormat::Json => lines.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Text => lines.with_filter(filter).boxed(),
    };
    // The audit trail's layer sees every audit event, whatever `PORTCULLIS_LOG` keeps.
    tracing_subscriber::registry()
        .with(lines)
        .with(audit_layer())
        .init();
    // The access line is written beside the subscriber, in its format, when its filter keeps it.
    let kept = tracing::enabled!(target: "access", tracing::Level::INFO);
    access::enable(kept.then_some(format));
}

/// Starts the writer thread; from now on no log line is written on the caller's thread.
/// Idempotent. Call it in the process that serves (after any fork).
pub(crate) fn start_queue() {
    let max_lines = std::env::var(QUEUE_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(QUEUE_LINES);
    let queue = Queue {
        pending: Mutex::default(),
        arrived: Condvar::new(),
        max_lines,
        dropped: AtomicU64::new(0),
    };
    if QUEUE.set(queue).is_err() {
        return;
    }
    let queue = QUEUE.get().expect("just set");
    std::thread::Builder::new()
        .name("portcullis-log".into())
        .spawn(move || writer_thread(queue))
        .expect("the OS can start a thread");
    // SAFETY: registers a plain `extern "C"` function with no arguments.
    unsafe {
        libc::atexit(flush_at_exit);
    }
}

/// `std::process::exit` runs this: what is queued is written before the process ends, unless
/// stdout is stalled (then the exit waits a second, not for ever).
extern "C" fn flush_at_exit() {
    let Some(queue) = QUEUE.get() else { return };
    let (done, finished) = std::sync::mpsc::channel();
    let flusher = std::thread::Builder::new().spawn(move || {
        queue.flush_now();
        let _ = done.send(());
    });
    if flusher.is_ok() {
        let _ = finished.recv_timeout(Duration::from_secs(1));
    }
}

/// Lines dropped because the queue was full.
pub(crate) fn dropped_lines() -> u64 {
    QUEUE.get().map_or(0, |q| q.dropped.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = Queue {
            pending: Mutex::default(),
            arrived: Condvar::new(),
            max_lines: 2,
            dropped: AtomicU64::new(0),
        };
        for line in [b"a\n", b"b\n", b"c\n"] {
            q.push(line);
        }
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(q.take(Vec::new()), b"a\nb\n");
        q.push(b"d\n");
        assert_eq!(q.take(Vec::new()), b"d\n");
    }
}
