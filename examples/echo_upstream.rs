//! An echo upstream: answers every request with the method, path, query and headers it
//! received, as JSON, so a newcomer sees exactly what Portcullis forwards.
//!
//!     cargo run --example echo_upstream -- 127.0.0.1:9001
//!
//! The integration tests run the same server in-process on an ephemeral port.

use std::collections::BTreeMap;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the echo upstream saw of one request.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Echo {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-cased name -> every value, in order: a header sent twice shows twice.
    pub headers: BTreeMap<String, Vec<String>>,
    pub body_bytes: usize,
}

/// Serves until the listener fails. HTTP/1.1 with keep-alive; bodies by Content-Length.
pub async fn serve(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        // Head and body go out in two writes: without this, Nagle's algorithm holds the body
        // until the client's delayed ACK (40 ms a request on Linux).
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = serve_connection(stream).await;
        });
    }
}

/// Serves one connection (plain TCP, or TLS in the tests).
pub async fn serve_connection<S: AsyncRead + AsyncWrite>(stream: S) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers
                    .entry(k.trim().to_ascii_lowercase())
                    .or_default()
                    .push(v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v[0].parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).await?;
        let close = headers
            .get("connection")
            .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case("close")));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (target.clone(), String::new()),
        };
        if path == "/health" {
            write
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await?;
            continue;
        }
        // A HEAD answer has the GET answer's head and no body.
        let head_only = method == "HEAD";
        let echo = Echo {
            method,
            path,
            query,
            headers,
            body_bytes: len,
        };
        let mut json = serde_json::to_vec_pretty(&echo).expect("echo serialises");
        json.push(b'\n');
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
            json.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        write.write_all(head.as_bytes()).await?;
        if !head_only {
            write.write_all(&json).await?;
        }
        if close {
            return Ok(());
        }
    }
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let listener = TcpListener::bind(&addr)
        .await
        .expect("bind the echo upstream");
    eprintln!("echo upstream listening on {addr}");
    serve(listener).await;
}
