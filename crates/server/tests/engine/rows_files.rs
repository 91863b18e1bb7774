//! Rows sent as `LOAD DATA` files store what the `INSERT`s would have,
//! against the real engine: a mysqldump-shaped dump whose values sit at
//! the edges (every escape, the texts `NULL` and `\N`, tabs and newlines,
//! 4-byte UTF-8, latin1 and utf8mb3 columns, decimals that round or
//! overflow, out-of-range integers and dates, invalid `ENUM` and `SET`
//! members, `NULL` into `NOT NULL`, a time zone other than the server's),
//! loaded under mysqldump's non-strict `sql_mode` the plain way (`mariadb
//! db < dump`) into a server of the same image and imported by dolly, then
//! compared object by object (`SHOW CREATE`, row counts, `CHECKSUM TABLE`).
//! On MariaDB the import must have used rows files.

use crate::common;

use std::fmt::Write as _;
use std::sync::Arc;

use common::compare::{differences, state};
use common::server::Oracle;
use common::TestApp;
use dolly_core::context::Context;

const HEADER: &str = "-- MySQL dump 10.13\n\
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
/*!40101 SET NAMES utf8mb4 */;\n\
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n\
/*!40103 SET TIME_ZONE='+05:30' */;\n\
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n";

const TRAILER: &str = "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n\
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n\
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2026-12-07  3:00:00\n";

/// Strings as mysqldump writes them (already escaped), for text columns.
const STRINGS: &[&str] = &[
    "",
    "plain",
    "it\\'s ''doubled'' \\\"dq\\\"",
    "tab\\there",
    "line\\nbreak\\rreturn",
    "nul\\0byte",
    "back\\\\slash\\\\",
    "ctrl-z \\Z and \\b",
    "like \\% and \\_ wildcards",
    "NULL",
    "\\\\N",
    "N",
    "\\\\",
    "trailing spaces   ",
    "caf\u{e9} na\u{ef}ve \u{1F600} \u{4E2D}\u{6587}",
    "a\ttab and a\nnewline raw",
    "x,y),(z",
    "-- not a comment; /* nor this */",
];

/// Values for the other columns: (decimal, bigint, unsigned, datetime,
/// timestamp, time, date, enum, set, char(5)).
const OTHERS: &[[&str; 10]] = &[
    [
        "0",
        "0",
        "0",
        "'2024-01-02 03:04:05'",
        "'2024-01-02 03:04:05'",
        "'12:34:56'",
        "'2024-01-02'",
        "'a'",
        "'x'",
        "'abc'",
    ],
    [
        "-12.5",
        "-9223372036854775808",
        "18446744073709551615",
        "'1000-01-01 00:00:00'",
        "'1970-01-01 05:30:01'",
        "'838:59:59'",
        "'9999-12-31'",
        "'c'",
        "'x,z'",
        "'abcde'",
    ],
    [
        "1.005",
        "9223372036854775807",
        "007",
        "'2024-02-30 10:00:00'",
        "'1970-01-01 00:00:00'",
        "'-12:00:00'",
        "'2024-13-01'",
        "'q'",
        "'y,q'",
        "'toolong'",
    ],
    [
        "123456789.999",
        "99999999999999999999",
        "-1",
        "'0000-00-00 00:00:00'",
        "'2038-01-19 09:14:07'",
        "'25:61:00'",
        "''",
        "''",
        "''",
        "'  '",
    ],
    [
        "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL",
    ],
    [
        "99999999.99",
        "-0",
        "0",
        "'2024-01-02'",
        "'2024-06-30 23:59:59'",
        "'10'",
        "'20240102'",
        "'b'",
        "'z,y,x'",
        "'é😀'",
    ],
];

fn dump() -> String {
    let mut d = String::from(HEADER);
    d.push_str(
        "DROP TABLE IF EXISTS `vals`;\n\
         CREATE TABLE `vals` (\n  `id` int NOT NULL,\n  `s` varchar(20) DEFAULT NULL,\n  \
         `t` text,\n  `l1` varchar(60) CHARACTER SET latin1 DEFAULT NULL,\n  \
         `m3` varchar(60) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin DEFAULT NULL,\n  \
         `nn` varchar(10) NOT NULL DEFAULT 'dflt',\n  \
         `dec` decimal(10,2) DEFAULT NULL,\n  `big` bigint DEFAULT NULL,\n  \
         `ub` bigint unsigned DEFAULT NULL,\n  `dt` datetime DEFAULT NULL,\n  \
         `ts` timestamp NULL DEFAULT NULL,\n  `tm` time DEFAULT NULL,\n  `dd` date DEFAULT NULL,\n  \
         `e` enum('a','b','c') DEFAULT NULL,\n  `st` set('x','y','z') DEFAULT NULL,\n  \
         `c5` char(5) DEFAULT NULL,\n  `ti` tinyint NOT NULL DEFAULT 3,\n  \
         PRIMARY KEY (`id`),\n  KEY `k_s` (`s`)\n\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n",
    );
    let mut id = 0;
    for round in 0..3 {
        d.push_str("INSERT INTO `vals` VALUES ");
        let mut first = true;
        for s in STRINGS {
            for o in OTHERS {
                id += 1;
                if !first {
                    d.push(',');
                }
                first = false;
                let nn = if id % 7 == 0 {
                    "NULL".to_owned()
                } else {
                    format!("'{s}'")
                };
                let ti = match id % 5 {
                    0 => "300",
                    1 => "-129",
                    _ => "42",
                };
                let _ = write!(
                    d,
                    "({id},'{s}','{s}{round}','{s}','{s}',{nn},{},{},{},{},{},{},{},{},{},{},{ti})",
                    o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8], o[9]
                );
            }
        }
        d.push_str(";\n");
    }
    // A column list, the others from their defaults.
    d.push_str("INSERT INTO `vals` (`id`, `s`, `dec`) VALUES ");
    for k in 0..50 {
        if k > 0 {
            d.push(',');
        }
        let _ = write!(d, "({},'part {k}',{k}.25)", 100_000 + k);
    }
    d.push_str(";\n");
    d.push_str(TRAILER);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_files_store_what_the_inserts_would() {
    let mut app = TestApp::new_stopped(|_| {}).await;
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let image = ctx.image().await.expect("image probe").clone();
    let oracle = Oracle::start(&ctx, &image, app.data_dir().join("oracle")).await;
    let db = app.settings.database.clone();
    let d = dump();
    oracle
        .load(d.clone().into_bytes(), &db)
        .await
        .unwrap_or_else(|e| panic!("the plain load fails: {e}"));
    let plain = state(&app.engine, &image, &oracle.name, &[]).await;
    app.engine.remove(&oracle.name).await.unwrap();
    assert!(
        plain.keys().any(|k| k.contains(".vals ")),
        "{:?}",
        plain.keys()
    );
    app.write_dump("edges.sql", d.as_bytes());

    let outcomes = app.update(&[]).await;
    let meta = match &outcomes[0].result {
        Ok(meta) => meta.clone(),
        Err(e) => panic!("the import fails: {e}"),
    };
    let load = meta.load.as_ref().expect("a split load");
    println!(
        "{} rows files, fallback {:?}",
        load.rows_files, load.fallback
    );
    assert_eq!(load.fallback, None);
    if image.loads_rows_files() {
        assert_eq!(
            load.rows_files, 4,
            "every INSERT of the dump converts to a rows file"
        );
    } else {
        assert_eq!(load.rows_files, 0);
    }
    app.start().await;
    let body = app.create("edges", "cmp").await;
    let (_, password, _) = common::creds(&body);
    let container = format!("{}edges.cmp", app.settings.container_prefix);
    let pw = format!("-p{password}");
    let dolly = state(&app.engine, &image, &container, &[&pw]).await;
    let diffs = differences(&plain, &dolly);
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.into_iter().take(8).collect::<Vec<_>>().join("\n")
    );
    // Nothing of the rows files is left.
    let left = app.tmp_entries("import-rows.");
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}
