//! A real SMTP server for the mail tests: Python's `aiosmtpd` (`tests/smtp/sink.py`, installed
//! by `examples/test.sh`), on a free port, every accepted message kept as a file.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    _stdin: ChildStdin,
}

impl SmtpSink {
    /// Starts one; `args` are sink.py's options (`--starttls CERT KEY`, `--auth U:P`...).
    pub async fn start(args: &[&str]) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "the SMTP sink did not start ({line:?}): `bash examples/test.sh` installs \
                 Python's aiosmtpd"
            )
        });
        SmtpSink {
            port: started["port"].as_u64().unwrap() as u16,
            dir,
            child,
            _stdin: stdin,
        }
    }

    /// Every message received so far, in order.
    pub fn mails(&self) -> Vec<Value> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (10 s at most) until `n` messages have arrived; all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..1000 {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} mail(s) never arrived: {:?}", self.mails());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token in a mail's body: what follows `token=` in its link, or the line that is one.
pub fn token_in(mail: &Value) -> String {
    let data = mail["data"].as_str().unwrap();
    if let Some(at) = data.find("token=") {
        return data[at + 6..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
    }
    data.lines()
        .map(str::trim)
        .find(|l| l.len() == 43 && !l.contains(' '))
        .expect("a token in the mail")
        .to_string()
}
