//! Keeping this instance's view of the revocations current: connect, follow what is
//! published, poll the version counter for what was missed, refill a Redis that came back
//! empty, prune what expired.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::watch;

use super::conn::Conn;
use super::{decode, encode, RedisStore, API_KEY_REVOCATION, EPOCH_TTL, POLL_EVERY};
use crate::store::StoreError;

impl RedisStore {
    /// The background work: connect, follow the published revocations, poll, prune. Runs
    /// until the process stops.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut subscribed = false;
        let mut polls: u64 = 0;
        loop {
            if self.conn.load().is_none() {
                match self.connect().await {
                    Ok(c) => {
                        self.conn.store(Some(Arc::new(c)));
                        tracing::info!(redis = ?self.settings, "connected to redis");
                    }
                    Err(e) => {
                        self.failed("connect", e);
                    }
                }
            }
            if self.conn.load().is_some() {
                if !subscribed && self.settings.urls.len() == 1 {
                    // Cluster mode does without: the poll alone keeps every instance within
                    // one poll interval.
                    tokio::spawn(self.clone().follow(shutdown.clone()));
                    subscribed = true;
                }
                match self.poll().await {
                    Ok(()) => self.flush_pending().await,
                    Err(e) => tracing::debug!(error = %e, "revocation poll failed"),
                }
                if polls.is_multiple_of(40) {
                    self.prune_shared().await;
                }
                polls += 1;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Applies published revocations as they come, reconnecting when the subscription drops,
    /// until `shutdown` changes.
    async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        use futures_util::StreamExt;
        let url = self.settings.urls[0].clone();
        loop {
            let subscribed = async {
                let client = self.client(&url)?;
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&self.keys.channel).await?;
                redis::RedisResult::Ok(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                Ok(Ok(pubsub)) => {
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let msg = tokio::select! {
                            msg = messages.next() => msg,
                            _ = shutdown.changed() => return,
                        };
                        let Some(msg) = msg else { break };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        if let Some(r) = payload.split_once('\t').and_then(|(_, m)| decode(m)) {
                            self.view.insert(r);
                        }
                    }
                    tracing::debug!("revocation subscription ended; resubscribing");
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot subscribe to revocations"),
                Err(_) => tracing::debug!("subscribing to revocations timed out"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Brings the view up to Redis's version; refills a Redis that lost its revocations.
    async fn poll(&self) -> Result<(), StoreError> {
        let mut conn = self
            .conn
            .load_full()
            .map(|c| (*c).clone())
            .ok_or_else(|| StoreError::Unavailable("not connected".into()))?;
        let fresh_epoch = uuid::Uuid::new_v4().to_string();
        let (remote, epoch): (Option<u64>, String) = self
            .query(
                "poll",
                redis::pipe()
                    .cmd("GET")
                    .arg(&self.keys.version)
                    .cmd("SET")
                    .arg(&self.keys.epoch)
                    .arg(&fresh_epoch)
                    .arg("NX")
                    .arg("EX")
                    .arg(EPOCH_TTL)
                    .ignore()
                    .cmd("GET")
                    .arg(&self.keys.epoch)
                    .query_async(&mut conn),
            )
            .await?;
        let remote = remote.unwrap_or(0);
        let applied = self.applied.load(Ordering::Acquire);
        let known = self
            .epoch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(epoch.clone());
        let lost = known.is_some_and(|k| k != epoch) || remote < applied;
        if lost {
            tracing::warn!(
                remote,
                applied,
                "redis lost its revocations (restarted empty?): writing back this instance's"
            );
            self.reseed(&mut conn).await?;
            self.applied.store(0, Ordering::Release);
        } else if remote > applied {
            self.fetch_since(&mut conn, applied).await?;
        }
        self.fresh_at.store(self.clock.now(), Ordering::Release);
        self.recovered();
        Ok(())
    }

    async fn fetch_since(&self, conn: &mut Conn, mut applied: u64) -> Result<(), StoreError> {
        const PAGE: usize = 1000;
        loop {
            let page: Vec<(String, f64)> = self
                .query(
                    "fetch revocations",
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(&self.keys.by_version)
                        .arg(format!("({applied}"))
                        .arg("+inf")
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(PAGE)
                        .query_async(conn),
                )
                .await?;
            for (member, version) in &page {
                if let Some(r) = decode(member) {
                    self.view.insert(r);
                }
                applied = applied.max(*version as u64);
            }
            self.applied.fetch_max(applied, Ordering::AcqRel);
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    async fn reseed(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let now = self.clock.now();
        // The pipeline below uses EVALSHA: an emptied Redis has forgotten the script too.
        self.query::<String>("load script", self.scripts.revoke.load_async(conn))
            .await?;
        for chunk in self.view.snapshot().chunks(500) {
            let mut pipe = redis::pipe();
            for r in chunk {
                let (member, until) = encode(r);
                if until <= now {
                    continue;
                }
                let (score, ttl) = self.expiry(r);
                pipe.invoke_script(
                    self.scripts
                        .revoke
                        .key(&self.keys.version)
                        .key(&self.keys.by_until)
                        .key(&self.keys.by_version)
                        .arg(&member)
                        .arg(score)
                        .arg(&self.keys.channel)
                        .arg(ttl),
                );
            }
            let replies: Vec<Value> = self
                .query("reseed revocations", pipe.query_async(conn))
                .await?;
            if let Some(Value::ServerError(e)) =
                replies.iter().find(|v| matches!(v, Value::ServerError(_)))
            {
                return Err(self.failed("reseed revocations", format!("{e:?}")));
            }
        }
        Ok(())
    }

    async fn prune_shared(&self) {
        let Ok(mut conn) = self.conn() else { return };
        let now = self.clock.now();
        let _ = self
            .query::<i64>(
                "renew epoch",
                redis::cmd("EXPIRE")
                    .arg(&self.keys.epoch)
                    .arg(EPOCH_TTL)
                    .query_async(&mut conn),
            )
            .await;
        if self.view.has_api_keys() {
            // API-key revocations hold for ever: their keys outlive every instance by a year.
            let mut pipe = redis::pipe();
            for key in [
                &self.keys.version,
                &self.keys.by_until,
                &self.keys.by_version,
            ] {
                pipe.cmd("EXPIRE")
                    .arg(key)
                    .arg(API_KEY_REVOCATION)
                    .arg("GT")
                    .ignore();
            }
            let _ = self
                .query::<()>("renew revocations", pipe.query_async(&mut conn))
                .await;
        }
        let _ = self
            .query::<u64>(
                "prune",
                self.scripts
                    .prune
                    .key(&self.keys.by_until)
                    .key(&self.keys.by_version)
                    .arg(now)
                    .invoke_async(&mut conn),
            )
            .await;
    }
}
