//! The subcommands (docs/OPERATIONS.md, "Commands"), as `main` dispatches them: each prints what it makes and
//! answers the exit code. Only `main` exits the process (`serve`'s `exit` is called once a
//! SIGTERM's drain is over).

use std::process::ExitCode;

mod users;

use crate::cli::RunArgs;
use crate::config::{self, Config};
use crate::units::parse_duration;
pub use users::{add as users_add, import as users_import};

/// `run`: loads the config (every error reported) and serves until told to stop.
pub fn run(path: &std::path::Path, args: RunArgs, exit: fn()) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "portcullis: refusing to start: {} error(s) in the config",
                errors.0.len()
            );
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    serve(loaded.config, args, exit)
}

/// Runs the gateway until it is told to stop; exits once a SIGTERM's drain is over.
fn serve(config: Config, run: RunArgs, exit: fn()) -> ExitCode {
    let options = crate::app::Options {
        daemon: run.daemon,
        upgrade: run.upgrade,
        pid_file: run.pid_file,
        upgrade_sock: run.upgrade_sock,
        on_drained: Some(Box::new(exit)),
        ..Default::default()
    };
    match crate::app::build(config, options) {
        Ok(built) => {
            built.run();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The key alone on the first line (shown once, never stored), then the config block.
pub fn new_api_key(id: &str, subject: Option<&str>, roles: &[String]) {
    use crate::auth::apikey;
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let key = apikey::generate();
    println!("{key}\n");
    println!("[[api_keys]]");
    println!("id = {}", quote(id));
    println!("key_sha256 = {}", quote(&apikey::sha256_hex(&key)));
    if let Some(s) = subject {
        println!("subject = {}", quote(s));
    }
    if !roles.is_empty() {
        let list: Vec<String> = roles.iter().map(|r| quote(r)).collect();
        println!("roles = [{}]", list.join(", "));
    }
}

/// One line of stdin (one trailing newline dropped) -> an argon2id PHC string.
pub fn hash_password() -> ExitCode {
    match read_password() {
        Ok(input) => {
            println!("{}", crate::accounts::password::hash(&input));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// A password from stdin, without its line end; an empty one is refused.
fn read_password() -> Result<Vec<u8>, ExitCode> {
    use std::io::Read;
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("portcullis: cannot read the password from stdin: {e}");
        return Err(ExitCode::FAILURE);
    }
    if input.ends_with(b"\n") {
        input.pop();
        if input.ends_with(b"\r") {
            input.pop();
        }
    }
    if input.is_empty() {
        eprintln!("portcullis: refusing an empty password");
        return Err(ExitCode::FAILURE);
    }
    Ok(input)
}

/// The codes (shown once), a blank line, then the digests for users.toml.
pub fn new_backup_codes(count: usize) {
    use crate::accounts::mfa;
    let codes = mfa::new_backup_codes(count.max(1));
    for c in &codes {
        println!("{c}");
    }
    let digests: Vec<String> = codes
        .iter()
        .map(|c| format!("\"{}\"", hex::encode(mfa::backup_code_digest(c))))
        .collect();
    println!("\nbackup_codes_sha256 = [{}]", digests.join(", "));
}

pub fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w} (warning)");
            }
            let c = &loaded.config;
            let users = match c.login.as_ref() {
                Some(l) if l.users_db.is_some() => ", users in users_db".to_string(),
                Some(l) => format!(", {} user(s)", l.users.len()),
                None => String::new(),
            };
            println!(
                "{}: ok: {} route(s), {} upstream(s), {} listener(s){users}",
                path.display(),
                c.routes.len(),
                c.upstreams.len(),
                c.server.listen.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

pub fn token(path: &std::path::Path, sub: &str, roles: &[String], ttl: Option<&str>) -> ExitCode {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let Some(signer) = &loaded.config.signer else {
        eprintln!("portcullis: no [tokens] section: nothing to sign with");
        return ExitCode::FAILURE;
    };
    let ttl = match ttl.map(parse_duration) {
        None => signer.access_ttl,
        Some(Ok(d)) => d.as_secs(),
        Some(Err(e)) => {
            eprintln!("portcullis: --ttl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_ttl = loaded.config.lifetimes.max_ttl;
    if ttl > max_ttl {
        eprintln!(
            "portcullis: --ttl: {ttl}s is longer than [tokens] max_ttl ({max_ttl}s): the gateway would refuse the token"
        );
        return ExitCode::FAILURE;
    }
    let grants = loaded.config.roles.grants(roles, &[]);
    let permissions: Vec<String> = grants.permissions.into_iter().collect();
    let now = crate::clock::Clock::System.now();
    match signer.access_token(sub, roles, &permissions, ttl, now, None) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis: cannot sign: {e}");
            ExitCode::FAILURE
        }
    }
}
