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
    /// `--only pool` or `--only import`: one part of the run alone.
    pub only: Option<Only>,
    /// Samples per import figure (default: 3, 1 for dumps of 1 GB).
    pub import_samples: Option<usize>,
    /// The import ablation on the 1 GB dump too (long).
    pub ablation_1g: bool,
    /// What masking costs (a post script, a rules file) on the first dump.
    pub masking: bool,
    /// Dump sizes in MB instead of the defaults (one or two dumps).
    pub dump_mb: Option<Vec<u64>>,
    /// `--images A,B`: the images `--only servers` compares.
    pub images: Option<Vec<String>>,
    /// A third dump where one table holds 74 % of the bytes.
    pub big_table: bool,
    /// The ablation reduced to dolly's defaults with and without one
    /// table's rows spread over the sessions; no physical import.
    pub spread_ablation: bool,
}

/// A part of the bench run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Pool,
    Import,
    Servers,
    Standby,
}

fn usage() -> &'static str {
    "usage: dolly-bench [--quick] [--samples N] [--list-instances N] [--base DIR] [--keep] [--only pool|import|servers|standby]\n\
     \x20                  [--import-samples N] [--ablation-1g] [--masking] [--dump-mb N[,M]] [--images A,B,..]\n\
     \n\
     --quick              ~20 MB and ~100 MB dumps instead of ~100 MB and ~1 GB; no 200-instance list\n\
     --samples N          sequential creates per template and mode (default 20)\n\
     --list-instances N   instances running for the GET /db measurement (default 200, 0 with --quick)\n\
     --base DIR           where the reflink filesystem is mounted (default /srv/dolly-bench)\n\
     --keep               keep the run's data folder (templates) at the end\n\
     --only pool          only the warm pool (issue 13) and the floor, on the small dump\n\
     --only import        only the import section (issue 12): baseline, ablation, unchanged skip, physical\n\
     --only servers       create, reset and idle memory on each image of --images, each against its floor (small dump)\n\
     --only standby       resets through a standby beside today's, standby memory, 50 sleeping instances and wake-ups (issue 27)\n\
     --images A,B,..      the images --only servers compares (default dolly-mariadb:10.11,dolly-mariadb:11.8,dolly-mysql:9)\n\
     --import-samples N   samples per import figure (default 3; 1 for the 1 GB dump)\n\
     --ablation-1g        the import ablation on the 1 GB dump too (long: 4 more 1 GB imports per sample)\n\
     --masking            what masking costs on the first dump: a post script and its clean-up, a rules file\n\
     --dump-mb N[,M]      dump sizes in MB (one or two dumps; for quick checks of the harness)\n\
     --big-table          one more dump, `bigtable`, the size of the first, where orders holds 74 % of the bytes\n\
     --spread-ablation    the import ablation reduced to the defaults with and without one table's rows\n\
     \x20                    spread over the sessions (\"by table\"), and no physical import\n\
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
            import_samples: None,
            ablation_1g: false,
            masking: false,
            dump_mb: None,
            images: None,
            big_table: false,
            spread_ablation: false,
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
                        Some("import") => Some(Only::Import),
                        Some("servers") => Some(Only::Servers),
                        Some("standby") => Some(Only::Standby),
                        _ => bail!("--only needs a part: pool, import, servers or standby"),
                    }
                }
                "--import-samples" => {
                    args.import_samples = Some(
                        it.next()
                            .and_then(|v| v.parse().ok())
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| anyhow!("--import-samples needs a number >= 1"))?,
                    )
                }
                "--ablation-1g" => args.ablation_1g = true,
                "--masking" => args.masking = true,
                "--big-table" => args.big_table = true,
                "--spread-ablation" => args.spread_ablation = true,
                "--dump-mb" => {
                    let sizes: Option<Vec<u64>> = it.next().and_then(|v| {
                        v.split(',')
                            .map(|n| n.trim().parse().ok().filter(|n| *n >= 1))
                            .collect()
                    });
                    args.dump_mb = Some(sizes.filter(|s| (1..=2).contains(&s.len())).ok_or_else(
                        || anyhow!("--dump-mb needs one or two sizes in MB, e.g. 20 or 20,100"),
                    )?)
                }
                "--images" => {
                    let images: Vec<String> = it
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if images.is_empty() {
                        bail!("--images needs image names, e.g. dolly-mariadb:10.11,dolly-mysql:9");
                    }
                    args.images = Some(images);
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
        assert!(parse(&["--only", "floor"]).is_err());
    }

    #[test]
    fn import_options() {
        let a = parse(&[]).unwrap();
        assert!(a.import_samples.is_none() && !a.ablation_1g && a.dump_mb.is_none());
        let a = parse(&[
            "--only",
            "import",
            "--import-samples",
            "2",
            "--ablation-1g",
            "--dump-mb",
            "20,100",
        ])
        .unwrap();
        assert_eq!(a.only, Some(Only::Import));
        assert_eq!(a.import_samples, Some(2));
        assert!(a.ablation_1g);
        assert_eq!(a.dump_mb, Some(vec![20, 100]));
        assert_eq!(parse(&["--dump-mb", "30"]).unwrap().dump_mb, Some(vec![30]));
        assert!(parse(&["--dump-mb", "1,2,3"]).is_err());
        assert!(parse(&["--dump-mb", "x"]).is_err());
        assert!(parse(&["--dump-mb", "0"]).is_err());
        assert!(parse(&["--import-samples", "0"]).is_err());
    }

    #[test]
    fn servers_take_a_list_of_images() {
        let a = parse(&["--only", "servers", "--images", "a:1, b:2"]).unwrap();
        assert_eq!(a.only, Some(Only::Servers));
        assert_eq!(a.images.unwrap(), vec!["a:1".to_owned(), "b:2".to_owned()]);
        assert!(parse(&["--images", ","]).is_err());
        assert!(parse(&["--images"]).is_err());
    }
}
