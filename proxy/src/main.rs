//! The `fastlb` binary: parse arguments, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    fastlb::app::run(fastlb::cli::Cli::parse())
}
