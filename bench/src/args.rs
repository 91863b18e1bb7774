//! The command line (clap).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// dolly's benchmark harness: every figure beside a baseline measured in
/// the same run (bench/README.md). Environment: DOLLY_BENCH_IMAGE (default
/// dolly-mariadb:10.11), DOLLY_BENCH_RUN (this run's container label).
#[derive(Debug, Parser)]
#[command(name = "dolly-bench")]
pub struct Args {
    /// ~20 MB and ~100 MB dumps instead of ~100 MB and ~1 GB; no
    /// 200-instance list.
    #[arg(long)]
    pub quick: bool,
    /// Instances running for the GET /db measurement (default 200, 0 with
    /// --quick).
    #[arg(long, value_name = "N")]
    list_instances: Option<usize>,
    /// Sequential creates per template and mode.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = at_least_one)]
    pub samples: usize,
    /// Where the reflink filesystem is mounted (default /srv/dolly-bench).
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// Keep the run's data folder (templates) at the end.
    #[arg(long)]
    pub keep: bool,
    /// One part of the run alone.
    #[arg(long, value_enum, value_name = "PART")]
    pub only: Option<Only>,
    /// Samples per import figure (default 3; 1 for the 1 GB dump).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub import_samples: Option<usize>,
    /// The import ablation on the 1 GB dump too (long: 4 more 1 GB imports
    /// per sample).
    #[arg(long = "ablation-1g")]
    pub ablation_1g: bool,
    /// What masking costs on the first dump: a post script and its
    /// clean-up, a rules file.
    #[arg(long)]
    pub masking: bool,
    /// Dump sizes in MB (one or two dumps; for quick checks of the
    /// harness), e.g. 20 or 20,100.
    #[arg(long, value_name = "N[,M]", value_parser = dump_sizes)]
    pub dump_mb: Option<DumpSizes>,
    /// The images --only servers and --only standby compare (default
    /// dolly-mariadb:10.11,dolly-mariadb:11.8,dolly-mysql:9).
    #[arg(long, value_name = "A,B,..", value_parser = image_list)]
    pub images: Option<ImageList>,
    /// One more dump, `bigtable`, the size of the first, where orders
    /// holds 74 % of the bytes.
    #[arg(long)]
    pub big_table: bool,
    /// The ablation reduced to dolly's defaults with and without one
    /// table's rows spread over the sessions; no physical import.
    #[arg(long)]
    pub spread_ablation: bool,
}

/// A part of the bench run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// The warm pool (issue 13) and the floor, on the small dump.
    Pool,
    /// The import section (issue 12): baseline, ablation, unchanged skip,
    /// physical.
    Import,
    /// Create, reset and idle memory on each image of --images, each
    /// against its floor (small dump).
    Servers,
    /// Resets through a standby beside today's, standby memory, 50
    /// sleeping instances and wake-ups (issue 27).
    Standby,
}

/// `--dump-mb`: one or two sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpSizes(pub Vec<u64>);

/// `--images`: at least one image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageList(pub Vec<String>);

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number >= 1")),
    }
}

fn dump_sizes(s: &str) -> Result<DumpSizes, String> {
    let sizes: Option<Vec<u64>> = s
        .split(',')
        .map(|n| n.trim().parse().ok().filter(|n| *n >= 1))
        .collect();
    sizes
        .filter(|v| (1..=2).contains(&v.len()))
        .map(DumpSizes)
        .ok_or_else(|| "one or two sizes in MB, e.g. 20 or 20,100".to_owned())
}

fn image_list(s: &str) -> Result<ImageList, String> {
    let images: Vec<String> = s
        .split(',')
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect();
    if images.is_empty() {
        return Err("image names, e.g. dolly-mariadb:10.11,dolly-mysql:9".to_owned());
    }
    Ok(ImageList(images))
}

impl Args {
    /// Instances listed for the `GET /db` cost (0: skip): 200, or 0 with
    /// --quick, unless given.
    pub fn list_instances(&self) -> usize {
        self.list_instances
            .unwrap_or(if self.quick { 0 } else { 200 })
    }

    /// Dump sizes in MB instead of the defaults.
    pub fn dump_mb(&self) -> Option<&[u64]> {
        self.dump_mb.as_ref().map(|d| d.0.as_slice())
    }

    /// The images `--only servers` and `--only standby` compare.
    pub fn images(&self) -> Option<&[String]> {
        self.images.as_ref().map(|i| i.0.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("dolly-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert!(!a.quick && !a.keep && a.base.is_none());
        assert_eq!((a.samples, a.list_instances()), (20, 200));
    }

    #[test]
    fn quick_lists_nothing_unless_told() {
        assert_eq!(parse(&["--quick"]).unwrap().list_instances(), 0);
        let a = parse(&["--quick", "--list-instances", "7"]).unwrap();
        assert_eq!(a.list_instances(), 7);
        let a = parse(&["--list-instances", "7", "--quick"]).unwrap();
        assert_eq!(a.list_instances(), 7);
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
        assert!(a.import_samples.is_none() && !a.ablation_1g && a.dump_mb().is_none());
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
        assert_eq!(a.dump_mb(), Some(&[20, 100][..]));
        assert_eq!(
            parse(&["--dump-mb", "30"]).unwrap().dump_mb(),
            Some(&[30][..])
        );
        assert!(parse(&["--dump-mb", "1,2,3"]).is_err());
        assert!(parse(&["--dump-mb", "x"]).is_err());
        assert!(parse(&["--dump-mb", "0"]).is_err());
        assert!(parse(&["--import-samples", "0"]).is_err());
    }

    #[test]
    fn servers_take_a_list_of_images() {
        let a = parse(&["--only", "servers", "--images", "a:1, b:2"]).unwrap();
        assert_eq!(a.only, Some(Only::Servers));
        assert_eq!(a.images().unwrap(), ["a:1".to_owned(), "b:2".to_owned()]);
        assert!(parse(&["--images", ","]).is_err());
        assert!(parse(&["--images"]).is_err());
    }
}
