//! `--only servers`: one row per image.

use std::fmt::Write as _;

use crate::servers::ServerRow;

pub fn markdown(rows: &[ServerRow], s: &mut String) {
    let _ = writeln!(
        s,
        "### Servers\n\nThe same dump on each image; floor = a bare engine start of dolly's instance \
         server on a reflink clone until an authenticated `SELECT 1`, interleaved with dolly's \
         creates (pool 0) so both see the same load; p50 (p95); idle = `docker stats` of idle \
         instances after one query and 3 s, median.\n"
    );
    let _ = writeln!(
        s,
        "| image | version | floor | dolly create | create / floor | reset | idle instance (rss) | import |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.0} ms ({:.0}) | {:.0} ms ({:.0}) | {:.2}x | {:.0} ms ({:.0}) | {:.1} MiB ({:.1}) | {:.1} s |",
            r.image,
            r.version.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            r.floor.p50,
            r.floor.p95,
            r.create.p50,
            r.create.p95,
            r.ratio,
            r.reset.p50,
            r.reset.p95,
            r.idle_mib,
            r.idle_rss_mib,
            r.import_s
        );
    }
}
