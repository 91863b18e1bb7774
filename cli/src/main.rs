//! `dolly`: the command-line client of dollyd (see the CLI issue).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "dolly",
    version,
    about = "Throwaway MySQL/MariaDB databases from dollyd"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
