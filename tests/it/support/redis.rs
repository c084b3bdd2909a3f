//! Real `redis-server` processes for the tests: a single node (plain or TLS) and a
//! three-node cluster, on free ports, nothing kept on disk, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, keys_dir};

/// A real `redis-server` on a free port, nothing kept on disk; killed on drop.
pub struct RedisServer {
    pub port: u16,
    /// TLS only (`rediss://`), with the test CA's localhost certificate.
    tls: bool,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        RedisServer::launch(false).await
    }

    pub async fn start_tls() -> RedisServer {
        RedisServer::launch(true).await
    }

    async fn launch(tls: bool) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            tls,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn tls_args(&self) -> Vec<String> {
        if !self.tls {
            return vec![];
        }
        let k = |f: &str| keys_dir().join(f).to_string_lossy().to_string();
        vec!["--tls".into(), "--cacert".into(), k("ca_cert.pem")]
    }

    /// Starts it again (after `kill`) on the same port, empty.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let k = |f: &str| keys_dir().join(f).to_string_lossy().to_string();
        let listen: Vec<String> = if self.tls {
            [
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                &k("tls_cert.pem"),
                "--tls-key-file",
                &k("tls_key.pem"),
                "--tls-ca-cert-file",
                &k("ca_cert.pem"),
                "--tls-auth-clients",
                "no",
            ]
            .map(String::from)
            .to_vec()
        } else {
            vec!["--port".into(), port.clone()]
        };
        let child = Command::new("redis-server")
            .args(&listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        for _ in 0..500 {
            if self.cli(&["PING"]) == "PONG" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("redis-server did not start on {}", self.port);
    }

    /// SIGKILL: gone at once, with everything it held.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: still listening, answering nothing (a Redis that hangs, as under a long fork
    /// or a network partition), until `resume`.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGSTOP) };
        }
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        if let Some(c) = &self.child {
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGCONT) };
        }
    }

    /// Runs one command through redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(self.tls_args())
            .args(args)
            .output()
            .expect("redis-cli is installed with redis-server");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node Redis Cluster (no replicas) on free ports; killed on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
}

pub struct RedisNode {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisCluster {
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            nodes.push(RedisNode {
                port,
                _dir: dir,
                child,
            });
        }
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            wait_for_pong(node.port).await;
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for _ in 0..500 {
            let ok = cluster.nodes.iter().all(|n| {
                let info = Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok")
            });
            if ok {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the cluster did not become ok");
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }
}

async fn wait_for_pong(port: u16) {
    for _ in 0..500 {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "PONG" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server did not start on {port}");
}
