//! `m2mguard`: parse the command line, load and validate the configuration before anything
//! binds a port, run the subcommand, map the outcome to an exit code.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("m2mguard: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_STARTUP);
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("m2mguard: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
