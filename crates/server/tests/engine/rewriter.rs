//! The key rewriter and the splitter against the real server: generated
//! `CREATE TABLE` statements with every key and option form around keys
//! (versioned comments, SPATIAL, FULLTEXT, prefix and descending keys,
//! invisible and generated columns, partitions, comments holding `*/` or
//! `;`, back-quoted names, foreign keys with each action, keys without
//! names), each table with rows, loaded the plain way into one database
//! and the way dolly splits it into another of the same server; every
//! table's `SHOW CREATE TABLE`, `CHECKSUM TABLE` and foreign key rules
//! must be the same, and dolly's own SQL must never fail.
//!
//! One server container for the whole test.

use crate::common;

use std::sync::Arc;

use common::server::Oracle;
use common::TestApp;
use dolly_core::context::Context;
use dolly_core::dbserver::Flavor;
use dolly_core::dump::split::{split_text, Phase, SplitOptions};

/// Column sets the generated tables draw from.
const COLUMNS: &[&str] = &[
    "`id` INT NOT NULL",
    "`a` VARCHAR(40) NOT NULL DEFAULT 'x,y'",
    "`b` TEXT",
    "`c` INT",
    "`g` POINT NOT NULL",
    "`p` INT NULL",
];

/// Key forms (both servers), by the columns they need.
fn key_forms(flavor: Flavor) -> Vec<&'static str> {
    let mut forms = vec![
        "KEY `k_a` (`a`)",
        "KEY `k_a10` (`a`(10))",
        "INDEX `k_ca` (`c` DESC, `a`)",
        "KEY `k_c` (`c`) USING BTREE COMMENT 'a, b; c */ d'",
        "UNIQUE KEY `u_c` (`c`)",
        "KEY (`c`)",
        "SPATIAL KEY `s_g` (`g`)",
        "SPATIAL INDEX `s_g2` (`g`)",
        "FULLTEXT KEY `f_b` (`b`)",
        "FULLTEXT KEY `f_ab` (`a`,`b`)",
        "/*!50705 SPATIAL KEY `s_gv` (`g`),*/ KEY `k_after` (`c`)",
        "KEY `k_p` (`p`)",
        "CONSTRAINT `fk_cascade` FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE CASCADE ON UPDATE CASCADE",
        "CONSTRAINT `fk_setnull` FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE SET NULL",
        "CONSTRAINT `fk_restrict` FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE RESTRICT ON UPDATE CASCADE",
        "CONSTRAINT `fk_noaction` FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE NO ACTION",
        "CONSTRAINT `fk_plain` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)",
        "FOREIGN KEY (`p`) REFERENCES `parent` (`id`)",
        "CONSTRAINT `chk_c` CHECK (`c` >= 0)",
    ];
    match flavor {
        Flavor::MariaDb => forms.push("KEY `k_ign` (`c`) IGNORED"),
        Flavor::MySql => forms.extend([
            "KEY `k_inv` (`c`) INVISIBLE",
            "FULLTEXT KEY `f_ngram` (`b`) WITH PARSER ngram",
            "INDEX `k_expr` ((`c` + 1))",
        ]),
    }
    forms
}

/// Extra column forms.
fn column_forms() -> Vec<&'static str> {
    vec![
        "`v` INT AS (`c` * 2) VIRTUAL",
        "`s` INT AS (`c` + 1) STORED",
        "`h` INT /*!80023 INVISIBLE */",
        "`cm` INT COMMENT 'x */ y; -- z'",
        "`we``ird col` INT",
        "`inv` INT INVISIBLE",
    ]
}

const OPTIONS: &[&str] = &[
    "ENGINE=InnoDB",
    "ENGINE=InnoDB",
    "ENGINE=InnoDB ROW_FORMAT=DYNAMIC STATS_PERSISTENT=1",
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='it''s a */ comment; really'",
    "ENGINE=InnoDB ROW_FORMAT=DYNAMIC /*!50100 STATS_PERSISTENT=1 */",
    "ENGINE=MyISAM",
    "",
];

/// A small deterministic generator (no dependency for this).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// The generated dump: a parent table, then `n` tables each with a random
/// subset of columns, keys and options, and a few rows.
fn generated(flavor: Flavor, n: usize, seed: u64) -> String {
    let mut r = Rng(seed);
    let mut dump = String::from(
        "SET NAMES utf8mb4;\nSET FOREIGN_KEY_CHECKS=0;\n\
         CREATE TABLE `parent` (`id` INT NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;\n\
         INSERT INTO `parent` VALUES (1),(2),(3);\n",
    );
    let keys = key_forms(flavor);
    let cols = column_forms();
    for t in 0..n {
        let mut defs: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        let mut extra = Vec::new();
        for _ in 0..(r.next() % 3) {
            let c = r.pick(&cols);
            if !extra.contains(&c) {
                extra.push(c);
            }
        }
        defs.extend(extra.iter().map(|c| c.to_string()));
        // Primary key forms: a constraint, an inline one, none (no defer).
        match r.next() % 6 {
            0 => defs[0] = "`id` INT NOT NULL PRIMARY KEY".into(),
            1 => defs.push("CONSTRAINT `pk` PRIMARY KEY (`id`)".into()),
            2 => {
                defs[0] = "`id` INT NOT NULL AUTO_INCREMENT".into();
                defs.push("PRIMARY KEY (`id`)".into());
            }
            3 => {}
            _ => defs.push("PRIMARY KEY (`id`)".into()),
        }
        let mut chosen = Vec::new();
        for _ in 0..(1 + r.next() % 5) {
            let k = r.pick(&keys);
            let name = k.split('`').nth(1).unwrap_or(k);
            if !chosen
                .iter()
                .any(|c: &&str| c.split('`').nth(1).unwrap_or(c) == name)
            {
                chosen.push(k);
            }
        }
        // Most foreign keys get a key of their own, so that they move.
        if chosen.iter().any(|k| k.contains("FOREIGN"))
            && !chosen.contains(&"KEY `k_p` (`p`)")
            && !r.next().is_multiple_of(4)
        {
            chosen.insert(0, "KEY `k_p` (`p`)");
        }
        let fulltext = chosen.iter().any(|k| k.contains("FULLTEXT"));
        let fk = chosen.iter().any(|k| k.contains("FOREIGN"));
        let mut options = r.pick(OPTIONS);
        // MySQL's MyISAM has no descending or functional keys.
        if options.contains("MyISAM")
            && chosen
                .iter()
                .any(|k| k.contains("DESC") || k.contains("(("))
        {
            options = "ENGINE=InnoDB";
        }
        // What the servers refuse on both paths: partitions with foreign,
        // FULLTEXT or SPATIAL keys (foreign keys on MyISAM are ignored).
        let spatial = chosen.iter().any(|k| k.contains("SPATIAL"));
        let partition = !fk && !fulltext && !spatial && r.next().is_multiple_of(4);
        // Constraint names are per schema.
        defs.extend(chosen.iter().map(|k| {
            k.replace("`fk_", &format!("`fk{t}_"))
                .replace("`chk_c`", &format!("`chk{t}`"))
        }));
        let name = if t % 7 == 3 {
            format!("`t{t} we``ird; */name`")
        } else {
            format!("`t{t}`")
        };
        if partition {
            options = if r.next().is_multiple_of(2) {
                "ENGINE=InnoDB PARTITION BY HASH (`id`) PARTITIONS 3"
            } else {
                "ENGINE=InnoDB /*!50100 PARTITION BY KEY (`id`) PARTITIONS 2 */"
            };
            // Every unique key must hold the partitioning column; no
            // geometry in a partitioned table.
            defs.retain(|d| !d.starts_with("UNIQUE"));
            defs[4] = "`g` BLOB".into();
        }
        dump.push_str(&format!(
            "DROP TABLE IF EXISTS {name};\nCREATE TABLE {name} (\n  {}\n) {options};\n",
            defs.join(",\n  ")
        ));
        let mut rows = Vec::new();
        for i in 1..=5 {
            let mut v = vec![
                format!("{i}"),
                format!("'row {i}, ''q'''"),
                format!("'text {i} alpha beta'"),
                format!("{}", i * 3),
                format!("ST_GeomFromText('POINT({i} {i})')"),
                format!("{}", 1 + i % 3),
            ];
            for c in &extra {
                // Generated columns take DEFAULT.
                v.push(if c.contains(" AS ") {
                    "DEFAULT".into()
                } else {
                    format!("{i}")
                });
            }
            rows.push(format!("({})", v.join(",")));
        }
        let cols: Vec<String> = COLUMNS
            .iter()
            .chain(extra.iter())
            .map(|c| {
                let end = c[1..].find("` ").map_or(c.len(), |e| e + 2);
                c[..end].to_owned()
            })
            .collect();
        dump.push_str(&format!(
            "INSERT INTO {name} ({}) VALUES {};\n",
            cols.join(","),
            rows.join(",")
        ));
    }
    dump
}

/// SHOW CREATE TABLE, CHECKSUM TABLE and the foreign key rules of every
/// table of `db` (one client call).
async fn tables(oracle: &Oracle, db: &str) -> Vec<(String, String)> {
    let names = oracle
        .sql(&format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' ORDER BY table_name"
        ))
        .await;
    let mut script = String::new();
    let mut order = Vec::new();
    for t in names.lines().filter(|l| !l.is_empty()) {
        // -B escapes: the name as the server stores it.
        let t = t.replace("\\\\", "\\");
        let q = format!("`{db}`.`{}`", t.replace('`', "``"));
        let lit = t.replace('\\', "\\\\").replace('\'', "\\'");
        script.push_str(&format!(
            "SELECT '@@ {lit}';\nSHOW CREATE TABLE {q};\nCHECKSUM TABLE {q};\n\
             SELECT constraint_name, update_rule, delete_rule FROM information_schema.referential_constraints \
             WHERE constraint_schema = '{db}' AND table_name = '{lit}' ORDER BY constraint_name;\n"
        ));
        order.push(t);
    }
    let text = oracle.sql(&script).await;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("@@ ") {
            out.push((t.to_owned(), String::new()));
        } else if let Some((_, v)) = out.last_mut() {
            // CHECKSUM TABLE names the database.
            v.push_str(line.strip_prefix(&format!("{db}.")).unwrap_or(line));
            v.push('\n');
        }
    }
    assert_eq!(out.len(), order.len(), "{db}: {text}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_tables_load_the_same_both_ways() {
    let app = TestApp::new_stopped(|_| {}).await;
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let image = ctx.image().await.expect("image probe").clone();
    let oracle = Oracle::start(&ctx, &image, app.data_dir().join("oracle")).await;
    let mut failures = Vec::new();
    let (mut deferred, mut verbatim, mut total) = (0, 0, 0);
    for seed in [
        0x9e37_79b9_7f4a_7c15u64,
        0xdead_beef_cafe_f00d,
        42,
        7,
        1234567,
        99,
    ] {
        let dump = generated(image.flavor, 24, seed);
        oracle
            .sql("DROP DATABASE IF EXISTS plain; DROP DATABASE IF EXISTS dolly; CREATE DATABASE plain; CREATE DATABASE dolly")
            .await;
        if let Err(e) = oracle.run("plain", dump.clone().into_bytes()).await {
            panic!("seed {seed:#x}: the plain load of the generated dump fails: {e}");
        }
        let (scripts, stats) = split_text(
            dump.as_bytes(),
            SplitOptions {
                jobs: 2,
                defer_indexes: true,
                default_db: "dolly".into(),
                spread_after: 0,
                dump_bytes: None,
                load_data: false,
                big_table: None,
            },
        );
        assert_eq!(
            stats.fallback, None,
            "seed {seed:#x}: {:?}",
            scripts.fallbacks
        );
        deferred += stats.deferred_tables;
        verbatim += stats.verbatim_tables;
        total += stats.tables;
        for phase in &scripts.phases {
            let parts: Vec<&String> = match phase {
                Phase::Serial(s) => vec![s],
                Phase::Parallel(v) => v.iter().collect(),
            };
            for script in parts {
                if let Err(e) = oracle.run("dolly", script.clone().into_bytes()).await {
                    panic!("seed {seed:#x}: dolly's split of the generated dump fails: {e}");
                }
            }
        }
        let plain = tables(&oracle, "plain").await;
        let dolly = tables(&oracle, "dolly").await;
        assert_eq!(plain.len(), 25, "seed {seed:#x}");
        assert_eq!(dolly.len(), 25, "seed {seed:#x}");
        if plain != dolly {
            for ((t, p), (_, d)) in plain.iter().zip(&dolly) {
                if p != d {
                    failures.push(format!(
                        "seed {seed:#x}, table {t}:\n  plain: {p}\n  dolly: {d}"
                    ));
                }
            }
            if plain.len() != dolly.len() {
                failures.push(format!(
                    "seed {seed:#x}: {} tables plain, {} dolly",
                    plain.len(),
                    dolly.len()
                ));
            }
        }
    }
    println!("{total} generated tables: {deferred} with deferred keys, {verbatim} kept as written (not understood)");
    assert!(
        deferred * 5 > total,
        "the generator must exercise the rewrite: {deferred} of {total}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
