//! The command line: `run` and `check`, with the contract's exit codes
//! (0 ok, 1 invalid configuration or failed check, 2 usage error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LoadError};
use crate::logging::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about = "OAuth2 app-to-app security sidecar")]
pub struct Cli {
    /// Log format: json or text (default: text on a terminal, json otherwise).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log level or filter, e.g. `info` or `tollgate=debug` (default: RUST_LOG, else info).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: the admin, inbound and outbound parts the file configures.
    Run(ConfigFile),
    /// Validate the configuration file offline: `ok`, or every problem with its key path.
    Check(ConfigFile),
}

#[derive(Debug, Args)]
pub struct ConfigFile {
    /// The configuration file.
    #[arg(short = 'c', long = "config", env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
}

pub const EXIT_INVALID: u8 = 1;

impl Cli {
    pub fn execute(self) -> ExitCode {
        logging::init(self.log_format, self.log_level.as_deref());
        match self.command {
            Command::Check(args) => check(&args.config),
            Command::Run(args) => run(&args.config),
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(&e);
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match runtime.block_on(crate::sidecar::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tollgate failed");
            eprintln!("tollgate: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Every problem on its own line, then a summary.
fn report(error: &LoadError) {
    match error {
        LoadError::Read { .. } => eprintln!("tollgate: {error}"),
        LoadError::Invalid { path, errors } => {
            for e in errors {
                eprintln!("{}: {e}", path.display());
            }
            eprintln!("{error}");
        }
    }
}
