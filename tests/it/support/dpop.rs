//! A DPoP client nobody here wrote: the npm registry's `dpop` package
//! (`tests/oidc-provider/dpop-client.mjs`, installed by `examples/test.sh`), asked for one
//! proof at a time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde_json::{json, Value};

pub struct DpopClient {
    child: Child,
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

/// A proof and the thumbprint of the key that made it.
pub struct Proof {
    pub proof: String,
    pub jkt: String,
}

impl DpopClient {
    /// A client with two key pairs of `alg` (`ES256`, `RS256`, `PS256`...).
    pub fn start(alg: &str) -> DpopClient {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
        let mut child = Command::new("node")
            .arg(dir.join("dpop-client.mjs"))
            .arg(alg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs: `bash examples/test.sh` installs it");
        let io = (
            child.stdin.take().unwrap(),
            BufReader::new(child.stdout.take().unwrap()),
        );
        DpopClient {
            child,
            io: Mutex::new(io),
        }
    }

    /// A proof for `method` on `url`; `token`: the access token it goes with (`ath`);
    /// `other_key`: made by the second key pair.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> Proof {
        self.ask(json!({"htm": method, "htu": url, "ath_of": token, "nonce": nonce}))
    }

    /// As `proof`, by the client's second key.
    pub fn proof_by_other_key(&self, method: &str, url: &str, token: Option<&str>) -> Proof {
        self.ask(json!({"htm": method, "htu": url, "ath_of": token, "key": "other"}))
    }

    fn ask(&self, mut ask: Value) -> Proof {
        ask.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        let mut io = self.io.lock().unwrap();
        writeln!(io.0, "{ask}").unwrap();
        io.0.flush().unwrap();
        let mut line = String::new();
        io.1.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the DPoP client answered {line:?}"));
        Proof {
            proof: v["proof"].as_str().unwrap().to_string(),
            jkt: v["jkt"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for DpopClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
