//! Masked means masked: canary values put in a dump (text, JSON, BLOB on
//! and off page, UTF-16, a UNIQUE index, a table with a primary key and
//! one without) and masked are found in no byte of any file of the
//! published template, an instance's datadir, a snapshot or an export
//! archive (decompressed), raw or in the encodings InnoDB stores them in.
//! Run on each server image (`DOLLY_TEST_IMAGE=dolly-mysql:9 ...`).

use crate::common;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use common::{query, TestApp};
use dolly_core::config::Secret;
use dolly_core::context::Context;
use dolly_core::template;
use dolly_types::TemplateName;
use serde_json::json;

/// Canary values: each distinctive, none a substring of another.
const CANARIES: &[&str] = &[
    "zoe.canary-uniq@corp.example",
    "canary-name-Quetzalcoatl",
    "canary-json-Xylophone",
    "canary-blob-Jabberwock",
    "canary-bigblob-Bandersnatch",
    "canary-utf16-Ozymandias",
    "nopk.canary@corp.example",
    "canary-nopk-note-Vorpal",
];

/// A mysqldump-shaped dump holding every canary, with filler rows so that
/// the tables span several pages.
fn canary_dump() -> String {
    let big_blob = {
        // Off-page (external) BLOB storage: well over half a page.
        let mut b = "x".repeat(12_000).into_bytes();
        b.extend_from_slice(CANARIES[4].as_bytes());
        b.extend(std::iter::repeat_n(b'y', 12_000));
        hex(&b)
    };
    let mut s = String::from(
        "-- MariaDB dump 10.19  Distrib 10.11\n\
         /*!40101 SET NAMES utf8mb4 */;\n\
         DROP TABLE IF EXISTS `customers`;\n\
         CREATE TABLE `customers` (\n  `id` int NOT NULL,\n  `email` varchar(100) NOT NULL,\n  \
         `name` varchar(100) DEFAULT NULL,\n  `profile` json DEFAULT NULL,\n  `photo` blob,\n  \
         `alias` varchar(60) CHARACTER SET utf16 DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  \
         UNIQUE KEY `email` (`email`),\n  KEY `name` (`name`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\
         DROP TABLE IF EXISTS `audit`;\n\
         CREATE TABLE `audit` (\n  `email` varchar(100) DEFAULT NULL,\n  `note` text,\n  \
         KEY `email` (`email`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n",
    );
    s.push_str("INSERT INTO `customers` VALUES ");
    s.push_str(&format!(
        "(1,'{}','{}','{{\\\"k\\\": \\\"{}\\\"}}',0x{},'{}'),",
        CANARIES[0],
        CANARIES[1],
        CANARIES[2],
        hex(CANARIES[3].as_bytes()),
        CANARIES[5]
    ));
    s.push_str(&format!(
        "(2,'two@corp.example','Two','{{}}',0x{big_blob},NULL)"
    ));
    for i in 3..400 {
        s.push_str(&format!(
            ",({i},'filler{i}@corp.example','Filler {i}','{{\\\"n\\\": {i}}}',0x{},'f{i}')",
            hex(format!("filler blob {i}").as_bytes())
        ));
    }
    s.push_str(";\nINSERT INTO `audit` VALUES ");
    s.push_str(&format!("('{}','{}')", CANARIES[6], CANARIES[7]));
    for i in 0..300 {
        s.push_str(&format!(",('a{i}@corp.example','audit note {i}')"));
    }
    s.push_str(";\n-- Dump completed on 2026-12-07 04:00:00\n");
    s
}

/// Masks every canary: what a user's `NAME.post.sql` does.
const POST_SCRIPT: &str = "UPDATE customers SET email = CONCAT('c', id, '@example.invalid'), \
    name = CONCAT('Customer ', id), profile = '{}', photo = NULL, alias = NULL;\n\
    UPDATE audit SET email = 'someone@example.invalid', note = 'masked';\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|c| format!("{c:02X}")).collect()
}

/// Each canary in every form InnoDB or a tool could leave it in: raw
/// (utf8mb4 and binary columns), hex text either case, UTF-16 either byte
/// order (the utf16 column).
fn needles() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for c in CANARIES {
        out.push((format!("{c} (raw)"), c.as_bytes().to_vec()));
        out.push((format!("{c} (hex)"), hex(c.as_bytes()).into_bytes()));
        out.push((
            format!("{c} (hex, lower case)"),
            hex(c.as_bytes()).to_lowercase().into_bytes(),
        ));
        out.push((
            format!("{c} (UTF-16BE)"),
            c.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
        ));
        out.push((
            format!("{c} (UTF-16LE)"),
            c.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        ));
    }
    out
}

/// Every canary holds this: a file where no encoding of it occurs holds
/// none of them (one pass per encoding instead of one per canary: the
/// search reads hundreds of megabytes in a debug build).
const ANCHOR: &str = "canary";

/// Where each needle occurs in `bytes` (named `what`).
fn find_in(what: &str, bytes: &[u8], needles: &[(String, Vec<u8>)], found: &mut Vec<String>) {
    let anchors = [
        ANCHOR.as_bytes().to_vec(),
        hex(ANCHOR.as_bytes()).into_bytes(),
        hex(ANCHOR.as_bytes()).to_lowercase().into_bytes(),
        ANCHOR
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect(),
        ANCHOR
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect::<Vec<u8>>(),
    ];
    if !anchors
        .iter()
        .any(|a| memchr::memmem::find(bytes, a).is_some())
    {
        return;
    }
    for (name, n) in needles {
        if memchr::memmem::find(bytes, n).is_some() {
            found.push(format!("{name} in {what}"));
        }
    }
}

/// Every regular file under `dir`, but `skip`.
fn files(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p == skip {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            files(&p, skip, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

/// Searches every byte of every file of the data folder (but the dumps
/// folder, which holds the originals by design) and of `archives`
/// (tar + zstd, decompressed): what was found. Also checks that the
/// template, an instance and a snapshot were among what was searched.
fn search(app: &TestApp, archives: &[(&str, &[u8])]) -> Vec<String> {
    let needles = needles();
    let mut all = Vec::new();
    files(app.data_dir(), &app.dumps_dir(), &mut all);
    let rel: Vec<String> = all
        .iter()
        .map(|p| {
            p.strip_prefix(app.data_dir())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for part in ["templates/", "instances/", "snapshots/"] {
        assert!(
            rel.iter()
                .any(|r| r.contains(part) && r.ends_with("ibdata1")),
            "no datadir under {part} was searched: {rel:#?}"
        );
    }
    let mut found = Vec::new();
    let mut bytes_searched = 0u64;
    for (p, r) in all.iter().zip(&rel) {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        bytes_searched += bytes.len() as u64;
        find_in(r, &bytes, &needles, &mut found);
    }
    for (name, archive) in archives {
        let tar = zstd::stream::decode_all(*archive).expect("the archive decompresses");
        assert!(tar.len() > 1 << 20, "{name}: {} bytes", tar.len());
        bytes_searched += tar.len() as u64;
        find_in(name, &tar, &needles, &mut found);
    }
    eprintln!(
        "searched {} files and {} archive(s): {} bytes",
        all.len(),
        archives.len(),
        bytes_searched
    );
    found
}

/// An instance of `t`, a row read back (as `expect` says it is masked), a
/// snapshot and its export: the export's bytes.
async fn instance_snapshot_export(app: &TestApp, t: &str, expect: &str) -> Vec<u8> {
    let base = format!("/api/v1/templates/{t}/instances/dev");
    let (status, i) = app.post_json(&base, json!({})).await;
    assert_eq!(status, 201, "{i}");
    let (port, pw, db) = (
        i["port"].as_u64().unwrap() as u16,
        i["password"].as_str().unwrap().to_owned(),
        i["database"].as_str().unwrap().to_owned(),
    );
    let rows = query(
        port,
        &pw,
        &db,
        "SELECT CONCAT_WS('|', email, name, photo IS NULL, \
         (SELECT COUNT(DISTINCT email) FROM customers)) FROM customers WHERE id = 1",
    )
    .await;
    let got = rows[0][0].clone().unwrap_or_default();
    assert!(
        got.starts_with(expect) || glob(expect, &got),
        "{got} is not {expect}"
    );
    let (status, s) = app
        .post_json(&format!("{base}/snapshots/one"), json!({}))
        .await;
    assert_eq!(status, 201, "{s}");
    let r = app.get(&format!("{base}/snapshots/one/export")).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_post_script_leaves_no_canary_in_any_file() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", canary_dump().as_bytes());
    app.write_dump("shop.post.sql", POST_SCRIPT.as_bytes());
    app.update_ok(&["shop"]).await;

    let t = app.get_json("/api/v1/templates/shop").await;
    let v = &t["versions"][0];
    assert_eq!(v["masking"]["post_script_cleanup"], true, "{t}");

    let archive =
        instance_snapshot_export(&app, "shop", "c1@example.invalid|Customer 1|1|399").await;
    let found = search(&app, &[("the export archive", &archive)]);
    assert!(found.is_empty(), "canaries found:\n{}", found.join("\n"));
}

/// `pattern` with `*` for any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = s;
    for (k, p) in parts.iter().enumerate() {
        match rest.find(p) {
            Some(i) if k > 0 || i == 0 => rest = &rest[i + p.len()..],
            _ => return false,
        }
    }
    rest.is_empty() || pattern.ends_with('*')
}

/// Rules masking every canary; strict, so every column is named.
const RULES: &str = r#"
strict = true

[tables.customers]
id = "keep"
email = "email"
name = { fake = "name" }
profile = { constant = "{}" }
photo = "hash"
alias = "hash"

[tables.audit]
email = "email"
note = "null"
"#;

const KEY: &str = "a test key of some length";

/// Imports the canary dump masked by [`RULES`], loaded as `opts` says.
async fn masked_by_rules(opts: template::UpdateOptions) {
    let app = TestApp::spawn_with(|s| s.mask_key = Some(Secret::new(KEY))).await;
    app.write_dump("shop.sql", canary_dump().as_bytes());
    app.write_dump("shop.mask.toml", RULES.as_bytes());
    let ctx = Arc::new(Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap());
    let only = [TemplateName::parse("shop").unwrap()];
    let outcomes = template::update_with(&ctx, &only, &template::NothingInUse, &opts)
        .await
        .unwrap();
    let meta = outcomes[0].result.as_ref().expect("the masked import");
    let masking = meta.masking.as_ref().expect("masking recorded");
    assert!(masking.strict && !masking.post_script_cleanup);
    let rules = masking.rules.as_ref().unwrap();
    assert_eq!(rules.name, "shop.mask.toml");
    assert_eq!(rules.sha256.len(), 64);

    let t = app.get_json("/api/v1/templates/shop").await;
    assert_eq!(t["versions"][0]["masking"]["strict"], true, "{t}");
    assert_eq!(
        t["versions"][0]["masking"]["rules_sha256"],
        rules.sha256.as_str()
    );
    // Shown where people look: the web UI's templates page.
    let page = app.get("/ui/templates").await.text().await.unwrap();
    assert!(page.contains("data-testid=\"masked\""), "{page}");
    assert!(
        page.contains(&format!(
            "rules shop.mask.toml (sha256 {}, strict)",
            &rules.sha256[..12]
        )),
        "{page}"
    );

    // Masked, distinct still (UNIQUE), and no photo lost its row.
    let archive = instance_snapshot_export(&app, "shop", "h*@example.invalid|* *|0|399").await;
    let found = search(&app, &[("the export archive", &archive)]);
    assert!(found.is_empty(), "canaries found:\n{}", found.join("\n"));
}

#[tokio::test]
async fn rules_leave_no_canary_in_any_file_split_load() {
    masked_by_rules(template::UpdateOptions::default()).await;
}

#[tokio::test]
async fn rules_leave_no_canary_in_any_file_one_session_load() {
    masked_by_rules(template::UpdateOptions {
        jobs: Some(1),
        defer_indexes: Some(false),
        ..Default::default()
    })
    .await;
}

#[tokio::test]
async fn strict_rules_refuse_an_unclassified_column() {
    let app = TestApp::spawn_with(|s| s.mask_key = Some(Secret::new(KEY))).await;
    app.write_dump("shop.sql", canary_dump().as_bytes());
    let rules = RULES.replace("alias = \"hash\"\n", "");
    app.write_dump("shop.mask.toml", rules.as_bytes());
    let outcomes = app.update(&["shop"]).await;
    let e = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(
        e.contains("no rule") && e.contains("customers.alias"),
        "{e}"
    );
    assert!(!e.contains("canary"), "{e}");
    let t = app.get_json("/api/v1/templates/shop").await;
    assert!(t["current_version"].is_null(), "{t}");

    // A rule for a column the dump lacks names it.
    let rules = format!("{RULES}ssn = \"null\"\n");
    app.write_dump("shop.mask.toml", rules.as_bytes());
    let outcomes = app.update(&["shop"]).await;
    let e = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(e.contains("audit.ssn"), "{e}");
}

/// The control: without the post script's clean-up the same search finds
/// the canaries, so the search above does see them when they are there.
#[tokio::test]
async fn the_search_finds_canaries_that_are_there() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", canary_dump().as_bytes());
    app.update_ok(&["shop"]).await;
    let needles = needles();
    let mut all = Vec::new();
    files(&app.data_dir().join("templates"), Path::new("/"), &mut all);
    let mut found = Vec::new();
    for p in &all {
        if let Ok(bytes) = std::fs::read(p) {
            find_in(&p.display().to_string(), &bytes, &needles, &mut found);
        }
    }
    for c in CANARIES {
        assert!(
            found.iter().any(|f| f.starts_with(c)),
            "{c} not found in the unmasked template: {found:#?}"
        );
    }
    // The UTF-16 column is found as UTF-16, the BLOB raw.
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("canary-utf16-Ozymandias (UTF-16BE)")),
        "{found:#?}"
    );
}

/// A failed import shows members the dump, the line, the error code and
/// class, never the row's values; the log has the full message.
#[tokio::test]
async fn a_failed_import_shows_no_row_values() {
    let app = TestApp::spawn().await;
    app.write_dump(
        "shop.sql",
        b"-- MariaDB dump\nCREATE TABLE `t` (`id` int PRIMARY KEY, `email` varchar(100), \
          UNIQUE KEY `email` (`email`)) ENGINE=InnoDB;\n\
          INSERT INTO `t` VALUES (1,'real.person@corp.example'),(2,'real.person@corp.example');\n\
          -- Dump completed on 2026-12-07\n",
    );
    let outcomes = app.update(&["shop"]).await;
    let full = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(full.contains("real.person"), "the log's form: {full}");
    let t = app.get_json("/api/v1/templates/shop").await;
    let shown = t["last_import"]["message"].as_str().unwrap();
    assert!(!shown.contains("real.person"), "{shown}");
    for part in ["shop.sql", "1062", "23000", "at line 3", "Duplicate entry"] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
}
