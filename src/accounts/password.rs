//! Password hashes (argon2 PHC strings and bcrypt) and the pool that verifies them.
//!
//! Verifying a password costs tens of milliseconds of CPU by design. It never runs on the
//! proxy's event loop: a few dedicated threads at the lowest scheduling class (SCHED_IDLE)
//! take the jobs from a bounded queue, so a storm of logins waits its turn (or is refused when
//! the queue is full) while proxied requests keep the CPU they need.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A stored password hash, checked for shape at load.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PasswordHash {
    /// A PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    Argon2(String),
    /// `$2a$`, `$2b$` or `$2y$`.
    Bcrypt(String),
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not the password, but it is what an offline attack starts from.
        f.write_str(match self {
            PasswordHash::Argon2(_) => "Argon2(***)",
            PasswordHash::Bcrypt(_) => "Bcrypt(***)",
        })
    }
}

impl PasswordHash {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with("$argon2") {
            let phc = argon2::PasswordHash::new(s)
                .map_err(|e| format!("not a valid argon2 PHC string: {e}"))?;
            argon2::Algorithm::try_from(phc.algorithm)
                .map_err(|e| format!("unknown argon2 variant: {e}"))?;
            argon2::Params::try_from(&phc).map_err(|e| format!("bad argon2 parameters: {e}"))?;
            if phc.hash.is_none() || phc.salt.is_none() {
                return Err("argon2 PHC string without its salt or hash".into());
            }
            return Ok(PasswordHash::Argon2(s.to_string()));
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
            s.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("not a valid bcrypt hash: {e}"))?;
            return Ok(PasswordHash::Bcrypt(s.to_string()));
        }
        Err(
            "must be an argon2 PHC string ($argon2id$...) or a bcrypt hash ($2a$, $2b$, $2y$)"
                .into(),
        )
    }

    /// Whether `password` matches. Slow on purpose: call it on the pool.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Argon2(s) => argon2::PasswordHash::new(s)
                .is_ok_and(|phc| Argon2::default().verify_password(password, &phc).is_ok()),
            PasswordHash::Bcrypt(s) => bcrypt::verify(password, s).unwrap_or(false),
        }
    }

    /// A hash of a random password with this hash's algorithm and cost: what an unknown
    /// username is checked against, so that it takes as long as a wrong password.
    pub(crate) fn decoy(&self) -> PasswordHash {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the OS random source is available");
        match self {
            PasswordHash::Argon2(s) => {
                let hashed = argon2::PasswordHash::new(s).ok().and_then(|phc| {
                    let algorithm = argon2::Algorithm::try_from(phc.algorithm).ok()?;
                    let version = phc
                        .version
                        .map_or(Ok(argon2::Version::V0x13), argon2::Version::try_from);
                    let params = argon2::Params::try_from(&phc).ok()?;
                    let argon = Argon2::new(algorithm, version.ok()?, params);
                    let salt = SaltString::generate(&mut OsRng);
                    Some(argon.hash_password(&random, &salt).ok()?.to_string())
                });
                // Parsed at load, so this holds; the default cost is the fallback.
                PasswordHash::Argon2(hashed.unwrap_or_else(|| hash(&random)))
            }
            PasswordHash::Bcrypt(s) => {
                let cost = s
                    .parse::<bcrypt::HashParts>()
                    .map_or(bcrypt::DEFAULT_COST, |p| p.get_cost());
                let hashed = bcrypt::hash_with_result(random, cost)
                    .expect("bcrypt hashes at a cost its own hashes have")
                    .format_for_version(bcrypt::Version::TwoB);
                PasswordHash::Bcrypt(hashed)
            }
        }
    }

    /// The PHC or bcrypt string.
    pub(crate) fn phc_string(&self) -> &str {
        match self {
            PasswordHash::Argon2(s) | PasswordHash::Bcrypt(s) => s,
        }
    }

    /// Whether this is what new hashes are: argon2id at the default cost. Others (bcrypt,
    /// argon2 at another cost, imported from a file) are rehashed at the next login.
    pub(crate) fn is_current(&self) -> bool {
        let PasswordHash::Argon2(s) = self else {
            return false;
        };
        argon2::PasswordHash::new(s).is_ok_and(|phc| {
            phc.algorithm == argon2::Algorithm::Argon2id.ident()
                && argon2::Params::try_from(&phc).is_ok_and(|p| {
                    let d = argon2::Params::default();
                    (p.m_cost(), p.t_cost(), p.p_cost()) == (d.m_cost(), d.t_cost(), d.p_cost())
                })
        })
    }

    /// The algorithm and cost, for grouping users by what a check of theirs costs.
    pub(crate) fn cost_class(&self) -> String {
        match self {
            PasswordHash::Argon2(s) => argon2::PasswordHash::new(s)
                .map(|phc| format!("{}:{:?}:{}", phc.algorithm, phc.version, phc.params))
                .unwrap_or_default(),
            PasswordHash::Bcrypt(s) => s
                .parse::<bcrypt::HashParts>()
                .map(|p| format!("bcrypt:{}", p.get_cost()))
                .unwrap_or_default(),
        }
    }
}

/// An argon2id PHC string for `password` at the crate's default cost (OWASP's
/// recommendation: m = 19 MiB, t = 2, p = 1). What `portcullis hash-password` prints.
pub(crate) fn hash(password: &[u8]) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// A hash of a random password at the default cost, for a gateway without users.
pub(crate) fn default_dummy() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the OS random source is available");
        PasswordHash::Argon2(hash(&random))
    })
}

/// The pool is full: the caller should come back later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// Dedicated low-priority threads verifying passwords, fed by a bounded queue.
///
/// The threads start with the first verification, not before: `run -d` forks after the
/// gateway is built, and threads started before a fork do not exist in the child.
#[derive(Debug, Clone)]
pub(crate) struct PasswordPool {
    threads: usize,
    queue: usize,
    jobs: Arc<OnceLock<SyncSender<Job>>>,
}

impl PasswordPool {
    /// `threads` workers; at most `queue` verifications wait.
    pub(crate) fn new(threads: usize, queue: usize) -> Self {
        PasswordPool {
            threads: threads.max(1),
            queue,
            jobs: Arc::new(OnceLock::new()),
        }
    }

    fn jobs(&self) -> &SyncSender<Job> {
        self.jobs.get_or_init(|| {
            let (jobs, rx) = mpsc::sync_channel::<Job>(self.queue);
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.threads {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("portcullis-password-{i}"))
                    .spawn(move || worker(rx))
                    .expect("the OS can start a thread");
            }
            jobs
        })
    }

    /// Whether `password` matches `hash`, checked on the pool.
    pub(crate) async fn verify(&self, hash: PasswordHash, password: String) -> Result<bool, Busy> {
        self.run(move || hash.verify(password.as_bytes())).await
    }

    /// A new argon2id hash of `password` (`hash`), made on the pool.
    pub(crate) async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move || hash(password.as_bytes())).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        match self.jobs().try_send(job) {
            Ok(()) => result.await.map_err(|_| Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>) {
    lower_priority();
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rx.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// SCHED_IDLE for this thread only (nice 19 where that is refused): it runs when the proxy's
/// threads leave the CPU idle, and gives way the moment they wake.
fn lower_priority() {
    // SAFETY: `param` outlives the call; gettid, sched_setscheduler and setpriority act on
    // this thread only. On failure the thread keeps its priority.
    #[cfg(target_os = "linux")]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            if libc::setpriority(libc::PRIO_PROCESS, tid, 19) != 0 {
                tracing::debug!("could not lower the password threads' priority");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hash-password`'s output, and bcrypt hashes of "secret" in all three prefixes
    /// (cost 4, made with Python's bcrypt).
    #[test]
    fn argon2_and_bcrypt_verify() {
        let h = PasswordHash::parse(&hash(b"correct horse")).unwrap();
        assert!(h.verify(b"correct horse"));
        assert!(!h.verify(b"wrong horse"));
        let bcrypt_b = bcrypt::hash_with_result("secret", 4).unwrap();
        for version in [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ] {
            let s = bcrypt_b.format_for_version(version);
            let h = PasswordHash::parse(&s).unwrap();
            assert!(h.verify(b"secret"), "{s}");
            assert!(!h.verify(b"Secret"), "{s}");
        }
    }

    #[test]
    fn bad_hashes_are_refused() {
        for bad in [
            "",
            "plaintext",
            "$argon2id$v=19$m=19456,t=2,p=1$short",
            "$2x$04$abcdefghijklmnopqrstuu",
            "$2b$04$tooshort",
            "$1$md5crypt",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", PasswordHash::parse(&hash(b"x")).unwrap()),
            "Argon2(***)"
        );
    }

    #[tokio::test]
    async fn the_pool_verifies_off_the_caller_and_refuses_when_full() {
        let pool = PasswordPool::new(1, 4);
        let h = PasswordHash::parse(&hash(b"pw")).unwrap();
        assert_eq!(pool.verify(h.clone(), "pw".into()).await, Ok(true));
        assert_eq!(pool.verify(h, "no".into()).await, Ok(false));

        // No worker at all: the queue fills and the next caller is told so at once.
        let (jobs, _rx) = mpsc::sync_channel::<Job>(1);
        let stalled = PasswordPool::new(1, 1);
        stalled.jobs.set(jobs).unwrap();
        stalled.jobs().try_send(Box::new(|| {})).unwrap();
        let dummy = default_dummy().clone();
        assert_eq!(stalled.verify(dummy, "pw".into()).await, Err(Busy));
    }

    #[test]
    fn dummies_cost_what_the_users_hashes_cost() {
        let salt = SaltString::generate(&mut OsRng);
        let params = argon2::Params::new(8192, 3, 1, None).unwrap();
        let a = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let argon = PasswordHash::Argon2(a.hash_password(b"x", &salt).unwrap().to_string());
        let dummy = argon.decoy();
        assert_eq!(dummy.cost_class(), argon.cost_class());
        assert!(
            dummy.cost_class().contains("m=8192,t=3,p=1"),
            "{}",
            dummy.cost_class()
        );

        let bcrypt_hash = bcrypt::hash_with_result("secret", 5)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let b = PasswordHash::parse(&bcrypt_hash).unwrap();
        let dummy = b.decoy();
        assert!(matches!(dummy, PasswordHash::Bcrypt(_)));
        assert_eq!(dummy.cost_class(), "bcrypt:5");
        assert!(!dummy.verify(b"secret"));
    }
}
