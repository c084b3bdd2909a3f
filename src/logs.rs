//! Where log lines go: stdout, through a bounded queue that a thread of its own drains, so that
//! a slow or stalled reader (a pipe to a busy journald) never blocks a request (SPEC section 6).
//! Lines that do not fit in the queue are dropped and counted
//! (`portcullis_log_lines_dropped_total`).
//!
//! The queue's thread is started by [`start_queue`] once the gateway runs: `run -d` forks after
//! startup, and a thread started before the fork would not exist in the child. Until then,
//! lines are written to stdout directly (only startup writes them).

use std::io::{BufWriter, Stdout};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::writer::{EitherWriter, MakeWriter};

use crate::cli::LogFormat;

/// Lines waiting for the writer thread, at most (about 3 MiB of JSON lines), unless
/// `PORTCULLIS_LOG_QUEUE` says otherwise.
const QUEUE_LINES: usize = 8192;
pub const QUEUE_ENV: &str = "PORTCULLIS_LOG_QUEUE";

static QUEUE: OnceLock<NonBlocking> = OnceLock::new();
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();
/// Dropped at exit: the writer thread writes what is queued, then stops.
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// The subscriber's writer: the queue once started, stdout before.
#[derive(Clone, Copy)]
struct Output;

impl<'a> MakeWriter<'a> for Output {
    type Writer = EitherWriter<NonBlocking, Stdout>;

    fn make_writer(&'a self) -> Self::Writer {
        match QUEUE.get() {
            Some(queue) => EitherWriter::A(queue.clone()),
            None => EitherWriter::B(std::io::stdout()),
        }
    }
}

/// Installs the global subscriber: `PORTCULLIS_LOG` as a `tracing` filter (default `info`),
/// JSON lines or text. Pingora's `log` records come through the same subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Output);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Starts the writer thread; from now on no log line is written on the caller's thread.
/// Idempotent. Call it in the process that serves (after any fork).
pub fn start_queue() {
    if QUEUE.get().is_some() {
        return;
    }
    let lines = std::env::var(QUEUE_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(QUEUE_LINES);
    // The thread batches what it finds queued into one write.
    let (queue, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lines)
        .thread_name("portcullis-log")
        .finish(BufWriter::new(std::io::stdout()));
    let _ = DROPPED.set(queue.error_counter());
    if QUEUE.set(queue).is_ok() {
        *GUARD.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
        // SAFETY: registers a plain `extern "C"` function with no arguments.
        unsafe {
            libc::atexit(flush_at_exit);
        }
    }
}

/// `std::process::exit` runs this: what is queued is written before the process ends.
extern "C" fn flush_at_exit() {
    let guard = GUARD.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(guard);
}

/// Lines dropped because the queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}
