//! What masking costs (issue 23): the same dump imported (forced) with
//! dolly's defaults, with a post script that masks the customers (then the
//! clean-up: tables rebuilt, undo purged, a new redo log), and with a
//! rules file that masks them as the rows stream in.

use dolly_core::config::Secret;
use dolly_core::template::UpdateOptions;

use crate::bench::Bench;
use crate::report::{Masking, Summary};

use crate::util::log;

/// What the post script does (and the rules below do).
const POST_SCRIPT: &str = "UPDATE customers SET email = CONCAT('c', id, '@example.invalid'), \
    name = CONCAT('Customer ', id), notes = NULL;\n";

const RULES: &str = "[tables.customers]\nemail = \"email\"\nname = { fake = \"name\" }\n\
    notes = \"null\"\n";

impl Bench {
    pub(super) async fn masking(
        &mut self,
        template: &str,
        samples: usize,
    ) -> anyhow::Result<Masking> {
        let dumps = self.data.join("dumps");
        let post = dumps.join(format!("{template}.post.sql"));
        let rules = dumps.join(format!("{template}.mask.toml"));
        self.settings.mask_key = Some(Secret::new("the benchmark's masking key"));
        let force = UpdateOptions {
            force: true,
            ..UpdateOptions::default()
        };
        let (mut plain, mut scripted, mut masked) = (Vec::new(), Vec::new(), Vec::new());
        let mut cleanup_bytes = 0;
        for round in 0..samples {
            log(format!(
                "masking {template}: plain ({}/{samples})",
                round + 1
            ));
            plain.push(self.timed_update(template, &force).await?.seconds);

            log(format!(
                "masking {template}: post script ({}/{samples})",
                round + 1
            ));
            std::fs::write(&post, POST_SCRIPT)?;
            let r = self.timed_update(template, &force).await;
            std::fs::remove_file(&post)?;
            let r = r?;
            cleanup_bytes = r.meta.size_bytes;
            scripted.push(r.seconds);

            log(format!(
                "masking {template}: rules ({}/{samples})",
                round + 1
            ));
            std::fs::write(&rules, RULES)?;
            let r = self.timed_update(template, &force).await;
            std::fs::remove_file(&rules)?;
            masked.push(r?.seconds);
        }
        // The template left is dolly's default import.
        self.timed_update(template, &force).await?;
        let (p, s, m) = (
            Summary::of(&plain),
            Summary::of(&scripted),
            Summary::of(&masked),
        );
        Ok(Masking {
            post_script_overhead_s: s.p50 - p.p50,
            rules_overhead_s: m.p50 - p.p50,
            plain: p,
            post_script: s,
            rules: m,
            plain_s: plain,
            post_script_s: scripted,
            rules_s: masked,
            post_script_template_bytes: cleanup_bytes,
        })
    }
}
