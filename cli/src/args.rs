//! The command line: every command, option and help text.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use dolly_types::{InstanceName, TemplateName};

use crate::duration::parse_ttl;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  any error: dollyd unreachable, a server error, an unexpected answer
  2  usage error: unknown command or option, a missing or invalid argument
  3  not found: the template or the instance does not exist
  4  already exists: `dolly new` on a name that is taken

In CI:
  eval \"$(dolly env shop ci-$JOB --ttl 1h)\"   # creates it unless it exists
  ...run the tests against $DATABASE_URL or $MYSQL_HOST:$MYSQL_PORT...
  dolly rm shop ci-$JOB";

/// Throwaway MySQL/MariaDB databases from dollyd.
#[derive(Debug, Parser)]
#[command(name = "dolly", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// dollyd's address.
    #[arg(
        long,
        env = "DOLLY_URL",
        default_value = "http://localhost:5001",
        global = true,
        value_name = "URL"
    )]
    pub url: String,

    /// A token sent to dollyd as `Authorization: Bearer TOKEN`.
    #[arg(
        long,
        env = "DOLLY_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Print the API's JSON instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only what was asked: no spinner, notes or confirmations; `new`
    /// prints nothing, `ls` and `templates` print names only.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// A template and an instance of it.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The template (a dump's name), e.g. `shop`.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The instance's name, unique within its template, e.g. `ci-1234`.
    #[arg(value_name = "NAME")]
    pub name: InstanceName,
}

/// How `url`, `env` and `shell` obtain their instance.
#[derive(Debug, Clone, Args)]
pub struct Obtain {
    /// If the instance has to be created: when it expires (30s, 15m, 2h, 3d,
    /// seconds, or never); dollyd's default when absent. Ignored if it
    /// exists.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Option<Duration>,

    /// Fail with exit code 3 if the instance does not exist, instead of
    /// creating it.
    #[arg(long, conflicts_with = "ttl")]
    pub no_create: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an instance and print how to connect to it (fab db.new)
    #[command(visible_alias = "create")]
    New {
        #[command(flatten)]
        target: Target,
        /// When it expires: 30s, 15m, 2h, 3d, 1h30m, seconds, or never (where
        /// dollyd's max_ttl allows); dollyd's default when absent.
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },

    /// Show an instance's connection, state and expiry (fab db.info)
    ///
    /// Prints the same fields as `new` plus the state, when it was created
    /// and the template version it was cloned from.
    #[command(visible_alias = "info")]
    Show {
        #[command(flatten)]
        target: Target,
    },

    /// Open the mariadb (or mysql) client on an instance (fab db.shell)
    ///
    /// Creates the instance first unless it exists (or --no-create).
    /// Arguments after NAME go to the client as they are, so
    /// `dolly shell shop ci-1 -e "select 1"` works in scripts; dolly's own
    /// options go before TEMPLATE. The password is passed in MYSQL_PWD,
    /// never on the command line. Exits with the client's exit code.
    Shell {
        #[command(flatten)]
        obtain: Obtain,
        #[command(flatten)]
        target: Target,
        /// Passed to the client as they are.
        #[arg(
            value_name = "CLIENT_ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        args: Vec<OsString>,
    },

    /// Remove instances, their containers and data (fab db.rm)
    #[command(visible_alias = "remove")]
    Rm {
        /// The template of the instances.
        #[arg(value_name = "TEMPLATE")]
        template: TemplateName,
        /// One or more instance names.
        #[arg(value_name = "NAME", required = true, num_args = 1..)]
        names: Vec<InstanceName>,
        /// Succeed for instances that do not exist (exit 0 instead of 3).
        #[arg(short, long)]
        force: bool,
    },

    /// List instances, of every template or of one (fab db.ls)
    #[command(visible_alias = "list")]
    Ls {
        /// Only the instances of this template.
        #[arg(value_name = "TEMPLATE")]
        template: Option<TemplateName>,
    },

    /// List templates: version, size, last import (fab db.templates)
    ///
    /// With a TEMPLATE, list that template's versions instead.
    Templates {
        /// Show this template's versions.
        #[arg(value_name = "TEMPLATE")]
        template: Option<TemplateName>,
    },

    /// Print the engine's inspection of an instance's container (fab db.container)
    ///
    /// Always JSON: the container engine's own inspection document.
    Container {
        #[command(flatten)]
        target: Target,
    },

    /// Print the instance's mysql:// URL, creating it if needed
    ///
    /// One line, `mysql://user:password@host:port/database`, with the user
    /// and password percent-encoded. Creates the instance first unless it
    /// exists (or --no-create).
    Url {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        obtain: Obtain,
    },

    /// Print shell export lines for the instance, creating it if needed
    ///
    /// Sets MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD,
    /// MYSQL_DATABASE and DATABASE_URL; every value is single-quoted, so the
    /// output is safe to eval: eval "$(dolly env shop ci-1 --ttl 1h)".
    /// Creates the instance first unless it exists (or --no-create).
    Env {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        obtain: Obtain,
    },

    /// Print a shell completion script (bash, zsh, fish, ...)
    ///
    /// e.g. dolly completions bash > /etc/bash_completion.d/dolly
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("dolly").chain(args.iter().copied()))
    }

    #[test]
    fn shell_passes_client_arguments_through() {
        let cli = parse(&["shell", "shop", "x", "-e", "select 1", "--batch"]).expect("parse");
        let Command::Shell { args, target, .. } = cli.command else {
            panic!("not shell");
        };
        assert_eq!(target.name.as_str(), "x");
        assert_eq!(args, ["-e", "select 1", "--batch"]);

        let cli =
            parse(&["shell", "--ttl", "1h", "shop", "x", "--", "-e", "select 2"]).expect("parse");
        let Command::Shell { args, obtain, .. } = cli.command else {
            panic!("not shell");
        };
        assert_eq!(obtain.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(args, ["-e", "select 2"]);
    }

    #[test]
    fn names_are_checked_before_any_request() {
        let e = parse(&["show", "Shop", "x"]).expect_err("bad name");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("lowercase"), "{e}");
        let e = parse(&["new", "shop", "../x"]).expect_err("bad name");
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["new", "shop", "x", "--ttl", "soon"]).expect_err("bad ttl");
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["rm", "shop"]).expect_err("no names");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn aliases_and_globals_parse() {
        let cli = parse(&["create", "shop", "a", "--ttl", "15m", "--json"]).expect("parse");
        assert!(cli.json);
        assert!(matches!(cli.command, Command::New { ttl: Some(d), .. } if d.as_secs() == 900));
        let cli = parse(&["info", "shop", "a", "-q", "--url", "http://h:1"]).expect("parse");
        assert!(cli.quiet);
        assert_eq!(cli.url, "http://h:1");
        assert!(matches!(cli.command, Command::Show { .. }));
        let cli = parse(&["rm", "shop", "a", "b", "-f"]).expect("parse");
        assert!(
            matches!(cli.command, Command::Rm { ref names, force: true, .. } if names.len() == 2)
        );
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "Exit codes:",
            "3  not found",
            "4  already exists",
            "DOLLY_URL",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
