//! Builds the Pingora server from a validated config: listeners, the proxy, background work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use crate::admin::AdminApp;
use crate::cli::RunArgs;
use crate::clock::{Clock, TEST_CLOCK_ENV};
use crate::config::{Backend, Config};
use crate::login::password::PasswordPool;
use crate::proxy::Gateway;
use crate::reload::Reloader;
use crate::store::{MemoryStore, RedisStore, Store};

/// Runs the gateway until the process is told to stop. Never returns.
pub fn run(config: Config, args: &RunArgs) -> ! {
    let conf = ServerConf {
        threads: config
            .server
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        // SIGTERM: stop accepting, let requests in flight finish (up to this long), exit. The
        // drain service below exits as soon as none is left, rather than waiting it out.
        grace_period_seconds: Some(DRAIN_FOR.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        pid_file: args.pid_file.to_string_lossy().into_owned(),
        upgrade_sock: args.upgrade_sock.to_string_lossy().into_owned(),
        daemon: args.daemon,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: args.upgrade,
        daemon: args.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    crate::metrics::metrics();
    let listen = config.server.listen.clone();
    let tls = config.server.tls.clone();
    let clock = Clock::from_env();
    if !matches!(clock, Clock::System) {
        tracing::warn!(
            "{TEST_CLOCK_ENV} is set: this gateway's clock is moved by a file (tests only)"
        );
    }
    let (store, redis): (Arc<dyn Store>, _) = match &config.store.backend {
        Backend::Memory => (Arc::new(MemoryStore::new(clock.clone())), None),
        Backend::Redis(settings) => {
            let redis = Arc::new(RedisStore::new(settings.clone(), clock.clone()));
            (redis.clone(), Some(redis))
        }
    };
    bind_global_limits(&config, &store);
    let clock_for_admin = clock.clone();
    let clock_for_jwks = clock.clone();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let gateway = Gateway {
        config: Arc::new(ArcSwap::from_pointee(config)),
        store: store.clone(),
        passwords: password_pool(),
        clock,
        in_flight: in_flight.clone(),
    };
    let snapshot = gateway.config.clone();
    let admin_listen = snapshot.load().server.admin_listen;
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "portcullis");
    for addr in &listen {
        let addr = addr.to_string();
        match &tls {
            Some(files) => {
                if let Err(e) = proxy.add_tls(
                    &addr,
                    &files.cert_file.to_string_lossy(),
                    &files.key_file.to_string_lossy(),
                ) {
                    eprintln!("portcullis: TLS on {addr}: {e}");
                    std::process::exit(1);
                }
            }
            None => proxy.add_tcp(&addr),
        }
    }
    tracing::info!(listen = ?listen, tls = tls.is_some(), "portcullis starting");
    server.add_service(proxy);
    if let Some(addr) = admin_listen {
        let app = AdminApp {
            config: snapshot.clone(),
            store: store.clone(),
            clock: clock_for_admin,
            readiness: Arc::new({
                let config = snapshot.clone();
                move || jwks_not_ready(&config.load())
            }),
        };
        let mut admin = pingora::services::listening::Service::new("admin".to_string(), app);
        admin.add_tcp(&addr.to_string());
        tracing::info!(admin_listen = %addr, "admin listener");
        server.add_service(admin);
    }
    server.add_service(background_service(
        "upstream health checks",
        HealthChecks {
            config: snapshot.clone(),
        },
    ));
    if let Some(redis) = redis {
        server.add_service(background_service("redis sync", RedisSync { redis }));
    }
    server.add_service(background_service("log writer", LogWriter));
    server.add_service(background_service("drain", Drain { in_flight }));
    server.add_service(background_service(
        "jwks",
        JwksFetcher {
            config: snapshot.clone(),
            clock: clock_for_jwks,
        },
    ));
    server.add_service(background_service(
        "config reload",
        Reloader {
            path: snapshot.load().path.clone(),
            config: snapshot.clone(),
            store: store.clone(),
        },
    ));
    server.add_service(background_service(
        "pruning",
        Pruning {
            config: snapshot,
            store,
        },
    ));
    server.run_forever()
}

/// `scope = "global"` policies count in the shared store once it exists.
pub fn bind_global_limits(config: &Config, store: &Arc<dyn Store>) {
    if let Some(shared) = store.clone().shared_buckets() {
        for policy in &config.rate_limits {
            policy.bind(&shared);
        }
    }
}

/// Starts the log writer's thread in the process that serves: services start after `-d` forks.
struct LogWriter;

#[async_trait]
impl BackgroundService for LogWriter {
    async fn start(&self, _shutdown: ShutdownWatch) {
        crate::logs::start_queue();
    }
}

/// The longest a SIGTERM waits for requests in flight.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// After SIGTERM (listeners closed), exits once no request is in flight.
struct Drain {
    in_flight: Arc<AtomicUsize>,
}

#[async_trait]
impl BackgroundService for Drain {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.changed().await.is_err() {
            return;
        }
        loop {
            let n = self.in_flight.load(Ordering::Acquire);
            if n == 0 {
                tracing::info!("shutdown: no request in flight, exiting");
                std::process::exit(0);
            }
            tracing::debug!(in_flight = n, "shutdown: waiting for requests in flight");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Readiness reasons: trusted issuers whose `jwks_url` has not been fetched yet.
fn jwks_not_ready(config: &Config) -> Vec<String> {
    config
        .remote_jwks
        .iter()
        .filter(|r| !r.is_ready())
        .map(|r| format!("jwks: the keys of `{}` have not been fetched yet", r.issuer))
        .collect()
}

/// Fetches the trusted issuers' `jwks_url` key sets when due.
struct JwksFetcher {
    config: Arc<ArcSwap<Config>>,
    clock: Clock,
}

#[async_trait]
impl BackgroundService for JwksFetcher {
    async fn start(&self, shutdown: ShutdownWatch) {
        crate::auth::jwks::run(self.config.clone(), self.clock.clone(), shutdown).await
    }
}

/// Connects to Redis, follows revocations, keeps the freshness that `on_failure` reads.
struct RedisSync {
    redis: Arc<RedisStore>,
}

#[async_trait]
impl BackgroundService for RedisSync {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.redis.clone().run(shutdown).await
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

/// Active health checks for every upstream that configures one, on the current snapshot.
struct HealthChecks {
    config: Arc<ArcSwap<Config>>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_due: HashMap<String, Instant> = HashMap::new();
        loop {
            let config = self.config.load_full();
            let now = Instant::now();
            for pool in &config.upstreams {
                let (Some(hc), Some(checker)) =
                    (&pool.settings.health_check, pool.health_checker())
                else {
                    continue;
                };
                let due = next_due.entry(pool.name().to_string()).or_insert(now);
                if *due <= now {
                    pool.check_health(checker.as_ref()).await;
                    *due = Instant::now() + hc.interval;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// How often idle rate-limit keys and expired shared state are forgotten. Between two runs
/// the limiters hold at most the keys seen in that time plus those whose bucket is still
/// refilling.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Drops every rate-limit key whose bucket is full again, so that a flood of distinct client
/// IPs leaves nothing behind once it stops, and whatever in the store has expired.
struct Pruning {
    config: Arc<ArcSwap<Config>>,
    store: Arc<dyn Store>,
}

#[async_trait]
impl BackgroundService for Pruning {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            let config = self.config.load_full();
            let store = self.store.clone();
            // A flood's map can take milliseconds to sweep: keep that off the event loop.
            let swept = tokio::task::spawn_blocking(move || {
                store.prune();
                for policy in &config.rate_limits {
                    policy.limiter().prune();
                }
                config
                    .rate_limits
                    .iter()
                    .map(|p| p.limiter().tracked_keys())
                    .sum::<usize>()
            })
            .await;
            if let Ok(keys) = swept {
                tracing::debug!(keys, "rate-limit keys after pruning");
            }
        }
    }
}
