//! The connection to Redis: one node through a connection manager (it reconnects by itself),
//! or a cluster, with the configured CA for `rediss://`.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{RedisStore, COMMAND_TIMEOUT};

/// A connection to one node or to a cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisStore {
    fn tls_certs(&self) -> Option<redis::TlsCertificates> {
        self.settings
            .ca_pem
            .as_ref()
            .map(|pem| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            })
    }

    /// A client for one node, with the configured CA for `rediss://`.
    pub(super) fn client(&self, url: &str) -> redis::RedisResult<redis::Client> {
        match self.tls_certs() {
            Some(certs) => redis::Client::build_with_tls(url, certs),
            None => redis::Client::open(url),
        }
    }

    /// Connects (single node or cluster); the connection then reconnects by itself.
    pub(super) async fn connect(&self) -> Result<Conn, String> {
        if let [url] = self.settings.urls.as_slice() {
            let client = self.client(url).map_err(|e| e.to_string())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(100))
                .set_max_delay(Duration::from_secs(1));
            let manager = tokio::time::timeout(
                Duration::from_secs(2),
                ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
            Ok(Conn::Single(manager))
        } else {
            let mut builder = redis::cluster::ClusterClientBuilder::new(self.settings.urls.clone());
            if let Some(certs) = self.tls_certs() {
                builder = builder.certs(certs);
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            let conn = tokio::time::timeout(Duration::from_secs(2), client.get_async_connection())
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            Ok(Conn::Cluster(conn))
        }
    }
}
