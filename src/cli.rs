//! The command line (docs/OPERATIONS.md, "Commands").

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::logs::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A reverse-proxy authentication gateway"
)]
pub struct Cli {
    /// The gateway config file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "gateway.toml"
    )]
    pub config: PathBuf,
    /// Log format for `run`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run(RunArgs),
    /// Validate the config and every file it references.
    Check,
    /// Print a new API key, then the `[[api_keys]]` block holding only its SHA-256.
    NewApiKey {
        #[arg(long)]
        id: String,
        #[arg(long)]
        subject: Option<String>,
        /// Comma-separated roles.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Read a password from stdin and print its argon2id PHC string for users.toml.
    HashPassword,
    /// Print new single-use MFA backup codes, then the `backup_codes_sha256` line.
    NewBackupCodes {
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Manage the users of `[login] users_db`.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Print an access token signed with the configured key.
    Token {
        #[arg(long)]
        sub: String,
        /// Comma-separated roles.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Lifetime, e.g. `1h` (default: `[tokens].access_ttl`).
        #[arg(long)]
        ttl: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Copy a users file's users (hashes, roles, claims, MFA) into users_db, as they are.
    Import { file: PathBuf },
    /// Add a user; the password is read from stdin.
    Add {
        name: String,
        /// Comma-separated roles.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long)]
        subject: Option<String>,
    },
}

/// How `run` starts: in the foreground by default; `-d` and `-u` are for a graceful binary
/// upgrade under systemd (docs/OPERATIONS.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Take the listening sockets over from the running instance (then send it SIGQUIT).
    #[arg(short = 'u', long)]
    pub upgrade: bool,
    /// Run in the background, writing `--pid-file` (systemd `Type=forking`).
    #[arg(short = 'd', long)]
    pub daemon: bool,
    #[arg(long, default_value = "/tmp/portcullis.pid")]
    pub pid_file: PathBuf,
    /// Where the old and the new instance hand the listening sockets over.
    #[arg(long, default_value = "/tmp/portcullis_upgrade.sock")]
    pub upgrade_sock: PathBuf,
}
