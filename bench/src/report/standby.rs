//! `--only standby`: one row per image (issue 27).

use std::fmt::Write as _;

use crate::standby::StandbyRow;

pub fn markdown(rows: &[StandbyRow], s: &mut String) {
    let _ = writeln!(
        s,
        "### Standby resets and sleeping instances\n\nReset = from the reset request to the first \
         authenticated query answered on the reset data (a new connection), p50 (p95), the \
         standby's samples waiting (untimed) for it to be ready first; memory = `docker stats` \
         (cgroup) figure; awake = one idle instance behind its forwarder (server and forwarder) \
         after a query and 3 s; asleep = the same instance with its server sleeping (only the \
         forwarder runs), median, and all of them; wake = a client's connect and first query on \
         a sleeping instance, interleaved with bare starts of the server (the floor).\n"
    );
    let _ = writeln!(
        s,
        "| image | reset today | reset via standby | cloning fallbacks | standby memory | awake instance | asleep instance | {} asleep | wake | floor | wake / floor |",
        rows.first().map_or(50, |r| r.sleepers)
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| `{}` | {:.0} ms ({:.0}) | {:.0} ms ({:.0}) | {} of {} | {:.1} MiB | {:.1} MiB | {:.2} MiB | {:.0} MiB | {:.0} ms ({:.0}) | {:.0} ms ({:.0}) | {:.2}x |",
            r.image,
            r.reset.p50,
            r.reset.p95,
            r.standby_reset.p50,
            r.standby_reset.p95,
            r.fallbacks,
            r.standby_reset.n,
            r.standby_mib,
            r.awake_mib,
            r.sleeping_mib,
            r.sleeping_total_mib,
            r.wake.p50,
            r.wake.p95,
            r.floor.p50,
            r.floor.p95,
            r.wake_ratio
        );
    }
}
