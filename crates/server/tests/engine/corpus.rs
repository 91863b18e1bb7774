//! Import fidelity on real dumps: the sakila and Chinook samples as their
//! authors ship them, and each re-dumped by the image's own
//! `mariadb-dump`/`mysqldump` in the usual forms, imported by dolly (split
//! by table, keys deferred) and loaded the plain way (`mariadb db < dump`,
//! `mysql` on MySQL) into a server of the same image: where the plain load
//! succeeds, dolly's template holds the same objects (`SHOW CREATE` of
//! every schema, table, view, routine and event, every trigger's
//! definition, `CHECKSUM TABLE` and row count of every table, sequences)
//! and reports the same database; where it fails, dolly's import fails too.
//!
//! The samples are read from `DOLLY_CORPUS_DIR`, by default
//! `../shared/corpus` beside the repository (never copied into it).
//!
//! The oracle is one server container for the whole test: between two
//! loads every database but the system ones is dropped.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::compare::{differences, state};
use common::server::Oracle;
use common::{creds, TestApp};
use dolly_core::context::Context;

const FILES: [&str; 3] = [
    "sakila-mv-schema.sql",
    "sakila-mv-data.sql",
    "Chinook_MySql.sql",
];

/// The folder holding the public samples.
fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("DOLLY_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    for f in FILES {
        if !dir.join(f).is_file() {
            panic!(
                "the corpus test needs {} (set DOLLY_CORPUS_DIR to the folder holding {})",
                dir.join(f).display(),
                FILES.join(", ")
            );
        }
    }
    dir
}

/// One dump of the corpus.
struct Source {
    template: String,
    /// File names (in `dumps/`, or in the folder `dumps/TEMPLATE/`) and
    /// their bytes; one file named `TEMPLATE.sql` for a single-file dump.
    files: Vec<(String, Vec<u8>)>,
    folder: bool,
    /// The database instances should report.
    database: String,
    /// The plain load's outcome: the state, or its error.
    plain: Result<BTreeMap<String, String>, String>,
}

impl Source {
    /// The dump as the client reads it: files in order, a newline between
    /// two (what dolly's reader gives).
    fn stream(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, (_, bytes)) in self.files.iter().enumerate() {
            if k > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(bytes);
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_imports_as_the_plain_load_does() {
    let corpus = corpus_dir();
    let mut app = TestApp::new_stopped(|_| {}).await;
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let image = ctx.image().await.expect("image probe").clone();
    let oracle = Oracle::start(&ctx, &image, app.data_dir().join("oracle")).await;
    let db = app.settings.database.clone();
    let read = |f: &str| std::fs::read(corpus.join(f)).unwrap();

    let mut sources = vec![
        Source {
            template: "sakila".into(),
            files: vec![
                ("01-schema.sql".into(), read("sakila-mv-schema.sql")),
                ("02-data.sql".into(), read("sakila-mv-data.sql")),
            ],
            folder: true,
            database: "sakila".into(),
            plain: Err(String::new()),
        },
        Source {
            template: "chinook".into(),
            files: vec![("chinook.sql".into(), read("Chinook_MySql.sql"))],
            folder: false,
            database: "Chinook".into(),
            plain: Err(String::new()),
        },
    ];
    let nightly = "--single-transaction --quick --routines --triggers --events";
    let forms = [
        ("nightly", format!("{nightly} --databases")),
        (
            "rows",
            format!("{nightly} --skip-extended-insert --complete-insert --databases"),
        ),
        ("hex", format!("{nightly} --hex-blob --databases")),
        ("nodb", nightly.to_owned()),
    ];
    let mut notes = Vec::new();
    for k in 0..sources.len() {
        let plain = oracle.load(sources[k].stream(), &sources[k].database).await;
        let plain = match plain {
            Ok(()) => Ok(state(&app.engine, &image, &oracle.name, &[]).await),
            Err(e) => Err(e),
        };
        let (template, database) = (sources[k].template.clone(), sources[k].database.clone());
        if plain.is_ok() {
            // The re-dumps, made from the plain load of the sample.
            for (form, args) in &forms {
                let bytes = oracle.redump(&format!("{args} {database}")).await;
                let name = format!("{template}-{form}");
                sources.push(Source {
                    files: vec![(format!("{name}.sql"), bytes)],
                    template: name,
                    folder: false,
                    database: if *form == "nodb" {
                        db.clone()
                    } else {
                        database.clone()
                    },
                    plain: Err(String::new()),
                });
            }
        } else {
            notes.push(format!(
                "{template}: the plain load fails, so it has no re-dumps here"
            ));
        }
        sources[k].plain = plain;
    }
    for s in sources.iter_mut().skip(2) {
        let plain = oracle.load(s.stream(), &s.database).await;
        s.plain = match plain {
            Ok(()) => Ok(state(&app.engine, &image, &oracle.name, &[]).await),
            Err(e) => Err(e),
        };
    }
    app.engine.remove(&oracle.name).await.unwrap();

    for s in &sources {
        for (file, bytes) in &s.files {
            if s.folder {
                app.write_dump(&format!("{}/{file}", s.template), bytes);
            } else {
                app.write_dump(file, bytes);
            }
        }
    }
    let outcomes = app.update(&[]).await;
    app.start().await;
    let mut failures = Vec::new();
    for s in &sources {
        let outcome = outcomes
            .iter()
            .find(|o| o.template.as_str() == s.template)
            .unwrap_or_else(|| panic!("no import of {}", s.template));
        match (&s.plain, &outcome.result) {
            (Err(plain), Err(dolly)) => notes.push(format!(
                "{}: the plain load fails ({}), and so does dolly's import ({dolly})",
                s.template,
                plain.lines().last().unwrap_or("")
            )),
            (Err(plain), Ok(_)) => failures.push(format!(
                "{}: the plain load fails ({plain}) but dolly's import succeeds",
                s.template
            )),
            (Ok(_), Err(e)) => failures.push(format!(
                "{}: the plain load succeeds, dolly's import fails: {e}",
                s.template
            )),
            (Ok(plain), Ok(meta)) => {
                let load = meta.load.as_ref();
                notes.push(format!(
                    "{}: identical check; {} tables, {} with deferred keys, {} spread; split fallback: {}",
                    s.template,
                    load.map_or(0, |l| l.tables),
                    load.map_or(0, |l| l.deferred_key_tables),
                    load.map_or(0, |l| l.spread_tables),
                    load.and_then(|l| l.fallback.as_deref()).unwrap_or("none")
                ));
                let body = app.create(&s.template, "cmp").await;
                let (_, password, database) = creds(&body);
                if database != s.database {
                    failures.push(format!(
                        "{}: the instance reports database {database}, expected {}",
                        s.template, s.database
                    ));
                }
                let container = format!("{}{}.cmp", app.settings.container_prefix, s.template);
                let pw = format!("-p{password}");
                let dolly = state(&app.engine, &image, &container, &[&pw]).await;
                assert!(!plain.is_empty());
                let diffs = differences(plain, &dolly);
                if !diffs.is_empty() {
                    failures.push(format!(
                        "{}: {} differences:\n{}",
                        s.template,
                        diffs.len(),
                        diffs.into_iter().take(8).collect::<Vec<_>>().join("\n")
                    ));
                }
                let r = app.delete(&format!("/db/{}/cmp", s.template)).await;
                assert_eq!(r.status(), 204);
            }
        }
    }
    println!("corpus on {}:\n{}", image.version.trim(), notes.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
