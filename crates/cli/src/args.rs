//! The command line: every command, option and help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::commands;
use dolly_types::{InstanceName, SnapshotName, TemplateName};

use dolly_types::human::parse_ttl;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  any error: dollyd unreachable, a server error, an unexpected answer
  2  usage error: unknown command or option, a missing or invalid argument
  3  not found: the template, the instance or the snapshot does not exist
  4  already exists: `dolly new` or `dolly import` on a name that is taken,
     `dolly snapshot` on a snapshot name that is taken
  (an instance that is protected: exit 1; `dolly rm --force` removes it)

In CI:
  eval \"$(dolly env shop ci-$JOB --ttl 1h)\"   # creates it unless it exists
  ...run the tests against $DATABASE_URL or $MYSQL_HOST:$MYSQL_PORT...
  dolly rm shop ci-$JOB
  dolly ci shop        # GitHub Actions, GitLab CI: pr-N/mr-N, variables for later steps
  dolly ci --down shop # its cleanup

Saving and sharing states:
  dolly snapshot shop alice before -m \"before the migration\"
  dolly restore shop alice before            # back to it, same port and password
  dolly new shop bob --from alice@before     # a branch of it
  dolly promote shop alice@before shop-bug   # a template others can clone
  dolly export shop alice@before a.tar.zst   # a file, for another dollyd:
  dolly --url http://other:5001 import a.tar.zst shop alice";

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

    /// A PEM file of the CA (or the self-signed certificate) that signed
    /// dollyd's certificate, trusted for an https:// URL instead of the
    /// system's roots.
    #[arg(long, env = "DOLLY_CA_CERT", global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Send the token over plain http:// to a host that is not this machine
    /// anyway (it, and the passwords in the answers, cross the network in
    /// clear); refused without it.
    #[arg(long, env = "DOLLY_INSECURE_HTTP", global = true)]
    pub insecure_http: bool,

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
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Target {
    /// The template (a dump's name), e.g. `shop`.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The instance's name, unique within its template, e.g. `ci-1234`.
    #[arg(value_name = "NAME")]
    pub name: InstanceName,
}

/// A snapshot of an instance: `NAME@SNAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapRef {
    pub name: InstanceName,
    pub snapshot: SnapshotName,
}

impl std::fmt::Display for SnapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.snapshot)
    }
}

/// Parses `NAME@SNAP`, both names checked with the server's rules.
pub fn parse_snap_ref(s: &str) -> Result<SnapRef, String> {
    let (name, snapshot) = s
        .split_once('@')
        .ok_or_else(|| format!("{s:?} is not NAME@SNAPSHOT (e.g. alice@before)"))?;
    Ok(SnapRef {
        name: InstanceName::parse(name).map_err(|e| e.to_string())?,
        snapshot: SnapshotName::parse(snapshot).map_err(|e| e.to_string())?,
    })
}

/// What `dolly snapshot` was asked: take a snapshot or remove one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotAction {
    Take {
        target: Target,
        snapshot: SnapshotName,
        message: Option<String>,
    },
    Remove {
        target: Target,
        snapshot: SnapshotName,
    },
}

/// `dolly snapshot [rm] TEMPLATE NAME SNAP`: three words take a snapshot,
/// four starting with `rm` remove one, so a template named `rm` needs no
/// escaping (`dolly snapshot rm NAME SNAP` takes one of it).
#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    /// `TEMPLATE NAME SNAP` to take one; `rm TEMPLATE NAME SNAP` to remove one.
    #[arg(value_name = "WORDS", num_args = 3..=4, required = true)]
    pub words: Vec<String>,

    /// A note kept with the snapshot, shown by `dolly snapshots`.
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,
}

impl SnapshotArgs {
    /// The action, or a usage error (exit 2) as clap would report it.
    pub fn action(&self) -> Result<SnapshotAction, clap::Error> {
        let usage = |kind: ErrorKind, msg: String| {
            let mut cmd = Cli::command();
            let sub = cmd.find_subcommand_mut("snapshot").cloned();
            sub.unwrap_or(cmd).error(kind, msg)
        };
        let invalid = |what: &str, e: dolly_types::NameError| {
            usage(
                ErrorKind::ValueValidation,
                format!("invalid value for {what}: {e}"),
            )
        };
        let (remove, words) = match self.words.as_slice() {
            [rm, rest @ ..] if rest.len() == 3 && rm == "rm" => (true, rest),
            [_, _, _, _] => {
                return Err(usage(
                    ErrorKind::InvalidValue,
                    format!(
                        "{:?} is not a subcommand: use `dolly snapshot TEMPLATE NAME SNAP` to take a snapshot or `dolly snapshot rm TEMPLATE NAME SNAP` to remove one",
                        self.words[0]
                    ),
                ))
            }
            rest => (false, rest),
        };
        let [t, n, s] = words else {
            return Err(usage(
                ErrorKind::WrongNumberOfValues,
                "expected TEMPLATE NAME SNAP".to_owned(),
            ));
        };
        let target = Target {
            template: TemplateName::parse(t).map_err(|e| invalid("TEMPLATE", e))?,
            name: InstanceName::parse(n).map_err(|e| invalid("NAME", e))?,
        };
        let snapshot = SnapshotName::parse(s).map_err(|e| invalid("SNAP", e))?;
        if remove {
            if self.message.is_some() {
                return Err(usage(
                    ErrorKind::ArgumentConflict,
                    "--message is for taking a snapshot, not removing one".to_owned(),
                ));
            }
            return Ok(SnapshotAction::Remove { target, snapshot });
        }
        Ok(SnapshotAction::Take {
            target,
            snapshot,
            message: self.message.clone(),
        })
    }
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

/// `dolly ci`.
#[derive(Debug, Clone, Args)]
pub struct CiArgs {
    /// The template, e.g. `shop`.
    #[arg(value_name = "TEMPLATE")]
    pub template: TemplateName,
    /// The instance's name; default: from the pipeline's variables.
    #[arg(value_name = "NAME")]
    pub name: Option<InstanceName>,
    /// The lease: when a new instance expires (dollyd's default when
    /// absent); a reused one is extended to last at least this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl, conflicts_with = "down")]
    pub ttl: Option<Duration>,
    /// Create it from a snapshot of another instance of the template.
    #[arg(long, value_name = "NAME@SNAP", value_parser = parse_snap_ref, conflicts_with = "down")]
    pub from: Option<SnapRef>,
    /// Remove the instance instead (cleanup; succeeds when it is gone).
    #[arg(long)]
    pub down: bool,
    /// On GitLab CI: the dotenv file to write.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "dolly.env",
        conflicts_with = "down"
    )]
    pub dotenv: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an instance and print how to connect to it (fab db.new)
    #[command(visible_alias = "create")]
    New(commands::new::Args),

    /// Show an instance's connection, state and expiry (fab db.info)
    ///
    /// Prints the same fields as `new` plus the state, when it was created,
    /// the template version it was cloned from and whether it is protected.
    #[command(visible_alias = "info")]
    Show(commands::show::Args),

    /// Open the mariadb (or mysql) client on an instance (fab db.shell)
    ///
    /// Creates the instance first unless it exists (or --no-create).
    /// Arguments after NAME go to the client as they are, so
    /// `dolly shell shop ci-1 -e "select 1"` works in scripts; dolly's own
    /// options go before TEMPLATE. The password is passed in MYSQL_PWD,
    /// never on the command line. Exits with the client's exit code.
    Shell(commands::shell::Args),

    /// Remove instances, their containers and data (fab db.rm)
    #[command(visible_alias = "remove")]
    Rm(commands::rm::Args),

    /// Push an instance's expiry back: `dolly extend shop alice 1h`
    ///
    /// Adds DURATION to the expiry (counted from now if it already passed);
    /// `0`, `none` or `never` removes the expiry, where dollyd's max_ttl
    /// allows it.
    Extend(commands::extend::Args),

    /// Keep an instance from the reaper and from cleanup
    ///
    /// A protected instance never expires away and `dolly rm` refuses it
    /// unless given --force.
    Protect(commands::protect::Args),

    /// Lift `protect`
    Unprotect(commands::unprotect::Args),

    /// Stop an instance's server; its data, port and password stay
    Stop(commands::stop::Args),

    /// Start a stopped instance again, on the same port with the same password
    Start(commands::start::Args),

    /// Put an instance back to its template's data (or a snapshot's)
    ///
    /// By default back to the template version it was cloned from; with
    /// --latest to the template's current version; with --to to one of its
    /// snapshots. The name, port and password stay, so clients only
    /// reconnect.
    Reset(commands::reset::Args),

    /// Save an instance's data as SNAP, or remove a snapshot
    ///
    /// `dolly snapshot TEMPLATE NAME SNAP [-m MESSAGE]` takes one: the
    /// instance's server stops for a moment so the copy is consistent, then
    /// runs again on the same port. `dolly snapshot rm TEMPLATE NAME SNAP`
    /// removes one. Three names take, `rm` and three names remove, so a
    /// template may even be called `rm`.
    #[command(
        override_usage = "dolly snapshot [OPTIONS] TEMPLATE NAME SNAP\n       dolly snapshot rm TEMPLATE NAME SNAP"
    )]
    Snapshot(SnapshotArgs),

    /// List an instance's snapshots: name, when, message, size
    Snapshots(commands::snapshots::Args),

    /// Put an instance back to one of its snapshots (reset --to SNAP)
    Restore(commands::restore::Args),

    /// Publish a snapshot as the new current version of a template
    ///
    /// `dolly promote shop alice@bug shop-bug` makes a template `shop-bug`
    /// (or a new version of it) from alice's snapshot `bug`, that anyone can
    /// clone with `dolly new shop-bug NAME`.
    Promote(commands::promote::Args),

    /// Save a snapshot as an archive file, to import on another dollyd
    ///
    /// `dolly export shop alice@before alice.tar.zst` writes the snapshot's
    /// data with a manifest (tar + zstd), streamed as it comes: to a
    /// temporary file next to FILE, renamed to FILE once complete, so FILE
    /// is never half written. `-` writes to stdout (the summary then goes
    /// to stderr). Prints the size written; --json prints {"file", "bytes"}.
    Export(commands::export::Args),

    /// Move a snapshot to another dolly server, server to server
    ///
    /// `dolly push shop alice@before --remote https://other:5001
    /// --remote-token TOKEN [--as NAME]`: this server streams the
    /// snapshot's archive straight into the other server, which creates an
    /// instance from it (nothing is written on this machine). A different
    /// database server version there is refused before any data moves.
    /// Prints the new instance there, as `new` does.
    Push(commands::push::Args),

    /// Create an instance from an archive made by `dolly export`
    ///
    /// `dolly --url http://other:5001 import alice.tar.zst shop alice`
    /// sends the archive (streamed; `-` reads stdin) and prints the new
    /// instance as `new` does: the same data, its own port and password.
    /// The template need not exist on that dollyd, but its server version
    /// must be the one that exported it: a damaged archive or another
    /// version is refused (exit 1, with dollyd's reason); a taken NAME is
    /// exit 4.
    Import(commands::import::Args),

    /// Disk used by template versions, instances and snapshots
    ///
    /// Apparent sizes: blocks that reflink clones share are counted in each
    /// owner, so the sum can exceed what the disk really holds.
    Df(commands::df::Args),

    /// What an instance's schema changed against its template (a migration
    /// rehearsal)
    ///
    /// Tables, columns, indexes, foreign keys, table options, views,
    /// triggers, routines and events added, dropped or modified since the
    /// instance was cloned (or since its snapshot `--against SNAP`).
    /// `--sql` prints the DDL that replays the change on another clone;
    /// `--explain` runs it on a throwaway clone with the full data and says
    /// how each ALTER behaves (INSTANT, INPLACE or COPY) and how long it
    /// took. `--json` gives the API's answer.
    Diff(commands::diff::Args),

    /// A database for a CI job in one step: create or reuse, wait, export
    ///
    /// `dolly ci TEMPLATE [NAME]` creates the instance, or reuses it when it
    /// exists (and is yours: another user's is exit 4), waits until it
    /// accepts connections (starting it if it was stopped), and hands the
    /// job DATABASE_URL, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD,
    /// MYSQL_DATABASE and DOLLY_NAME: on GitHub Actions in $GITHUB_ENV and
    /// $GITHUB_OUTPUT (the password and URL masked with ::add-mask::), on
    /// GitLab CI in a dotenv file (--dotenv, for artifacts:reports:dotenv),
    /// elsewhere as shell `export` lines on stdout. Without NAME, the
    /// pipeline names it: pr-N / mr-N for a pull or merge request, else
    /// branch-BRANCH, else job-... . `dolly ci --down TEMPLATE [NAME]`
    /// removes it (already gone, or protected: exit 0).
    Ci(CiArgs),

    /// Show or set a template's warm pool: ready instances handed out at once
    ///
    /// `dolly pool shop` prints the pool's size and how many members are
    /// ready; `dolly pool shop 4` keeps 4 ready (0: none). Each member is a
    /// running server (~31 MiB idle).
    Pool(commands::pool::Args),

    /// List instances, of every template or of one (fab db.ls)
    #[command(visible_alias = "list")]
    Ls(commands::ls::Args),

    /// List templates: version, size, last import (fab db.templates)
    ///
    /// With a TEMPLATE, list that template's versions instead.
    Templates(commands::templates::Args),

    /// Print the engine's inspection of an instance's container (fab db.container)
    ///
    /// Always JSON: the container engine's own inspection document.
    Container(commands::container::Args),

    /// Print the instance's mysql:// URL, creating it if needed
    ///
    /// One line, `mysql://user:password@host:port/database`, with the user
    /// and password percent-encoded. Creates the instance first unless it
    /// exists (or --no-create).
    Url(commands::url::Args),

    /// Print shell export lines for the instance, creating it if needed
    ///
    /// Sets MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD,
    /// MYSQL_DATABASE and DATABASE_URL; every value is single-quoted, so the
    /// output is safe to eval: eval "$(dolly env shop ci-1 --ttl 1h)".
    /// Creates the instance first unless it exists (or --no-create).
    Env(commands::env::Args),

    /// Print a shell completion script (bash, zsh, fish, ...)
    ///
    /// e.g. dolly completions bash > /etc/bash_completion.d/dolly
    Completions(commands::completions::Args),
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
        let Command::Shell(commands::shell::Args { args, target, .. }) = cli.command else {
            panic!("not shell");
        };
        assert_eq!(target.name.as_str(), "x");
        assert_eq!(args, ["-e", "select 1", "--batch"]);

        let cli =
            parse(&["shell", "--ttl", "1h", "shop", "x", "--", "-e", "select 2"]).expect("parse");
        let Command::Shell(commands::shell::Args { args, obtain, .. }) = cli.command else {
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
        assert!(
            matches!(cli.command, Command::New(commands::new::Args { ttl: Some(d), .. }) if d.as_secs() == 900)
        );
        let cli = parse(&["info", "shop", "a", "-q", "--url", "http://h:1"]).expect("parse");
        assert!(cli.quiet);
        assert_eq!(cli.url, "http://h:1");
        assert!(matches!(
            cli.command,
            Command::Show(commands::show::Args { .. })
        ));
        let cli = parse(&["rm", "shop", "a", "b", "-f"]).expect("parse");
        assert!(
            matches!(cli.command, Command::Rm(commands::rm::Args { ref names, force: true, .. }) if names.len() == 2)
        );
    }

    fn snapshot_action(args: &[&str]) -> Result<SnapshotAction, clap::Error> {
        let cli = parse(args)?;
        let Command::Snapshot(words) = cli.command else {
            panic!("not snapshot");
        };
        words.action()
    }

    #[test]
    fn snapshot_takes_with_three_names_and_removes_with_rm() {
        let take =
            snapshot_action(&["snapshot", "shop", "alice", "before", "-m", "m"]).expect("take");
        let SnapshotAction::Take {
            target,
            snapshot,
            message,
        } = take
        else {
            panic!("not a take: {take:?}");
        };
        assert_eq!(
            (target.template.as_str(), target.name.as_str()),
            ("shop", "alice")
        );
        assert_eq!(snapshot.as_str(), "before");
        assert_eq!(message.as_deref(), Some("m"));

        let rm = snapshot_action(&["snapshot", "rm", "shop", "alice", "before"]).expect("rm");
        assert!(
            matches!(rm, SnapshotAction::Remove { ref target, ref snapshot }
                if target.template.as_str() == "shop" && snapshot.as_str() == "before"),
            "{rm:?}"
        );
        // A template named `rm`: three names still take a snapshot of it.
        let of_rm = snapshot_action(&["snapshot", "rm", "alice", "before"]).expect("take");
        assert!(
            matches!(of_rm, SnapshotAction::Take { ref target, .. } if target.template.as_str() == "rm"),
            "{of_rm:?}"
        );
        let rm_of_rm = snapshot_action(&["snapshot", "rm", "rm", "alice", "x"]).expect("rm");
        assert!(matches!(rm_of_rm, SnapshotAction::Remove { .. }));

        for bad in [
            &["snapshot", "shop", "alice"][..],
            &["snapshot", "del", "shop", "alice", "x"],
            &["snapshot", "rm", "shop", "alice", "x", "-m", "no"],
            &["snapshot", "shop", "alice", "Bad"],
            &["snapshot", "rm", "shop", "alice", "x", "y"],
        ] {
            let e = snapshot_action(bad).expect_err("usage error");
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn lifecycle_commands_parse() {
        let cli = parse(&["new", "shop", "bob", "--from", "alice@before"]).expect("parse");
        let Command::New(commands::new::Args { from: Some(f), .. }) = cli.command else {
            panic!("no --from");
        };
        assert_eq!(f.to_string(), "alice@before");
        for bad in ["alice", "alice@", "@x", "Alice@x", "a@b@c"] {
            let e = parse(&["new", "shop", "bob", "--from", bad]).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        for (arg, secs) in [("1h", 3600), ("0", 0), ("none", 0), ("never", 0)] {
            let cli = parse(&["extend", "shop", "a", arg]).expect("parse");
            assert!(
                matches!(cli.command, Command::Extend(commands::extend::Args { duration, .. }) if duration.as_secs() == secs),
                "{arg}"
            );
        }
        let cli = parse(&["reset", "shop", "a", "--to", "before"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Reset(commands::reset::Args {
                latest: false,
                to: Some(_),
                ..
            })
        ));
        assert!(parse(&["reset", "shop", "a", "--latest", "--to", "x"]).is_err());
        let cli = parse(&["promote", "shop", "alice@bug", "shop-bug"]).expect("parse");
        assert!(
            matches!(cli.command, Command::Promote(commands::promote::Args { ref to, ref from, .. })
                if to.as_str() == "shop-bug" && from.snapshot.as_str() == "bug")
        );
        for args in [
            &["protect", "shop", "a"][..],
            &["unprotect", "shop", "a"],
            &["stop", "shop", "a"],
            &["start", "shop", "a"],
            &["snapshots", "shop", "a"],
            &["restore", "shop", "a", "before"],
            &["df"],
            &["rm", "--force", "shop", "a"],
            &["export", "shop", "a@b", "-"],
            &["import", "a.tar.zst", "shop", "b", "--ttl", "1h"],
            &["ci", "shop"],
            &["ci", "shop", "pr-1", "--ttl", "2h", "--from", "a@b"],
            &["ci", "--down", "shop", "pr-1"],
            &["diff", "shop", "a", "--markdown", "--explain"],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn ci_checks_its_arguments() {
        for bad in [
            &["ci"][..],
            &["ci", "Shop"],
            &["ci", "shop", "Bad Name"],
            &["ci", "--down", "shop", "--ttl", "1h"],
            &["ci", "shop", "--ttl", "soon"],
            &["diff", "shop", "a", "--markdown", "--sql"],
        ] {
            let e = parse(bad).expect_err("usage error");
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn pool_shows_or_sets() {
        let cli = parse(&["pool", "shop"]).expect("parse");
        let Command::Pool(commands::pool::Args { template, size }) = cli.command else {
            panic!("not pool");
        };
        assert_eq!((template.as_str(), size), ("shop", None));
        let cli = parse(&["pool", "shop", "4"]).expect("parse");
        assert!(matches!(
            cli.command,
            Command::Pool(commands::pool::Args { size: Some(4), .. })
        ));
        assert_eq!(
            parse(&["pool", "shop", "-1"]).expect_err("bad").exit_code(),
            2
        );
        assert_eq!(parse(&["pool", "Shop"]).expect_err("bad").exit_code(), 2);
    }

    #[test]
    fn export_and_import_check_names() {
        let cli = parse(&["export", "shop", "alice@one", "out.tar.zst"]).expect("parse");
        let Command::Export(commands::export::Args { from, file, .. }) = cli.command else {
            panic!("not export");
        };
        assert_eq!(from.to_string(), "alice@one");
        assert_eq!(file, PathBuf::from("out.tar.zst"));
        let cli = parse(&["import", "-", "shop", "bob", "--ttl", "2h"]).expect("parse");
        let Command::Import(commands::import::Args { file, target, ttl }) = cli.command else {
            panic!("not import");
        };
        assert_eq!(file, PathBuf::from("-"));
        assert_eq!(target.name.as_str(), "bob");
        assert_eq!(ttl, Some(Duration::from_secs(7200)));
        for bad in [
            &["export", "shop", "alice", "f"][..],
            &["export", "Shop", "alice@one", "f"],
            &["export", "shop", "alice@one"],
            &["import", "f", "shop", "Bob"],
            &["import", "f", "shop"],
            &["import", "f", "shop", "bob", "--ttl", "soon"],
        ] {
            let e = parse(bad).expect_err("usage error");
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
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
