use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error, as the contract says.
    tollgate::cli::Cli::parse().execute()
}
