use std::process::ExitCode;

use clap::Parser;
use portcullis::cli::{Cli, Command, UsersCommand};
use portcullis::commands;

/// Every proxied request allocates and frees many small buffers on one thread after another;
/// mimalloc's thread-local free lists keep that cheap (glibc's malloc showed as a sixth of
/// the proxy's CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(Default::default())) {
        Command::Run(run) => {
            portcullis::logs::init(cli.log_format);
            commands::run(&cli.config, run, || std::process::exit(0))
        }
        Command::Check => commands::check(&cli.config),
        Command::Token { sub, roles, ttl } => {
            commands::token(&cli.config, &sub, &roles, ttl.as_deref())
        }
        Command::NewApiKey { id, subject, roles } => {
            commands::new_api_key(&id, subject.as_deref(), &roles);
            ExitCode::SUCCESS
        }
        Command::HashPassword => commands::hash_password(),
        Command::Users { action } => match action {
            UsersCommand::Import { file } => commands::users_import(&cli.config, &file),
            UsersCommand::Add {
                name,
                roles,
                subject,
            } => commands::users_add(&cli.config, &name, &roles, subject.as_deref()),
        },
        Command::NewBackupCodes { count } => {
            commands::new_backup_codes(count);
            ExitCode::SUCCESS
        }
    }
}
