//! What every door of one gateway shares and what outlives a reload: the current runtime
//! (swapped whole on reload), the shared state, the password workers, the clock, the
//! metrics, the users database. The proxy, the decision listener, the admin listener and the
//! reloader each hold the one value.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::accounts::directory::Directory;
use crate::accounts::password::PasswordPool;
use crate::accounts::service::{Accounts, Actor};
use crate::accounts::source::UserSource;
use crate::clock::Clock;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Store;

pub(crate) struct Services {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub store: Arc<dyn Store>,
    pub passwords: PasswordPool,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// `users_db`, opened at start and kept until restart (a reload does not reopen it).
    pub directory: Option<Arc<Directory>>,
    /// Requests being served, for a graceful shutdown to wait for.
    pub in_flight: Arc<AtomicUsize>,
    /// `[mail]`, with `users_db` (kept until restart).
    pub mailer: Option<Mailer>,
    /// The TLS listeners' client-certificate verifier, given each reload's CAs and CRLs.
    pub client_verifier: Option<Arc<crate::client_tls::ClientVerifier>>,
}

impl Services {
    /// Where `runtime`'s logins find users.
    pub(crate) fn users<'a>(&'a self, runtime: &'a Runtime) -> UserSource<'a> {
        let file = runtime.config.login.as_ref().map(|l| &l.users);
        match (self.directory.as_deref(), file) {
            (Some(d), _) => UserSource::Db(d),
            (None, Some(users)) => UserSource::File(users),
            (None, None) => UserSource::File(&EMPTY_USERS),
        }
    }

    /// The accounts service on `runtime`'s rules, acting for `actor`; `None` without
    /// `users_db`.
    pub(crate) fn accounts<'a>(
        &'a self,
        runtime: &'a Runtime,
        actor: Actor,
        now: u64,
        request_id: &'a str,
    ) -> Option<Accounts<'a>> {
        Some(Accounts {
            directory: self.directory.as_deref()?,
            store: self.store.as_ref(),
            passwords: &self.passwords,
            rules: runtime.config.account_rules(),
            now,
            actor,
            request_id,
        })
    }
}

static EMPTY_USERS: std::sync::LazyLock<crate::accounts::users::Users> =
    std::sync::LazyLock::new(Default::default);
