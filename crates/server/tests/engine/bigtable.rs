//! One big table, loaded over several sessions where that is safe and in
//! the dump's order where it is not, against the real engine: generated
//! mysqldump-shaped dumps where one table (`orders`) holds about 75 % of
//! the bytes, each imported by dolly and loaded the plain way (`mariadb
//! db < dump`, `mysql` on MySQL) into a server of the same image, then
//! compared object by object (`SHOW CREATE`, row counts, `CHECKSUM
//! TABLE`) as the corpus test does.
//!
//! The dumps set a time zone other than the server's and carry 4-byte
//! UTF-8, quotes and backslashes: a session that missed the dump's
//! settings would store other bytes. The unsafe shapes (no primary key, a
//! trigger firing on the rows, ids the server assigns, rows read from
//! other tables, a server-assigned id after rows were spread) must still
//! load identically, in the dump's order.

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

/// How the big table and its rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Primary key, secondary keys, a foreign key, explicit ids: spread.
    Spread,
    /// No primary key.
    NoPk,
    /// A trigger created before the rows, firing on each.
    Trigger,
    /// `INSERT INTO orders (cols without id) VALUES ...`: ids assigned
    /// by the server.
    ServerIds,
    /// Rows computed from other tables: `INSERT ... SELECT` and a query
    /// inside `VALUES`.
    Select,
    /// Spread rows, then one with `NULL` for its id.
    LateNull,
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const WORDS: [&str; 8] = [
    "parcel",
    "O\\'Brien",
    "Zoë",
    "naïve",
    "🐬 fast",
    "back\\\\slash",
    "line\\nbreak",
    "\\\"quoted\\\"",
];

fn orders_create(shape: Shape) -> String {
    let (id, pk) = match shape {
        Shape::NoPk => ("`id` bigint NOT NULL", ""),
        _ => (
            "`id` bigint NOT NULL AUTO_INCREMENT",
            "  PRIMARY KEY (`id`),\n",
        ),
    };
    format!(
        "DROP TABLE IF EXISTS `orders`;\n\
         CREATE TABLE `orders` (\n  {id},\n  `customer_id` int NOT NULL,\n  \
         `status` varchar(16) NOT NULL,\n  `total` decimal(12,2) NOT NULL,\n  \
         `created_at` timestamp NOT NULL DEFAULT '2000-01-01 00:00:00',\n  `note` text,\n\
         {pk}  KEY `idx_customer` (`customer_id`),\n  KEY `idx_status_created` (`status`,`created_at`),\n  \
         CONSTRAINT `fk_orders_customer` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)\n\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n"
    )
}

/// A dump of about `bytes`, `orders` holding about 75 % of them.
fn dump(shape: Shape, bytes: usize) -> String {
    let mut rng = Rng(0x5eed ^ shape as u64);
    let mut d = String::from(HEADER);
    d.push_str(
        "DROP TABLE IF EXISTS `customers`;\n\
         CREATE TABLE `customers` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  \
         `email` varchar(120) NOT NULL,\n  `name` varchar(80) NOT NULL,\n  \
         PRIMARY KEY (`id`),\n  UNIQUE KEY `uq_email` (`email`),\n  KEY `idx_name` (`name`)\n\
         ) ENGINE=InnoDB AUTO_INCREMENT=2001 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;\n\
         LOCK TABLES `customers` WRITE;\n",
    );
    let customers = 2000;
    for chunk in 0..4 {
        d.push_str("INSERT INTO `customers` VALUES ");
        for k in 0..customers / 4 {
            let id = chunk * customers / 4 + k + 1;
            let w = WORDS[rng.below(8) as usize];
            if k > 0 {
                d.push(',');
            }
            let _ = write!(d, "({id},'c{id}@example.com','{w} {id}')");
        }
        d.push_str(";\n");
    }
    d.push_str("UNLOCK TABLES;\n");
    if shape == Shape::Trigger {
        d.push_str(
            "DROP TABLE IF EXISTS `audit`;\n\
             CREATE TABLE `audit` (`n` int NOT NULL AUTO_INCREMENT PRIMARY KEY, `order_id` bigint NOT NULL);\n",
        );
    }
    d.push_str(&orders_create(shape));
    if shape == Shape::Trigger {
        d.push_str(
            "DELIMITER ;;\n\
             CREATE TRIGGER `orders_bi` BEFORE INSERT ON `orders` FOR EACH ROW BEGIN\n  \
             SET NEW.total = NEW.total + 1;\n  INSERT INTO `audit` (`order_id`) VALUES (NEW.id);\nEND ;;\n\
             DELIMITER ;\n",
        );
    }
    d.push_str("LOCK TABLES `orders` WRITE;\n/*!40000 ALTER TABLE `orders` DISABLE KEYS */;\n");
    let target = d.len() + bytes * 3 / 4;
    let mut id = 0u64;
    while d.len() < target {
        d.push_str(if shape == Shape::ServerIds {
            "INSERT INTO `orders` (`customer_id`, `status`, `total`, `created_at`, `note`) VALUES "
        } else {
            "INSERT INTO `orders` VALUES "
        });
        let start = d.len();
        while d.len() - start < 200_000 {
            id += 1;
            if d.len() > start {
                d.push(',');
            }
            let id_value = match shape {
                Shape::ServerIds => String::new(),
                _ => format!("{id},"),
            };
            let status = ["new", "paid", "shipped", "returned"][rng.below(4) as usize];
            let note = match rng.below(5) {
                0 => "NULL".to_owned(),
                _ => format!(
                    "'{} {} {}'",
                    WORDS[rng.below(8) as usize],
                    WORDS[rng.below(8) as usize],
                    rng.below(1 << 30)
                ),
            };
            let _ = write!(
                d,
                "({id_value}{},'{status}',{}.{:02},'2026-{:02}-{:02} {:02}:{:02}:{:02}',{note})",
                rng.below(customers) + 1,
                rng.below(10_000),
                rng.below(100),
                rng.below(12) + 1,
                rng.below(28) + 1,
                rng.below(24),
                rng.below(60),
                rng.below(60),
            );
        }
        d.push_str(";\n");
    }
    if shape == Shape::LateNull {
        // One row a statement: a multi-row INSERT with a NULL id reserves
        // one id per row in the server's memory (AUTO_INCREMENT shows the
        // reserved ids until a restart, which dolly's template has had).
        d.push_str(
            "INSERT INTO `orders` VALUES (NULL,1,'late',1.00,'2026-12-01 00:00:00','late');\n",
        );
        d.push_str("INSERT INTO `orders` VALUES (0,2,'zero',2.00,'2026-12-01 00:00:00',NULL);\n");
    }
    d.push_str("/*!40000 ALTER TABLE `orders` ENABLE KEYS */;\nUNLOCK TABLES;\n");
    if shape == Shape::Select {
        d.push_str(
            "DROP TABLE IF EXISTS `order_stats`;\n\
             CREATE TABLE `order_stats` (`status` varchar(16) NOT NULL PRIMARY KEY, `n` int NOT NULL, `biggest` bigint);\n\
             INSERT INTO `order_stats` VALUES ('all',(SELECT COUNT(*) FROM `orders`),(SELECT MAX(id) FROM `orders`));\n\
             INSERT INTO `order_stats` SELECT `status`, COUNT(*), MAX(`id`) FROM `orders` GROUP BY `status`;\n",
        );
    }
    d.push_str(
        "DROP TABLE IF EXISTS `products`;\n\
         CREATE TABLE `products` (\n  `id` int NOT NULL,\n  `sku` varchar(32) NOT NULL,\n  \
         `price` decimal(10,2) NOT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `uq_sku` (`sku`)\n\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n",
    );
    let target = d.len() + bytes / 10;
    let mut p = 0;
    while d.len() < target {
        d.push_str("INSERT INTO `products` VALUES ");
        for k in 0..500 {
            p += 1;
            if k > 0 {
                d.push(',');
            }
            let _ = write!(d, "({p},'SKU-{p:06}',{}.99)", rng.below(500));
        }
        d.push_str(";\n");
    }
    d.push_str(TRAILER);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_big_table_loads_as_the_plain_load_does() {
    let mut app = TestApp::new_stopped(|_| {}).await;
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let image = ctx.image().await.expect("image probe").clone();
    let oracle = Oracle::start(&ctx, &image, app.data_dir().join("oracle")).await;
    let db = app.settings.database.clone();

    let shapes = [
        (Shape::Spread, 28 << 20),
        (Shape::NoPk, 7 << 20),
        (Shape::Trigger, 7 << 20),
        (Shape::ServerIds, 7 << 20),
        (Shape::Select, 7 << 20),
        (Shape::LateNull, 26 << 20),
    ];
    let mut plain = Vec::new();
    for (shape, bytes) in shapes {
        let d = dump(shape, bytes);
        let orders: usize = d
            .lines()
            .filter(|l| l.starts_with("INSERT INTO `orders`"))
            .map(str::len)
            .sum();
        assert!(
            orders * 10 > d.len() * 7,
            "{shape:?}: orders is the big table"
        );
        oracle
            .load(d.clone().into_bytes(), &db)
            .await
            .unwrap_or_else(|e| panic!("{shape:?}: the plain load fails: {e}"));
        plain.push(state(&app.engine, &image, &oracle.name, &[]).await);
        app.write_dump(&format!("{}.sql", name(shape)), d.as_bytes());
    }
    app.engine.remove(&oracle.name).await.unwrap();

    let outcomes = app.update(&[]).await;
    app.start().await;
    let mut failures = Vec::new();
    for ((shape, _), plain) in shapes.iter().zip(&plain) {
        let template = name(*shape);
        let outcome = outcomes
            .iter()
            .find(|o| o.template.as_str() == template)
            .unwrap_or_else(|| panic!("no import of {template}"));
        let meta = match &outcome.result {
            Ok(meta) => meta,
            Err(e) => {
                failures.push(format!("{template}: the import fails: {e}"));
                continue;
            }
        };
        // Whatever redo log the import server loaded with, the template
        // has the size clones use (they never resize theirs at start).
        let current = app
            .data_dir()
            .join("templates")
            .join(template)
            .join("current");
        let redo: u64 = match std::fs::metadata(current.join("ib_logfile0")) {
            Ok(m) => m.len(),
            Err(_) => std::fs::read_dir(current.join("#innodb_redo"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0),
        };
        if redo == 0 || redo > 48 << 20 {
            failures.push(format!(
                "{template}: the template's redo log is {redo} bytes"
            ));
        }
        let load = meta.load.as_ref().expect("a split load");
        println!(
            "{template}: {} tables, {} spread, {} rows files; fallback: {}",
            load.tables,
            load.spread_tables,
            load.rows_files,
            load.fallback.as_deref().unwrap_or("none")
        );
        // Where the rows went: over the sessions only when it is safe; as
        // rows files (which stay in their table's session, in the dump's
        // order) where the image's server reads them.
        let (spread, fallback) = (load.spread_tables, load.fallback.as_deref());
        let files = load.rows_files > 0;
        let expected = match shape {
            Shape::Spread if image.loads_rows_files() => files && spread == 0 && fallback.is_none(),
            Shape::Spread => spread >= 1 && fallback.is_none(),
            Shape::NoPk | Shape::ServerIds => spread == 0 && fallback.is_none(),
            Shape::Trigger => {
                spread == 0 && fallback.is_some_and(|f| f.contains("after its trigger"))
            }
            Shape::Select => fallback.is_some_and(|f| f.contains("reads other tables")),
            // Rows files keep the dump's order: the late NULL id follows
            // them in the same session.
            Shape::LateNull if image.loads_rows_files() => {
                files && spread == 0 && fallback.is_none()
            }
            Shape::LateNull => {
                spread == 1 && fallback.is_some_and(|f| f.contains("NULL in the AUTO_INCREMENT"))
            }
        };
        if !expected {
            failures.push(format!(
                "{template}: routed unexpectedly: {spread} spread, fallback {fallback:?}"
            ));
        }
        let body = app.create(template, "cmp").await;
        let (_, password, _) = common::creds(&body);
        let container = format!("{}{template}.cmp", app.settings.container_prefix);
        let pw = format!("-p{password}");
        let dolly = state(&app.engine, &image, &container, &[&pw]).await;
        assert!(
            plain.keys().any(|k| k.contains(".orders ")),
            "{template}: {:?}",
            plain.keys()
        );
        let diffs = differences(plain, &dolly);
        if !diffs.is_empty() {
            failures.push(format!(
                "{template}: {} differences:\n{}",
                diffs.len(),
                diffs.into_iter().take(8).collect::<Vec<_>>().join("\n")
            ));
        }
        let r = app.delete(&format!("/db/{template}/cmp")).await;
        assert_eq!(r.status(), 204);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn name(shape: Shape) -> &'static str {
    match shape {
        Shape::Spread => "spread",
        Shape::NoPk => "nopk",
        Shape::Trigger => "trigger",
        Shape::ServerIds => "serverids",
        Shape::Select => "select",
        Shape::LateNull => "latenull",
    }
}
