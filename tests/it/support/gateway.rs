//! The gateway under test: built in-process from the library on ephemeral ports (most tests),
//! or the real binary as a process (the CLI, signals, `-d`, the log pipe).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis::app::{self, Options, Stop};
use portcullis::clock::Clock;
use tokio::net::TcpStream;

use super::{free_port, keys_dir, logs, now, raw_request, send_raw, Response};

/// A running gateway, stopped on drop.
pub struct Gateway {
    pub addr: SocketAddr,
    /// `{ADMIN}` in the config: the admin listener's address.
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    kind: Kind,
}

enum Kind {
    InProcess {
        stop: Stop,
        thread: Option<std::thread::JoinHandle<()>>,
        clock: Clock,
        /// Its services' (and threads') name: its log lines are told apart by it.
        label: String,
    },
    Process(Child),
}

/// How a gateway is started.
#[derive(Default, Clone, Copy)]
struct How {
    /// A clock the test moves (in-process only).
    frozen: bool,
    /// The real binary, as a process.
    process: bool,
    /// A process whose stdout is a pipe nobody reads, with a log queue of this many lines.
    stalled_queue: Option<usize>,
}

/// The config with `{LISTEN}`, `{ADMIN}`, `{UPSTREAM}` and `{KEYS}` filled in.
fn fill(toml: &str, addr: SocketAddr, admin: SocketAddr, upstream: SocketAddr) -> String {
    toml.replace("{LISTEN}", &addr.to_string())
        .replace("{ADMIN}", &admin.to_string())
        .replace("{UPSTREAM}", &upstream.to_string())
        .replace("{KEYS}", &keys_dir().to_string_lossy())
}

impl Gateway {
    /// Writes `toml` (placeholders filled) and runs the gateway on it in this process,
    /// waiting until it accepts connections.
    pub async fn start(toml: &str, upstream: SocketAddr) -> Gateway {
        Gateway::start_with_files(toml, upstream, &[]).await
    }

    /// As `start`, with more files (such as users.toml) beside gateway.toml.
    pub async fn start_with_files(
        toml: &str,
        upstream: SocketAddr,
        files: &[(&str, &str)],
    ) -> Gateway {
        Gateway::launch(toml, upstream, files, How::default()).await
    }

    /// As `start_with_files`, with the gateway's clock frozen at now: the test moves it with
    /// `advance_clock`, so that expiries are exact and nothing waits.
    pub async fn start_frozen(toml: &str, upstream: SocketAddr, files: &[(&str, &str)]) -> Gateway {
        let how = How {
            frozen: true,
            ..How::default()
        };
        Gateway::launch(toml, upstream, files, how).await
    }

    /// The real binary, as a process: for signals (SIGHUP, SIGTERM) and the CLI.
    pub async fn start_process(
        toml: &str,
        upstream: SocketAddr,
        files: &[(&str, &str)],
    ) -> Gateway {
        let how = How {
            process: true,
            ..How::default()
        };
        Gateway::launch(toml, upstream, files, how).await
    }

    /// As `start_process`, with stdout a pipe nobody reads (a stalled log consumer) and a log
    /// queue of `queue` lines.
    pub async fn start_with_stalled_stdout(
        toml: &str,
        upstream: SocketAddr,
        queue: usize,
    ) -> Gateway {
        let how = How {
            process: true,
            stalled_queue: Some(queue),
            ..How::default()
        };
        Gateway::launch(toml, upstream, &[], how).await
    }

    async fn launch(toml: &str, upstream: SocketAddr, files: &[(&str, &str)], how: How) -> Gateway {
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let path = dir.path().join("gateway.toml");
            std::fs::write(&path, fill(toml, addr, admin, upstream)).unwrap();
            for (name, text) in files {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            let kind = if how.process {
                Kind::Process(spawn(&path, &dir, how.stalled_queue))
            } else {
                in_process(&path, &dir, how.frozen)
            };
            let mut gw = Gateway {
                addr,
                admin,
                dir,
                kind,
            };
            if gw.wait_ready().await {
                return gw;
            }
            // The port was taken between probe and bind: another try on other ports.
            let err = gw.stderr();
            assert!(
                !how.process || err.contains("Address already in use") || err.contains("AddrInUse"),
                "gateway did not start:\n{err}\n{}",
                gw.stdout()
            );
        }
        panic!("gateway did not start after 3 attempts");
    }

    async fn wait_ready(&mut self) -> bool {
        for _ in 0..1000 {
            if let Kind::Process(child) = &mut self.kind {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if TcpStream::connect(self.addr).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        false
    }

    fn child(&self) -> &Child {
        match &self.kind {
            Kind::Process(c) => c,
            Kind::InProcess { .. } => panic!("an in-process gateway has no process of its own"),
        }
    }

    /// Sends SIGHUP: reload the config (a process gateway).
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with a pid this test started and a valid signal number.
        unsafe {
            libc::kill(self.child().id() as libc::pid_t, sig);
        }
    }

    /// Waits (up to 20 s) for the process to exit.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let Kind::Process(child) = &mut self.kind else {
            panic!("an in-process gateway does not exit");
        };
        for _ in 0..2000 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the gateway did not exit");
    }

    /// What the gateway logged so far (stdout of a process; its own lines in-process).
    pub fn stdout(&self) -> String {
        match &self.kind {
            Kind::InProcess { label, .. } => logs::lines_of(label),
            Kind::Process(_) => {
                std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
            }
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits (up to 10 s) until the gateway's output holds `needle` `times` times.
    pub async fn wait_for_log(&self, needle: &str, times: usize) -> String {
        for _ in 0..1000 {
            let out = self.stdout();
            if out.matches(needle).count() >= times {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("`{needle}` x{times} never logged:\n{}", self.stdout());
    }

    /// The log output once every line of the requests answered so far is written: a process
    /// writes through a queue, so the test first sends a request of its own and waits for its
    /// access line (the queue is first in, first out).
    pub async fn settled_stdout(&self) -> String {
        let rid = format!("log-sentinel-{}", uuid::Uuid::new_v4());
        self.get("/log-sentinel", &[("X-Request-Id", &rid)]).await;
        self.wait_for_log(&format!(r#""request_id":"{rid}""#), 1)
            .await
    }

    /// The config file, to be rewritten by reload tests.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// Moves a frozen gateway's clock `secs` on.
    pub fn advance_clock(&self, secs: i64) {
        match &self.kind {
            Kind::InProcess { clock, .. } => clock.advance(secs as u64),
            Kind::Process(_) => panic!("a process gateway runs on the system clock"),
        }
    }

    /// The gateway's idea of now.
    pub fn clock_now(&self) -> i64 {
        match &self.kind {
            Kind::InProcess { clock, .. } => clock.now() as i64,
            Kind::Process(_) => now(),
        }
    }

    /// A request to the admin listener.
    pub async fn admin_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let raw = raw_request("admin.test", method, path, headers, body);
        send_raw(self.admin, raw.as_bytes()).await
    }

    /// POSTs a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Response {
        let mut h = headers.to_vec();
        h.push(("Content-Type", "application/json"));
        self.request("POST", path, &h, &body.to_string()).await
    }

    /// POSTs a form-encoded body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &s.finish(),
        )
        .await
    }

    /// Sends `GET path` with the given extra header lines.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, "").await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let raw = raw_request("gateway.test", method, path, headers, body);
        send_raw(self.addr, raw.as_bytes()).await
    }
}

/// Builds the gateway from the library and runs it on a thread of its own.
fn in_process(path: &std::path::Path, dir: &tempfile::TempDir, frozen: bool) -> Kind {
    logs::capture();
    let label = logs::new_label();
    let loaded = portcullis::config::load(path)
        .unwrap_or_else(|e| panic!("the test's config is refused:\n{e}"));
    let clock = if frozen {
        Clock::manual(now() as u64)
    } else {
        Clock::System
    };
    let options = Options {
        pid_file: dir.path().join("portcullis.pid"),
        upgrade_sock: dir.path().join("upgrade.sock"),
        clock: clock.clone(),
        sighup: false,
        name: label.clone(),
        ..Options::default()
    };
    let built = app::build(loaded.config, options).expect("the gateway builds");
    let stop = Stop::default();
    let handle = stop.clone();
    let thread = std::thread::Builder::new()
        .name(label.clone())
        .spawn(move || built.run_until(handle))
        .unwrap();
    Kind::InProcess {
        stop,
        thread: Some(thread),
        clock,
        label,
    }
}

/// The real binary on `path`, its output in files (or stdout a pipe never read).
fn spawn(path: &std::path::Path, dir: &tempfile::TempDir, stalled_queue: Option<usize>) -> Child {
    let mut cmd = Command::new(super::binary());
    cmd.args(["run", "-c"])
        .arg(path)
        .args(["--pid-file"])
        .arg(dir.path().join("portcullis.pid"))
        .args(["--upgrade-sock"])
        .arg(dir.path().join("upgrade.sock"))
        .env("PORTCULLIS_LOG", "info")
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
    match stalled_queue {
        // The pipe's reading end stays open in `child.stdout`, never read.
        Some(lines) => cmd
            .env("PORTCULLIS_LOG_QUEUE", lines.to_string())
            .stdout(Stdio::piped()),
        None => cmd.stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap()),
    };
    cmd.spawn().unwrap()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Kind::InProcess { stop, thread, .. } => {
                stop.stop();
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}
