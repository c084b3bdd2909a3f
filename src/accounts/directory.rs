//! The users of `users_db` as the login flows see them: rows read into [`User`]s (hashes
//! parsed, TOTP secrets opened), writes that seal secrets, and the API keys kept in memory
//! beside them ([`KeyRing`]), which `follow` keeps current.

use std::sync::{Arc, RwLock};

use super::db::identities::{self, IdentityRow};
use super::db::keys::{self, KeyRow, LiveKey};
use super::db::tokens::{self, Purpose};
use super::db::users::{self, UserPatch, UserRow};
use super::db::{Db, DbError};
use super::decoy::Decoys;
use super::keyring::KeyRing;
use super::mfa::Totp;
use super::password::PasswordHash;
use super::sealed::SecretBox;
use super::users::User;

/// The writable user store of one gateway: shared by its proxy, endpoints and admin API,
/// kept across reloads.
#[derive(Debug)]
pub(crate) struct Directory {
    pub(crate) db: Arc<Db>,
    sealer: SecretBox,
    pub(crate) keys: Arc<KeyRing>,
    /// The change log's last sequence number when the keys were loaded: `follow` reads on
    /// from there.
    pub(crate) loaded_at: i64,
    decoys: RwLock<Arc<Decoys>>,
}

/// Decoys of the hashes that parse (a row that does not is refused at its own login).
fn decoys_of(hashes: &[String]) -> Decoys {
    let parsed: Vec<PasswordHash> = hashes
        .iter()
        .filter_map(|h| PasswordHash::parse(h).ok())
        .collect();
    Decoys::new(&parsed)
}

impl Directory {
    /// Connects and migrates (on a thread of its own, so that this works from any context
    /// and leaves no runtime behind for `run -d`'s fork), then loads every live API key: a
    /// database that cannot be reached is an error now, at start.
    pub(crate) fn open(url: &str, db_key: &str) -> Result<Arc<Self>, DbError> {
        let db = Db::new(url);
        let checking = db.clone();
        let ring = Arc::new(KeyRing::default());
        let filling = ring.clone();
        let loaded = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DbError::Unavailable(e.to_string()))?
                .block_on(checking.check_and_load(&*filling))
        })
        .join()
        .unwrap_or_else(|_| Err(DbError::Unavailable("the check panicked".into())))?;
        tracing::info!(api_keys = ring.len(), "users_db ready");
        Ok(Arc::new(Directory {
            db,
            sealer: SecretBox::new(db_key),
            keys: ring,
            loaded_at: loaded.seq,
            decoys: RwLock::new(Arc::new(decoys_of(&loaded.hashes))),
        }))
    }

    /// What an unknown name's password is checked against: a decoy of some user's algorithm
    /// and cost (users imported with bcrypt keep it until they log in), as for users.toml.
    pub(crate) fn decoy(&self, username: &str) -> PasswordHash {
        let decoys = self
            .decoys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        decoys.for_username(username).clone()
    }

    /// The decoys drawn again from the users' hashes as they are now.
    pub(crate) async fn refresh_decoys(&self) -> Result<(), DbError> {
        let hashes = self
            .db
            .run(|pool, _| async move { users::all_hashes(&pool).await })
            .await?;
        let fresh = Arc::new(decoys_of(&hashes));
        *self.decoys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The user named `username` (lower-cased already), ready to log in.
    pub(crate) async fn user(&self, username: &str) -> Result<Option<User>, DbError> {
        let name = username.to_string();
        let row = self
            .db
            .run(move |pool, _| async move { users::get(&pool, &name).await })
            .await?;
        row.map(|r| self.to_user(&r)).transpose()
    }

    pub(crate) async fn user_by_subject(&self, subject: &str) -> Result<Option<User>, DbError> {
        let row = self.row_by_subject(subject).await?;
        row.map(|r| self.to_user(&r)).transpose()
    }

    pub(crate) async fn row(&self, username: &str) -> Result<Option<UserRow>, DbError> {
        let name = username.to_string();
        self.db
            .run(move |pool, _| async move { users::get(&pool, &name).await })
            .await
    }

    pub(crate) async fn row_by_subject(&self, subject: &str) -> Result<Option<UserRow>, DbError> {
        let subject = subject.to_string();
        self.db
            .run(move |pool, _| async move { users::by_subject(&pool, &subject).await })
            .await
    }

    pub(crate) async fn insert(&self, row: UserRow) -> Result<(), DbError> {
        self.db
            .run(move |pool, kind| async move { users::insert(&pool, kind, &row).await })
            .await
    }

    /// The user linked to a provider's identity (`issuer`, `sub`).
    pub(crate) async fn identity(
        &self,
        issuer: &str,
        sub: &str,
    ) -> Result<Option<IdentityRow>, DbError> {
        let (issuer, sub) = (issuer.to_string(), sub.to_string());
        self.db
            .run(move |pool, _| async move { identities::get(&pool, &issuer, &sub).await })
            .await
    }

    /// A new user linked to a provider's identity, both or neither.
    pub(crate) async fn insert_linked(&self, row: UserRow, id: IdentityRow) -> Result<(), DbError> {
        self.db
            .run(move |pool, kind| async move {
                identities::insert_with_user(&pool, kind, &row, &id).await
            })
            .await
    }

    /// What the provider gave at a later login.
    pub(crate) async fn update_identity(&self, id: IdentityRow) -> Result<(), DbError> {
        self.db
            .run(move |pool, _| async move { identities::update(&pool, &id).await })
            .await
    }

    /// A link whose user is gone.
    pub(crate) async fn unlink(&self, issuer: &str, sub: &str) -> Result<(), DbError> {
        let (issuer, sub) = (issuer.to_string(), sub.to_string());
        self.db
            .run(move |pool, _| async move { identities::delete(&pool, &issuer, &sub).await })
            .await
    }

    /// A new single-use token of `purpose` for `username`, good until `expires_at` (a newer
    /// one voids the older). The token is returned once; the database keeps its digest.
    /// Only while `user` is the enabled user of its name (not one deleted meanwhile, nor one
    /// registered since under the same name): `DbError::Taken` otherwise.
    pub(crate) async fn issue_token(
        &self,
        purpose: Purpose,
        user: &UserRow,
        now: u64,
        expires_at: u64,
    ) -> Result<String, DbError> {
        let token = crate::auth::random_token();
        let digest = token_digest(&token);
        let (name, subject) = (user.username.clone(), user.subject.clone());
        self.db
            .run(move |pool, _| async move {
                tokens::replace(&pool, &digest, purpose, &name, &subject, now, expires_at).await
            })
            .await?;
        Ok(token)
    }

    /// The user a live token is for; spent (`spend`) or not.
    pub(crate) async fn token_user(
        &self,
        token: &str,
        purpose: Purpose,
        now: u64,
        spend: bool,
    ) -> Result<Option<String>, DbError> {
        let digest = token_digest(token);
        self.db
            .run(move |pool, _| async move {
                match spend {
                    true => tokens::take(&pool, &digest, purpose, now).await,
                    false => tokens::peek(&pool, &digest, purpose, now).await,
                }
            })
            .await
    }

    /// Voids the user's tokens of `purpose`.
    pub(crate) async fn void_tokens(
        &self,
        username: &str,
        purpose: Purpose,
    ) -> Result<(), DbError> {
        let name = username.to_string();
        self.db
            .run(move |pool, _| async move { tokens::void(&pool, &name, purpose).await })
            .await
    }

    /// The last `limit` audit rows of a user (by subject or name).
    pub(crate) async fn activity(
        &self,
        subject: &str,
        username: &str,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditRow>, DbError> {
        let (subject, username) = (subject.to_string(), username.to_string());
        self.db
            .run(move |pool, _| async move {
                super::db::audit::of_user(&pool, &subject, &username, limit).await
            })
            .await
    }

    /// The users whose email is `email` (compared lower-cased).
    pub(crate) async fn rows_by_email(&self, email: &str) -> Result<Vec<UserRow>, DbError> {
        let email = email.to_string();
        self.db
            .run(move |pool, kind| async move { users::by_email(&pool, kind, &email).await })
            .await
    }

    /// Applies `patch`; the user as it is now (`None`: no such user). The instance that
    /// changed a user reloads its keys at once; the others follow the change log.
    pub(crate) async fn update(
        &self,
        username: &str,
        patch: UserPatch,
        now: u64,
    ) -> Result<Option<UserRow>, DbError> {
        let name = username.to_string();
        let row =
            self.db
                .run(move |pool, kind| async move {
                    users::update(&pool, kind, &name, &patch, now).await
                })
                .await?;
        self.reload_owner(username).await;
        Ok(row)
    }

    pub(crate) async fn delete(&self, username: &str, now: u64) -> Result<bool, DbError> {
        let name = username.to_string();
        let deleted = self
            .db
            .run(move |pool, kind| async move { users::delete(&pool, kind, &name, now).await })
            .await?;
        self.keys.set_owner(username, Vec::new());
        Ok(deleted)
    }

    pub(crate) async fn list(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<UserRow>, DbError> {
        let (prefix, after) = (prefix.to_string(), after.to_string());
        self.db
            .run(move |pool, _| async move { users::list(&pool, &prefix, &after, limit).await })
            .await
    }

    /// A new API key of `owner` (at most `max` per user): in the database, and in this
    /// instance's memory at once.
    pub(crate) async fn insert_key(
        &self,
        row: KeyRow,
        owner: &UserRow,
        max: usize,
    ) -> Result<Result<(), keys::NotStored>, DbError> {
        let stored = row.clone();
        let subject = owner.subject.clone();
        let inserted = self
            .db
            .run(move |pool, kind| async move {
                keys::insert(&pool, kind, &stored, &subject, max).await
            })
            .await?;
        if let Err(refused) = inserted {
            return Ok(Err(refused));
        }
        let id = row.id.clone();
        self.keys.set(
            &id,
            Some(LiveKey {
                key: row,
                subject: owner.subject.clone(),
                owner_roles: owner.roles.clone(),
            }),
        );
        Ok(Ok(()))
    }

    /// A page of `username`'s keys after the key `after`.
    pub(crate) async fn keys_page(
        &self,
        username: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeyRow>, DbError> {
        let (name, after) = (username.to_string(), after.map(str::to_string));
        self.db
            .run(move |pool, _| async move {
                keys::page_of_user(&pool, &name, after.as_deref(), limit).await
            })
            .await
    }

    /// Deletes every key of `username`, here at once and on the other instances through the
    /// change log.
    pub(crate) async fn delete_keys_of(&self, username: &str, now: u64) -> Result<(), DbError> {
        let name = username.to_string();
        self.db
            .run(move |pool, kind| async move { keys::delete_of_user(&pool, kind, &name, now).await })
            .await?;
        self.keys.set_owner(username, Vec::new());
        Ok(())
    }

    /// Deletes `username`'s key `id`; whether it was theirs.
    pub(crate) async fn delete_key(
        &self,
        username: &str,
        id: &str,
        now: u64,
    ) -> Result<bool, DbError> {
        let (name, key_id) = (username.to_string(), id.to_string());
        let deleted =
            self.db
                .run(move |pool, kind| async move {
                    keys::delete(&pool, kind, &name, &key_id, now).await
                })
                .await?;
        if deleted {
            self.keys.set(id, None);
        }
        Ok(deleted)
    }

    /// `secret` sealed for `username`'s row.
    pub(crate) fn seal(&self, username: &str, secret: &str) -> String {
        self.sealer.seal(username, secret)
    }

    pub(crate) fn unseal(&self, username: &str, sealed: &str) -> Option<String> {
        self.sealer.open(username, sealed)
    }

    async fn reload_owner(&self, username: &str) {
        let name = username.to_string();
        let live = self
            .db
            .run(move |pool, _| async move { keys::live_of_user(&pool, &name).await })
            .await;
        match live {
            Ok(live) => self.keys.set_owner(username, live),
            // The change log brings it in a moment.
            Err(e) => tracing::warn!(error = %e, "could not reload a user's API keys"),
        }
    }

    /// A row as the login flows use it; a row that does not read (a hand-edited database)
    /// is `Corrupt`, refused like an unavailable database rather than half-used.
    pub(crate) fn to_user(&self, row: &UserRow) -> Result<User, DbError> {
        let corrupt = |what: &str| DbError::Corrupt(format!("user {}: {what}", row.username));
        let password = PasswordHash::parse(&row.password_hash).map_err(|e| corrupt(&e))?;
        let totp = match &row.totp_secret {
            None => None,
            Some(sealed) => {
                let secret = self
                    .sealer
                    .open(&row.username, sealed)
                    .ok_or_else(|| corrupt("TOTP secret does not open with this db_key"))?;
                Some(Totp::from_base32(&secret).map_err(|e| corrupt(&e))?)
            }
        };
        let backup_codes = row
            .backup_codes
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or_else(|| corrupt("backup code digest"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(User {
            username: row.username.clone(),
            password,
            subject: row.subject.clone(),
            roles: row.roles.clone(),
            claims: row.claims.clone(),
            totp,
            backup_codes,
            disabled: row.disabled,
        })
    }
}

/// What the database keeps of a reset or verification token.
fn token_digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}
