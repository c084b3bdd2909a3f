//! Builds the Pingora server from a validated config: listeners, the proxy, the admin
//! listener, the background work. [`build`] makes it; [`Built::run`] serves until a signal
//! says stop, [`Built::run_until`] until a [`Stop`] says so (tests run gateways in-process).
//! Nothing here exits the process: main does, when `run` returns or `on_drained` is called.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;

use crate::client_tls::{ClientVerifier, ReadCertificate};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use tokio::sync::Notify;

use crate::accounts::db::DbError;
use crate::accounts::directory::Directory;
use crate::accounts::password::PasswordPool;
use crate::accounts::trail::Trail;
use crate::admin::AdminApp;
use crate::audit;
use crate::clock::Clock;
use crate::config::{Backend, Config};
use crate::mail::{Mailer, Outbox};
use crate::metrics::Metrics;
use crate::proxy::decision::Decider;
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::runtime::{self, Runtime};
use crate::services::Services;
use crate::store::{MemoryStore, RedisStore, Store};

/// Audit rows waiting to be stored, at most: past it they are dropped (and counted).
const AUDIT_QUEUE: usize = 10_000;

/// The longest a SIGTERM waits for requests in flight.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// How the gateway runs, beyond its config.
pub struct Options {
    /// Run in the background, writing `pid_file` (`run -d`).
    pub daemon: bool,
    /// Take the listening sockets over from a running instance (`run -u`).
    pub upgrade: bool,
    pub pid_file: PathBuf,
    pub upgrade_sock: PathBuf,
    pub clock: Clock,
    /// Reload on SIGHUP (a gateway of its own process; in-process tests set it off).
    pub sighup: bool,
    /// Names the services (and so their threads): the tests tell gateways apart by it.
    pub name: String,
    /// Called once a SIGTERM's drain is over (no request in flight): main exits then, rather
    /// than waiting out Pingora's whole grace period.
    pub on_drained: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            daemon: false,
            upgrade: false,
            pid_file: "/tmp/portcullis.pid".into(),
            upgrade_sock: "/tmp/portcullis_upgrade.sock".into(),
            clock: Clock::System,
            sighup: true,
            name: "portcullis".into(),
            on_drained: None,
        }
    }
}

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `users_db` could not be reached, migrated or read.
    #[error("users_db: {0}")]
    UsersDb(String),
    /// A TLS listener's certificate or key did not load.
    #[error("TLS on {addr}: {reason}")]
    Tls { addr: String, reason: String },
}

impl From<DbError> for StartError {
    fn from(e: DbError) -> Self {
        StartError::UsersDb(e.to_string())
    }
}

/// A gateway ready to run.
pub struct Built {
    server: Server,
    /// What the gateway serves with, for tests that look inside.
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub store: Arc<dyn Store>,
}

/// Tells an in-process gateway to stop (at once, as SIGINT would).
#[derive(Clone, Default)]
pub struct Stop(Arc<Notify>);

impl Stop {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        self.0.notified().await;
        ShutdownSignal::FastShutdown
    }
}

impl Built {
    /// Serves until SIGTERM (drain, then exit), SIGINT (at once) or SIGQUIT (hand the sockets
    /// over). With `daemon`, this process forks first.
    pub fn run(self) {
        self.server.run(RunArgs::default())
    }

    /// Serves until `stop` is told to.
    pub fn run_until(self, stop: Stop) {
        self.server.run(RunArgs {
            shutdown_signal: Box::new(stop),
        })
    }
}

/// The server for `config`: nothing listens, forks or starts a thread until it runs.
pub fn build(config: Config, options: Options) -> Result<Built, StartError> {
    let mut server = server(&config, &options);
    let clock = options.clock.clone();
    let (store, redis) = store(&config, &clock);
    let shared = store.clone().shared_buckets();
    let server_settings = config.server.clone();
    let decision = config.decision.clone();
    let path = config.path.clone();
    let directory = directory(&config)?;
    let metrics = Arc::new(Metrics::new());
    let (mailer, outbox) = mail(&config, directory.is_some(), &metrics);
    let trail = trail(&config, directory.as_ref(), &options, &metrics);
    let client_verifier = client_verifier(&config)?;
    let first = Runtime::new(config, None, shared);
    let runtime = Arc::new(ArcSwap::from_pointee(first));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let services = Arc::new(Services {
        runtime: runtime.clone(),
        store: store.clone(),
        passwords: password_pool(),
        clock: clock.clone(),
        metrics,
        directory: directory.clone(),
        mailer,
        in_flight: in_flight.clone(),
        client_verifier: client_verifier.clone(),
    });
    let name = options.name.clone();
    if let Some(decision) = &decision {
        decision_listener(&mut server, decision, &services, &name);
    }
    let gateway = Gateway {
        services: services.clone(),
    };
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, &name);
    listen(&mut proxy, &server_settings, client_verifier)?;
    server.add_service(proxy);
    if let Some(addr) = server_settings.admin_listen {
        let app = AdminApp {
            services: services.clone(),
        };
        let mut admin = pingora::services::listening::Service::new(format!("{name}-admin"), app);
        admin.add_tcp(&addr.to_string());
        tracing::info!(admin_listen = %addr, "admin listener");
        server.add_service(admin);
    }
    let reloader = Reloader {
        path,
        services: services.clone(),
        on_sighup: options.sighup,
    };
    let tasks = [
        ("logs", Task::LogWriter),
        ("drain", Task::Drain(in_flight, options.on_drained)),
        ("health", Task::Health(runtime.clone())),
        ("jwks", Task::Jwks(runtime.clone(), clock)),
        ("reload", Task::Reload(reloader)),
        ("pruning", Task::Pruning(runtime.clone(), store.clone())),
    ];
    let redis = redis.map(|r| ("redis", Task::RedisSync(r)));
    let accounts = directory.map(|d| ("accounts", Task::Accounts(d, options.clock.clone())));
    let outbox = outbox.map(|o| ("mail", Task::Mail(Mutex::new(Some(o)))));
    let trail = trail.map(|(trail, _registered)| {
        let trail = Mutex::new(Some(trail));
        ("audit", Task::Audit { trail, _registered })
    });
    let optional = redis.into_iter().chain(accounts).chain(outbox).chain(trail);
    for (task, service) in tasks.into_iter().chain(optional) {
        server.add_service(background_service(&format!("{name}-{task}"), service));
    }
    Ok(Built {
        server,
        runtime,
        store,
    })
}

/// The decision listener (docs/DECISION.md), on the gateway's services.
fn decision_listener(
    server: &mut Server,
    decision: &crate::config::DecisionSettings,
    services: &Arc<Services>,
    name: &str,
) {
    let decider = Decider {
        services: services.clone(),
    };
    let label = format!("{name}-decision");
    let mut service =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, decider, &label);
    for addr in &decision.listen {
        service.add_tcp(&addr.to_string());
    }
    tracing::info!(listen = ?decision.listen, "decision listener");
    server.add_service(service);
}

/// Pingora's server: threads, the grace period, daemon and upgrade settings.
fn server(config: &Config, options: &Options) -> Server {
    let conf = ServerConf {
        threads: config
            .server
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        // SIGTERM: stop accepting, let requests in flight finish (up to this long), exit. The
        // drain task calls `on_drained` as soon as none is left.
        grace_period_seconds: Some(DRAIN_FOR.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        pid_file: options.pid_file.to_string_lossy().into_owned(),
        upgrade_sock: options.upgrade_sock.to_string_lossy().into_owned(),
        daemon: options.daemon,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    server
}

/// The store of `[store]`, and the same as a Redis store when it is one (its sync task).
fn store(config: &Config, clock: &Clock) -> (Arc<dyn Store>, Option<Arc<RedisStore>>) {
    match &config.store.backend {
        Backend::Memory => (Arc::new(MemoryStore::new(clock.clone())), None),
        Backend::Redis(settings) => {
            let redis = Arc::new(RedisStore::new(settings.clone(), clock.clone()));
            (redis.clone(), Some(redis))
        }
    }
}

/// The user store of `users_db`, connected, migrated and its API keys loaded: a database
/// that cannot be reached stops the start here.
fn directory(config: &Config) -> Result<Option<Arc<Directory>>, StartError> {
    let Some(db) = config.login.as_ref().and_then(|l| l.users_db.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(Directory::open(db.url.expose(), db.db_key.expose())?))
}

/// Every `listen` address, with TLS when `[server] tls` is set.
/// The TLS listeners' client-certificate verifier (one for all, swapped at reloads).
fn client_verifier(config: &Config) -> Result<Option<Arc<ClientVerifier>>, StartError> {
    let Some(tls) = &config.server.tls else {
        return Ok(None);
    };
    let verifier = ClientVerifier::new(tls.client.as_ref()).map_err(|reason| StartError::Tls {
        addr: "every listener".into(),
        reason,
    })?;
    Ok(Some(Arc::new(verifier)))
}

/// With client certificates, each handshake asks `verifier`, and the certificate verified
/// is read once per connection for its requests.
fn listen<A>(
    proxy: &mut pingora::services::listening::Service<A>,
    server: &crate::config::ServerSettings,
    verifier: Option<Arc<ClientVerifier>>,
) -> Result<(), StartError> {
    for addr in &server.listen {
        let addr = addr.to_string();
        match (&server.tls, &verifier) {
            (Some(files), Some(verifier)) => {
                let failed = |e: pingora::BError| StartError::Tls {
                    addr: addr.clone(),
                    reason: e.to_string(),
                };
                let mut tls =
                    TlsSettings::with_callbacks(Box::new(ReadCertificate)).map_err(failed)?;
                tls.set_certificate_chain_file(&files.cert_file.to_string_lossy())
                    .map_err(failed)?;
                tls.set_private_key_file(&files.key_file.to_string_lossy())
                    .map_err(failed)?;
                tls.set_client_cert_verifier(verifier.clone());
                // ALPN: h2 for the browsers and clients that offer it, else HTTP/1.1.
                tls.enable_h2();
                proxy.add_tls_with_settings(&addr, None, tls);
            }
            _ => proxy.add_tcp(&addr),
        }
    }
    tracing::info!(listen = ?server.listen, tls = server.tls.is_some(), "portcullis starting");
    Ok(())
}

/// The background work, each on a runtime of its own; all of it starts after `-d` forks.
enum Task {
    /// Starts the log writer's thread in the process that serves.
    LogWriter,
    /// After a graceful shutdown began (listeners closed), tells main once no request is in
    /// flight.
    Drain(Arc<AtomicUsize>, Option<Box<dyn Fn() + Send + Sync>>),
    Health(Arc<ArcSwap<Runtime>>),
    Jwks(Arc<ArcSwap<Runtime>>, Clock),
    Reload(Reloader),
    Pruning(Arc<ArcSwap<Runtime>>, Arc<dyn Store>),
    /// Connects to Redis, follows revocations, keeps the freshness `on_failure` reads.
    RedisSync(Arc<RedisStore>),
    /// Follows `users_db`'s change log: API keys made or deleted on any instance.
    Accounts(Arc<Directory>, Clock),
    /// Sends the reset and verification mails.
    Mail(Mutex<Option<Outbox>>),
    /// Stores the audit trail; the registration hands this gateway's audit events to it.
    Audit {
        trail: Mutex<Option<Trail>>,
        _registered: audit::Registration,
    },
}

#[async_trait]
impl BackgroundService for Task {
    async fn start(&self, shutdown: ShutdownWatch) {
        match self {
            Task::LogWriter => crate::logs::start_queue(),
            Task::Drain(in_flight, on_drained) => {
                drain(in_flight, on_drained.as_deref(), shutdown).await
            }
            Task::Health(rt) => runtime::tasks::health_checks(rt.clone(), shutdown).await,
            Task::Jwks(rt, clock) => runtime::jwks::run(rt.clone(), clock.clone(), shutdown).await,
            Task::Reload(reloader) => reloader.run(shutdown).await,
            Task::Pruning(rt, store) => {
                runtime::tasks::pruning(rt.clone(), store.clone(), shutdown).await
            }
            Task::RedisSync(redis) => redis.clone().run(shutdown).await,
            Task::Accounts(directory, clock) => {
                let mut shutdown = shutdown;
                let stop = async move {
                    let _ = shutdown.changed().await;
                };
                directory.clone().follow(clock.clone(), stop).await
            }
            Task::Mail(outbox) => {
                let outbox = outbox.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(outbox) = outbox {
                    crate::mail::run(outbox, shutdown).await
                }
            }
            Task::Audit { trail, .. } => {
                let trail = trail.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(trail) = trail {
                    trail.run(shutdown).await
                }
            }
        }
    }
}

/// The mailer of `[mail]` (with `users_db`), and the outbox its task sends from.
fn mail(
    config: &Config,
    users_db: bool,
    metrics: &Arc<Metrics>,
) -> (Option<Mailer>, Option<Outbox>) {
    match (&config.mail, users_db) {
        (Some(settings), true) => {
            let (mailer, outbox) = Mailer::new(settings, metrics.clone());
            (Some(mailer), Some(outbox))
        }
        _ => (None, None),
    }
}

/// With `[audit] database`: the writer of the trail, and this gateway's audit events handed
/// to it.
fn trail(
    config: &Config,
    directory: Option<&Arc<Directory>>,
    options: &Options,
    metrics: &Arc<Metrics>,
) -> Option<(Trail, audit::Registration)> {
    let directory = directory.filter(|_| config.audit.database)?;
    let (rows, received) = tokio::sync::mpsc::channel(AUDIT_QUEUE);
    let counted = metrics.clone();
    let sink = audit::Sink {
        rows,
        clock: options.clock.clone(),
        dropped: Arc::new(move || counted.audit_dropped.inc()),
    };
    let registration = audit::register(&options.name, sink);
    let trail = Trail {
        directory: directory.clone(),
        rows: received,
        retention: config.audit.retention,
        clock: options.clock.clone(),
        metrics: metrics.clone(),
    };
    Some((trail, registration))
}

async fn drain(
    in_flight: &AtomicUsize,
    on_drained: Option<&(dyn Fn() + Send + Sync)>,
    mut shutdown: ShutdownWatch,
) {
    if shutdown.changed().await.is_err() {
        return;
    }
    loop {
        let n = in_flight.load(Ordering::Acquire);
        if n == 0 {
            tracing::info!("shutdown: no request in flight");
            if let Some(done) = on_drained {
                done();
            }
            return;
        }
        tracing::debug!(in_flight = n, "shutdown: waiting for requests in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Half the cores (at least one) verify passwords, at the lowest priority, with a queue of
/// 64 logins each: a storm beyond that is refused at once (503) rather than queued forever.
/// Its threads start with the first login, in the process that serves.
fn password_pool() -> PasswordPool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / 2).max(1);
    PasswordPool::new(threads, 64 * threads)
}
