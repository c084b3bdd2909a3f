//! The Redis side of single-use markers, pending MFA logins, values taken once and linked
//! sets: each one atomic command, script or pipeline, with a TTL.

use super::RedisStore;
use crate::store::StoreError;

impl RedisStore {
    pub(super) async fn spend_marker(&self, marker: &str, until: u64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let set: Option<String> = self
            .query(
                "spend",
                redis::cmd("SET")
                    .arg(self.keys.spent(marker))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(self.ttl(until))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(set.is_some())
    }

    pub(super) async fn start_mfa(
        &self,
        id: &str,
        username: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.mfa(id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("u")
            .arg(username)
            .arg("w")
            .arg(0)
            .arg("t")
            .arg(until)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.ttl(until))
            .ignore();
        self.query::<()>("start mfa", pipe.query_async(&mut conn))
            .await
    }

    pub(super) async fn count_mfa_attempt(
        &self,
        id: &str,
        max: u32,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        self.query(
            "count code attempt",
            self.scripts
                .mfa_attempt
                .key(self.keys.mfa(id))
                .arg(max)
                .arg(self.clock.now())
                .invoke_async(&mut conn),
        )
        .await
    }

    pub(super) async fn count_wrong_code(&self, id: &str, max: u32) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        self.query::<i64>(
            "count wrong code",
            self.scripts
                .mfa_failed
                .key(self.keys.mfa(id))
                .arg(max)
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn end_mfa(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let taken: i64 = self
            .query(
                "take mfa",
                self.scripts
                    .mfa_take
                    .key(self.keys.mfa(id))
                    .arg(self.clock.now())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(taken == 1)
    }

    pub(super) async fn keep_value(
        &self,
        key: &str,
        value: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        self.query::<()>(
            "keep",
            redis::cmd("SET")
                .arg(self.keys.kept(key))
                .arg(value)
                .arg("EX")
                .arg(self.ttl(until))
                .query_async(&mut conn),
        )
        .await
    }

    pub(super) async fn take_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        self.query(
            "take",
            redis::cmd("GETDEL")
                .arg(self.keys.kept(key))
                .query_async(&mut conn),
        )
        .await
    }

    pub(super) async fn add_link(
        &self,
        set: &str,
        member: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.linked(set);
        let ttl = self.ttl(until);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("SADD").arg(&key).arg(member).ignore();
        pipe.cmd("EXPIRE").arg(&key).arg(ttl).arg("GT").ignore();
        // A new key has no TTL for GT to compare with: give it one.
        pipe.cmd("EXPIRE").arg(&key).arg(ttl).arg("NX").ignore();
        self.query::<()>("link", pipe.query_async(&mut conn)).await
    }

    pub(super) async fn links(&self, set: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        self.query(
            "linked",
            redis::cmd("SMEMBERS")
                .arg(self.keys.linked(set))
                .query_async(&mut conn),
        )
        .await
    }
}
