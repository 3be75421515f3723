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
    /// Validate the configuration file: `ok`, or every problem with its key path.
    Check(CheckArgs),
    /// Show the whole loop on loopback: a development issuer, a legacy service, an inbound
    /// and an outbound tollgate, and a few requests explained. No files, no network.
    Demo(DemoArgs),
    /// The inbound decision for one request: route, token checks, each requirement, status.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave everything running afterwards and print commands to try (Ctrl-C stops).
    #[arg(long)]
    pub keep_running: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// The access token, or `@FILE` to read it from a file.
    #[arg(long, value_name = "JWT|@FILE")]
    pub token: Option<String>,
    /// The request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The request path (a query is ignored).
    #[arg(long)]
    pub path: String,
    /// A request header, `NAME:VALUE` (repeatable): e.g. `X-HTTP-Method-Override:DELETE`.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Do not check the signature (no keys are loaded): a claims-only decision.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct ConfigFile {
    /// The configuration file.
    #[arg(short = 'c', long = "config", env = "TOLLGATE_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    /// Also fetch every issuer's discovery document and keys, and acquire one token per
    /// credential; report each (never a token or secret).
    #[arg(long)]
    pub online: bool,
}

pub const EXIT_INVALID: u8 = 1;

impl Cli {
    pub fn execute(self) -> ExitCode {
        // Commands that print for people keep the logs to warnings unless asked.
        let quiet = matches!(self.command, Command::Demo(_) | Command::Explain(_));
        let level = self.log_level.as_deref().or(quiet.then_some("warn"));
        let _logs = logging::init(self.log_format, level);
        match self.command {
            Command::Check(args) => check(&args.file.config, args.online),
            Command::Run(args) => run(&args.config),
            Command::Demo(args) => demo(args.keep_running),
            Command::Explain(args) => explain(args),
        }
    }
}

fn check(path: &std::path::Path, online: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if online {
        let runtime = match runtime() {
            Ok(rt) => rt,
            Err(code) => return code,
        };
        let findings = runtime.block_on(crate::online::check(&config));
        let failed = findings.iter().filter(|f| f.outcome.is_err()).count();
        for finding in &findings {
            println!("{finding}");
        }
        if failed > 0 {
            eprintln!("{failed} online check(s) failed for {}", path.display());
            return ExitCode::from(EXIT_INVALID);
        }
    }
    println!("ok");
    ExitCode::SUCCESS
}

fn demo(keep_running: bool) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(crate::demo::run(keep_running)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_INVALID),
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn explain(args: ExplainArgs) -> ExitCode {
    let config = match Config::load(&args.file.config) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let method = match http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            eprintln!("tollgate: `{}` is not an HTTP method", args.method);
            return ExitCode::from(2);
        }
    };
    let token = match args.token.as_deref() {
        Some(t) if t.starts_with('@') => match std::fs::read_to_string(&t[1..]) {
            Ok(text) => Some(text.trim().to_string()),
            Err(e) => {
                eprintln!("tollgate: cannot read the token file {}: {e}", &t[1..]);
                return ExitCode::from(EXIT_INVALID);
            }
        },
        Some(t) => Some(t.trim().trim_start_matches("Bearer ").to_string()),
        None => None,
    };
    let headers = match header_map(&args.headers) {
        Ok(h) => h,
        Err(why) => {
            eprintln!("tollgate: {why}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let asked = crate::explain::Asked {
        method: &method,
        path: &args.path,
        headers: &headers,
        token: token.as_deref(),
    };
    let explanation = runtime.block_on(crate::explain::explain(&config, &asked, !args.no_verify));
    print!("{}", explanation.text);
    if explanation.status == 0 {
        return ExitCode::from(EXIT_INVALID);
    }
    ExitCode::SUCCESS
}

/// `NAME:VALUE` arguments as request headers.
fn header_map(args: &[String]) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    for arg in args {
        let (name, value) = arg
            .split_once(':')
            .ok_or_else(|| format!("--header `{arg}` is not NAME:VALUE"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("--header: `{}` is not a header name", name.trim()))?;
        let value = http::HeaderValue::from_str(value.trim())
            .map_err(|_| format!("--header: the value for `{name}` is not a header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tollgate: cannot start the runtime: {e}");
            ExitCode::from(EXIT_INVALID)
        })
}

/// Each connection is a file descriptor (two when forwarded): raise the soft limit to the
/// hard one, as Go does, and say so when even that is below what the listeners allow.
fn raise_open_files_limit(config: &Config) {
    let wanted: u64 = [
        config.admin.as_ref().map(|a| a.limits.max_connections),
        config.inbound.as_ref().map(|i| i.limits.max_connections * 2),
        config.outbound.as_ref().map(|o| o.limits.max_connections * 2),
    ]
    .into_iter()
    .flatten()
    .sum::<usize>() as u64
        + 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            open_files = limit,
            wanted,
            "the open-files limit is below what max_connections allows; lower limits.max_connections or raise the limit"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
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
    raise_open_files_limit(&config);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(crate::sidecar::run(config, path.to_path_buf())) {
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
