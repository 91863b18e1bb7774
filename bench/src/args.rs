//! The command line.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

pub struct Args {
    pub quick: bool,
    /// Instances listed for the `GET /db` cost (0: skip).
    pub list_instances: usize,
    pub samples: usize,
    pub base: Option<PathBuf>,
    pub keep: bool,
    /// `--only pool`: the small dump, the floor and the warm pool alone.
    pub only: Option<Only>,
}

/// A part of the bench run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Pool,
}

fn usage() -> &'static str {
    "usage: dolly-bench [--quick] [--samples N] [--list-instances N] [--base DIR] [--keep] [--only pool]\n\
     \n\
     --quick              ~20 MB and ~100 MB dumps instead of ~100 MB and ~1 GB; no 200-instance list\n\
     --samples N          sequential creates per template and mode (default 20)\n\
     --list-instances N   instances running for the GET /db measurement (default 200, 0 with --quick)\n\
     --base DIR           where the reflink filesystem is mounted (default /srv/dolly-bench)\n\
     --keep               keep the run's data folder (templates) at the end\n\
     --only pool          only the warm pool (issue 13) and the floor, on the small dump\n\
     \n\
     Environment: DOLLY_BENCH_IMAGE (default dolly-mariadb:10.11)."
}

impl Args {
    /// Parses the arguments after the program name; `-h`/`--help` prints
    /// the usage and exits.
    pub fn parse(argv: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
        let mut args = Args {
            quick: false,
            list_instances: 200,
            samples: 20,
            base: None,
            keep: false,
            only: None,
        };
        let mut list_set = false;
        let mut it = argv.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => args.quick = true,
                "--keep" => args.keep = true,
                "--samples" => {
                    args.samples = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| anyhow!("--samples needs a number >= 1"))?
                }
                "--list-instances" => {
                    list_set = true;
                    args.list_instances = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| anyhow!("--list-instances needs a number"))?
                }
                "--base" => {
                    args.base = Some(
                        it.next()
                            .map(PathBuf::from)
                            .ok_or_else(|| anyhow!("--base needs a folder"))?,
                    )
                }
                "--only" => {
                    args.only = match it.next().as_deref() {
                        Some("pool") => Some(Only::Pool),
                        _ => bail!("--only needs a part: pool"),
                    }
                }
                "-h" | "--help" => {
                    println!("{}", usage());
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{}", usage()),
            }
        }
        if args.quick && !list_set {
            args.list_instances = 0;
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Args> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert!(!a.quick && !a.keep && a.base.is_none());
        assert_eq!((a.samples, a.list_instances), (20, 200));
    }

    #[test]
    fn quick_lists_nothing_unless_told() {
        assert_eq!(parse(&["--quick"]).unwrap().list_instances, 0);
        let a = parse(&["--quick", "--list-instances", "7"]).unwrap();
        assert_eq!(a.list_instances, 7);
        let a = parse(&["--list-instances", "7", "--quick"]).unwrap();
        assert_eq!(a.list_instances, 7);
    }

    #[test]
    fn values_and_errors() {
        let a = parse(&["--samples", "3", "--base", "/x", "--keep"]).unwrap();
        assert_eq!(a.samples, 3);
        assert_eq!(a.base, Some(PathBuf::from("/x")));
        assert!(a.keep);
        assert!(parse(&["--samples", "0"]).is_err());
        assert!(parse(&["--samples"]).is_err());
        assert!(parse(&["--base"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert_eq!(parse(&["--only", "pool"]).unwrap().only, Some(Only::Pool));
        assert!(parse(&[]).unwrap().only.is_none());
        assert!(parse(&["--only"]).is_err());
        assert!(parse(&["--only", "import"]).is_err());
    }
}
