//! A PostgreSQL database of the test's own on the server of `PORTCULLIS_TEST_POSTGRES_URL`
//! (default: this machine kind's, `postgres://postgres@127.0.0.1:5432/postgres`): created
//! with a random name, dropped when the test ends. No server is a failure, not a skip.

use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

pub struct PgDatabase {
    name: String,
    server: String,
}

fn server_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The server's URL with another database name.
fn with_database(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("PORTCULLIS_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let server = server_url();
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server)
            .await
            .unwrap_or_else(|e| {
                panic!("no PostgreSQL at {server} ({e}): `bash .ci/run` starts one, or set PORTCULLIS_TEST_POSTGRES_URL")
            });
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        pool.close().await;
        PgDatabase { name, server }
    }

    pub fn url(&self) -> String {
        with_database(&self.server, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Its own thread and runtime: the test's may be gone or inside a task.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&server)
                    .await
                {
                    let _ = pool
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}
