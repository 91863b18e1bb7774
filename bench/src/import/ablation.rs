//! What each part of dolly's import buys: the same dump imported with
//! `UpdateOptions` switching parallel sessions, deferred indexes and the
//! cached initial datadir on one at a time, none, and all together.

use dolly_core::config::Settings;
use dolly_core::template::UpdateOptions;

use crate::report::{ImportVariant, Summary};

/// One row of the ablation.
pub struct Variant {
    pub name: &'static str,
    /// `None`: the `import_jobs` setting.
    jobs: Option<usize>,
    defer_indexes: bool,
    cached_init: bool,
    /// One large table's rows over every session.
    spread: bool,
    /// Literal rows as `LOAD DATA` files.
    load_data: bool,
}

impl Variant {
    /// dolly's defaults: every part on.
    pub fn defaults() -> Self {
        Variant {
            name: "all together (defaults)",
            jobs: None,
            defer_indexes: true,
            cached_init: true,
            spread: true,
            load_data: true,
        }
    }

    /// dolly's defaults but rows parallel by table only (as before issue
    /// 22 item 5).
    pub fn by_table() -> Self {
        Variant {
            name: "by table (no one-table spread)",
            spread: false,
            load_data: false,
            ..Self::defaults()
        }
    }

    /// dolly's defaults but every row sent as SQL (as before `LOAD DATA`
    /// files).
    pub fn no_load_data() -> Self {
        Variant {
            name: "rows spread, as SQL (no LOAD DATA)",
            load_data: false,
            ..Self::defaults()
        }
    }

    /// `--spread-ablation`: by table, spread rows as SQL, then the
    /// defaults.
    pub fn spread() -> Vec<Self> {
        vec![Self::by_table(), Self::no_load_data(), Self::defaults()]
    }

    /// Every row, "none" first and the defaults last.
    pub fn all() -> Vec<Self> {
        let v = |name, jobs, defer_indexes, cached_init| Variant {
            name,
            jobs,
            defer_indexes,
            cached_init,
            spread: false,
            load_data: false,
        };
        vec![
            v("none", Some(1), false, false),
            v("parallel sessions alone", None, false, false),
            v("deferred indexes alone", Some(1), true, false),
            v("cached init alone", Some(1), false, true),
            Self::by_table(),
            Self::defaults(),
        ]
    }

    pub fn is_defaults(&self) -> bool {
        self.jobs.is_none()
            && self.defer_indexes
            && self.cached_init
            && self.spread
            && self.load_data
    }

    /// The options of a forced import of this variant (the defaults are
    /// left to dolly, as `dollyd update --force` would).
    pub fn options(&self) -> UpdateOptions {
        if self.is_defaults() {
            return UpdateOptions {
                force: true,
                ..UpdateOptions::default()
            };
        }
        UpdateOptions {
            force: true,
            jobs: self.jobs,
            defer_indexes: Some(self.defer_indexes),
            cached_init: Some(self.cached_init),
            spread_rows: Some(self.spread),
            load_data: Some(self.load_data),
        }
    }
}

/// The report's rows from each variant's samples (`times[k]` belongs to
/// `variants[k]`).
pub fn rows(
    variants: &[Variant],
    times: &[Vec<f64>],
    baseline_p50: f64,
    settings: &Settings,
) -> Vec<ImportVariant> {
    let none = variants
        .iter()
        .position(|v| v.name == "none")
        .map(|k| Summary::of(&times[k]).p50);
    variants
        .iter()
        .zip(times)
        .map(|(v, t)| {
            let seconds = Summary::of(t);
            ImportVariant {
                variant: v.name.to_owned(),
                jobs: v.jobs.unwrap_or(settings.import_jobs).max(1),
                defer_indexes: v.defer_indexes,
                cached_init: v.cached_init,
                vs_baseline: baseline_p50 / seconds.p50,
                vs_none: none.map(|n| n / seconds.p50),
                samples_s: t.clone(),
                seconds,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_part_at_a_time() {
        let all = Variant::all();
        assert_eq!(all.len(), 6);
        assert!(all.last().is_some_and(Variant::is_defaults));
        assert_eq!(all.iter().filter(|v| v.is_defaults()).count(), 1);
        let none = all[0].options();
        assert!(none.force);
        assert_eq!(
            (none.jobs, none.defer_indexes, none.cached_init),
            (Some(1), Some(false), Some(false))
        );
        // Each middle row switches exactly one part on.
        for v in &all[1..4] {
            let on = [v.jobs.is_none(), v.defer_indexes, v.cached_init];
            assert_eq!(on.iter().filter(|x| **x).count(), 1, "{}", v.name);
        }
        let d = Variant::defaults().options();
        assert!(d.force && d.jobs.is_none() && d.defer_indexes.is_none());
        assert!(d.cached_init.is_none());
    }
}
