//! The log lines of in-process gateways, each gateway's apart: one subscriber for the test
//! process, formatting as the binary does (JSON lines), that files every line under the
//! gateway whose thread wrote it (a gateway's services, and so its threads, carry its label).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

fn buffers() -> &'static Mutex<HashMap<String, Vec<u8>>> {
    static BUFFERS: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    BUFFERS.get_or_init(Mutex::default)
}

/// A label no other gateway of this test process has.
pub fn new_label() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let label = format!("gw{}", NEXT.fetch_add(1, Ordering::Relaxed));
    buffers().lock().unwrap().insert(label.clone(), Vec::new());
    label
}

/// Every line the gateway `label` wrote so far.
pub fn lines_of(label: &str) -> String {
    let buffers = buffers().lock().unwrap();
    String::from_utf8_lossy(buffers.get(label).map_or(&[][..], |b| b)).into_owned()
}

/// Installs the subscriber (once per test process).
pub fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(ByThread)
            .json()
            .flatten_event(true)
            .with_filter(tracing_subscriber::EnvFilter::new("info"));
        // As the binary: the audit trail's layer beside the lines.
        let _ = tracing_subscriber::registry()
            .with(lines)
            .with(portcullis::logs::audit_layer())
            .try_init();
    });
}

struct ByThread;

/// One event's line, filed under the current thread's gateway.
struct Line;

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let thread = std::thread::current();
        // Pingora names a service's threads after it ("BG " first for background ones).
        let name = thread.name().unwrap_or("");
        let label = name
            .trim_start_matches("BG ")
            .split('-')
            .next()
            .unwrap_or("");
        if let Some(lines) = buffers().lock().unwrap().get_mut(label) {
            lines.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ByThread {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line
    }
}
