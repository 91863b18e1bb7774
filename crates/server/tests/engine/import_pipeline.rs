//! The import pipeline against the real engine: a dump split by table
//! into parallel sessions with deferred keys gives what one plain session
//! gives; the fallback; post-import SQL; the unchanged skip and `--force`;
//! live progress in the API; `CREATE SCHEMA`.

use crate::common;

use std::time::{Duration, Instant};

use common::{creds, query, scalar, simple_dump, TestApp};
use dolly_core::context::Context;
use dolly_core::instance::Manager;
use dolly_core::template::{self, ImportOutcome, UpdateOptions};
use dolly_types::TemplateName;

fn tpl(name: &str) -> TemplateName {
    TemplateName::parse(name).unwrap()
}

async fn update_with(app: &TestApp, names: &[&str], opts: UpdateOptions) -> Vec<ImportOutcome> {
    let ctx = std::sync::Arc::new(
        Context::new(app.settings.clone(), std::sync::Arc::clone(&app.engine)).unwrap(),
    );
    let manager = Manager::new(std::sync::Arc::clone(&ctx));
    let only: Vec<TemplateName> = names.iter().map(|n| tpl(n)).collect();
    template::update_with(&ctx, &only, &manager, &opts)
        .await
        .expect("update runs")
}

fn plain() -> UpdateOptions {
    UpdateOptions {
        force: true,
        jobs: Some(1),
        defer_indexes: Some(false),
        // The plain path initialises its own datadir: the comparisons
        // below also prove the cached initial datadir changes nothing.
        cached_init: Some(false),
        spread_rows: Some(false),
        load_data: Some(false),
    }
}

fn split(jobs: usize) -> UpdateOptions {
    UpdateOptions {
        force: true,
        jobs: Some(jobs),
        defer_indexes: Some(true),
        cached_init: Some(true),
        spread_rows: None,
        load_data: None,
    }
}

fn ok(outcomes: &[ImportOutcome]) -> template::VersionMeta {
    assert_eq!(outcomes.len(), 1);
    match &outcomes[0].result {
        Ok(m) => m.clone(),
        Err(e) => panic!("import of {} failed: {e}", outcomes[0].template),
    }
}

/// mysqldump's constructs: generated columns (virtual and stored, indexed),
/// two FULLTEXT keys, a foreign key cycle, a table without a primary key,
/// utf8mb4, BLOBs (one large), triggers, a function and a procedure inside
/// DELIMITER, views over views (with mysqldump's stand-ins), LOCK TABLES.
fn kitchen_dump() -> String {
    let big: String = (0..150_000u32)
        .map(|i| format!("{:02X}", (i * 7 % 251) as u8))
        .collect();
    let mut words = String::new();
    for i in 0..2000 {
        words.push_str(&format!(
            "({i},{},'row {i} — naïve café ☕','{}'),",
            1 + i % 3,
            ["alpha beta", "gamma delta", "it\\'s \\\"quoted\\\"; ok"][i as usize % 3]
        ));
    }
    words.pop();
    format!(
        r#"-- MariaDB dump 10.19  Distrib 10.11.18-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: kitchen
-- ------------------------------------------------------

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `kitchen` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */;

USE `kitchen`;

--
-- Table structure for table `authors`
--

DROP TABLE IF EXISTS `authors`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8 */;
CREATE TABLE `authors` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(100) NOT NULL,
  `best_book_id` int(11) DEFAULT NULL,
  `name_upper` varchar(100) GENERATED ALWAYS AS (ucase(`name`)) VIRTUAL,
  `name_len` int(11) GENERATED ALWAYS AS (char_length(`name`)) STORED,
  PRIMARY KEY (`id`),
  KEY `best_book_id` (`best_book_id`),
  KEY `name_upper` (`name_upper`),
  KEY `name_len` (`name_len`,`name`),
  CONSTRAINT `authors_best_book` FOREIGN KEY (`best_book_id`) REFERENCES `books` (`id`) ON DELETE SET NULL
) ENGINE=InnoDB AUTO_INCREMENT=4 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

LOCK TABLES `authors` WRITE;
/*!40000 ALTER TABLE `authors` DISABLE KEYS */;
INSERT INTO `authors` (`id`, `name`, `best_book_id`) VALUES (1,'Antoine de Saint-Exupéry',2),(2,'Zoë 🐬 Ångström',NULL),(3,'O\'Brien',3);
/*!40000 ALTER TABLE `authors` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `books`
--

DROP TABLE IF EXISTS `books`;
CREATE TABLE `books` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `author_id` int(11) NOT NULL,
  `title` varchar(200) NOT NULL,
  `body` mediumtext NOT NULL,
  `cover` mediumblob DEFAULT NULL,
  `isbn` char(13) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `isbn` (`isbn`),
  KEY `author_id` (`author_id`),
  FULLTEXT KEY `ft_title` (`title`),
  FULLTEXT KEY `ft_all` (`title`,`body`),
  CONSTRAINT `books_author` FOREIGN KEY (`author_id`) REFERENCES `authors` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

LOCK TABLES `books` WRITE;
INSERT INTO `books` VALUES (1,1,'Le Petit Prince 🌹','Il était une fois...\nLigne deux; avec ; et \'quotes\'',0x89504E470D0A1A0A0000FF,'9780156012195'),(2,1,'Vol de nuit','Nuit;\r\n\\ backslash',NULL,NULL),(3,3,'Big','{big_body}',0x{big},'1234567890123'),(4,2,'Delimiter ;; inside','DELIMITER ;; is text here',NULL,'x');
UNLOCK TABLES;

--
-- Table structure for table `book_log`
--

DROP TABLE IF EXISTS `book_log`;
CREATE TABLE `book_log` (
  `book_id` int(11) NOT NULL,
  `note` varchar(200) NOT NULL,
  KEY `book_id` (`book_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

LOCK TABLES `book_log` WRITE;
INSERT INTO `book_log` VALUES (1,'seeded'),(2,'seeded');
UNLOCK TABLES;

/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `books_ai` AFTER INSERT ON `books` FOR EACH ROW BEGIN
  INSERT INTO book_log (book_id, note) VALUES (NEW.id, CONCAT('new: ', NEW.title));
END */;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `books_ai2` AFTER INSERT ON `books` FOR EACH ROW FOLLOWS `books_ai` SET @dolly_last = NEW.id */;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;

--
-- Table structure for table `words`
--

DROP TABLE IF EXISTS `words`;
CREATE TABLE `words` (
  `id` int(11) NOT NULL,
  `kind` tinyint(4) NOT NULL,
  `text` varchar(100) NOT NULL,
  `tag` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`id`,`kind`),
  KEY `kind_text` (`kind`,`text`(20)),
  KEY `tag` (`tag`) COMMENT 'a, comment (with parens)'
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

LOCK TABLES `words` WRITE;
INSERT INTO `words` VALUES {words};
INSERT INTO `words` VALUES (5000,9,'last','z');
UNLOCK TABLES;

--
-- Temporary table structure for view `v_books`
--

DROP TABLE IF EXISTS `v_books`;
/*!50001 DROP VIEW IF EXISTS `v_books`*/;
SET @saved_cs_client     = @@character_set_client;
SET character_set_client = utf8;
/*!50001 CREATE VIEW `v_books` AS SELECT
 1 AS `title`,
 1 AS `author` */;
SET character_set_client = @saved_cs_client;

--
-- Temporary table structure for view `v_stats`
--

DROP TABLE IF EXISTS `v_stats`;
/*!50001 DROP VIEW IF EXISTS `v_stats`*/;
/*!50001 CREATE VIEW `v_stats` AS SELECT
 1 AS `n` */;

--
-- Dumping routines for database 'kitchen'
--
/*!50003 DROP FUNCTION IF EXISTS `title_count` */;
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` FUNCTION `title_count`(aid INT) RETURNS int(11)
    READS SQL DATA
BEGIN
  DECLARE n INT;
  SELECT COUNT(*) INTO n FROM books WHERE author_id = aid;
  RETURN n;
END ;;
DELIMITER ;
/*!50003 DROP PROCEDURE IF EXISTS `add_book` */;
DELIMITER ;;
CREATE DEFINER=`root`@`localhost` PROCEDURE `add_book`(IN aid INT, IN t VARCHAR(200))
BEGIN
  INSERT INTO books (author_id, title, body) VALUES (aid, t, '');
END ;;
DELIMITER ;

--
-- Final view structure for view `v_books`
--

/*!50001 DROP VIEW IF EXISTS `v_books`*/;
/*!50001 SET @saved_cs_client          = @@character_set_client */;
/*!50001 SET character_set_client      = utf8mb4 */;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v_books` AS select `b`.`title` AS `title`,`a`.`name` AS `author` from (`books` `b` join `authors` `a` on(`a`.`id` = `b`.`author_id`)) */;
/*!50001 SET character_set_client      = @saved_cs_client */;

--
-- Final view structure for view `v_stats`
--

/*!50001 DROP VIEW IF EXISTS `v_stats`*/;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v_stats` AS select count(0) AS `n` from `v_books` */;

/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-11-24 10:00:00
"#,
        big = big,
        big_body = "lorem ipsum ".repeat(20_000),
        words = words,
    )
}

/// Everything a client can see of a database's definitions and data.
async fn describe_db(port: u16, pw: &str, db: &str) -> Vec<String> {
    let mut out = Vec::new();
    let tables = query(
        port,
        pw,
        db,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = DATABASE() ORDER BY 1",
    )
    .await;
    for row in &tables {
        let name = row[0].clone().unwrap();
        if row[1].as_deref() == Some("VIEW") {
            out.push(format!(
                "{:?}",
                query(port, pw, db, &format!("SHOW CREATE VIEW `{name}`")).await
            ));
            out.push(format!(
                "{:?}",
                query(port, pw, db, &format!("SELECT * FROM `{name}`")).await
            ));
        } else {
            out.push(format!(
                "{:?}",
                query(port, pw, db, &format!("SHOW CREATE TABLE `{name}`")).await
            ));
            out.push(format!(
                "{:?}",
                query(port, pw, db, &format!("CHECKSUM TABLE `{name}`")).await
            ));
        }
    }
    for sql in [
        "SELECT trigger_name, event_object_table, action_order, action_timing, \
         event_manipulation, action_statement, sql_mode, character_set_client \
         FROM information_schema.triggers WHERE trigger_schema = DATABASE() ORDER BY 1",
        "SELECT routine_name, routine_type, routine_definition, sql_mode \
         FROM information_schema.routines WHERE routine_schema = DATABASE() ORDER BY 1",
        "SELECT constraint_name, table_name, referenced_table_name, delete_rule \
         FROM information_schema.referential_constraints \
         WHERE constraint_schema = DATABASE() ORDER BY 1",
        // Rows triggers wrote during the load (none: triggers come after
        // the data); only the kitchen dump has this table.
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = 'book_log'",
    ] {
        let rows = query(port, pw, db, sql).await;
        out.push(format!("{rows:?}"));
    }
    if db == "kitchen" {
        let rows = query(port, pw, db, "SELECT COUNT(*) FROM book_log").await;
        out.push(format!("{rows:?}"));
    }
    out
}

#[tokio::test]
async fn split_and_deferred_keys_give_what_one_plain_session_gives() {
    let app = TestApp::spawn().await;
    let kitchen = kitchen_dump();
    let shop = common::shop_dump();
    for name in ["kplain", "ksplit", "ksplit1"] {
        app.write_dump(&format!("{name}.sql"), kitchen.as_bytes());
    }
    for name in ["splain", "ssplit"] {
        app.write_dump(&format!("{name}.sql"), &shop);
    }
    // A folder dump: the schema, then the data, in two files.
    let cut = kitchen.find("--\n-- Temporary table structure").unwrap();
    let (schema_part, rest) = kitchen.split_at(cut);
    app.write_dump("kfolder/01-tables.sql", schema_part.as_bytes());
    app.write_dump(
        "kfolder/02-views.sql.zst",
        &zstd::encode_all(rest.as_bytes(), 3).unwrap(),
    );

    ok(&update_with(&app, &["kplain"], plain()).await);
    ok(&update_with(&app, &["splain"], plain()).await);
    let started = Instant::now();
    let m = ok(&update_with(&app, &["ksplit"], split(3)).await);
    eprintln!("split import: {:.1} s", started.elapsed().as_secs_f64());
    let load = m.load.expect("load info");
    assert_eq!(load.fallback, None);
    assert_eq!(load.sessions, 3);
    assert_eq!(load.tables, 6, "4 tables and 2 view stand-ins: {load:?}");
    assert_eq!(
        load.deferred_key_tables, 3,
        "authors, books, words: {load:?}"
    );
    ok(&update_with(&app, &["ksplit1"], split(1)).await);
    ok(&update_with(&app, &["ssplit"], split(2)).await);
    let folder = ok(&update_with(&app, &["kfolder"], split(2)).await);
    assert_eq!(folder.load.unwrap().fallback, None);

    let mut seen = Vec::new();
    for name in ["kplain", "ksplit", "ksplit1", "kfolder", "splain", "ssplit"] {
        let body = app.create(name, "cmp").await;
        let (port, pw, db) = creds(&body);
        seen.push((name, db.clone(), describe_db(port, &pw, &db).await));
    }
    let reference = &seen[0];
    assert_eq!(reference.1, "kitchen");
    assert!(reference
        .2
        .iter()
        .any(|s| s.contains("FULLTEXT KEY `ft_all`")));
    for other in &seen[1..4] {
        assert_eq!(other.1, reference.1);
        for (a, b) in reference.2.iter().zip(&other.2) {
            assert_eq!(a, b, "{} differs from the plain load", other.0);
        }
        assert_eq!(reference.2.len(), other.2.len());
    }
    assert_eq!(
        seen[4].2, seen[5].2,
        "shop: split differs from the plain load"
    );

    // The loaded clone works: the cycle's cascade, the routines, the
    // triggers fire for new rows only.
    let body = app.create("ksplit", "use").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT title_count(1)").await, "2");
    query(port, &pw, &db, "CALL add_book(2, 'new one')").await;
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM book_log").await,
        "3"
    );
    assert_eq!(scalar(port, &pw, &db, "SELECT n FROM v_stats").await, "5");
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT COUNT(*) FROM books WHERE MATCH(title, body) AGAINST ('était')"
        )
        .await,
        "1"
    );
}

#[tokio::test]
async fn what_the_splitter_does_not_understand_loads_in_one_session() {
    let app = TestApp::spawn().await;
    let dump = "-- MariaDB dump 10.19\n\
        CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY v (v));\n\
        INSERT INTO a VALUES (1,1),(2,2);\n\
        UPDATE a SET v = v * 10;\n\
        CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY a_id (a_id));\n\
        INSERT INTO b SELECT id, id FROM a;\n\
        -- Dump completed on 2026-11-24\n";
    app.write_dump("odd.sql", dump.as_bytes());
    let m = ok(&update_with(&app, &["odd"], split(2)).await);
    let reason = m.load.unwrap().fallback.expect("a fallback");
    assert!(
        reason.contains("line 4") && reason.contains("UPDATE"),
        "{reason}"
    );
    let body = app.create("odd", "c").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT SUM(v) FROM a").await, "30");
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM b").await, "2");
    let create = query(port, &pw, &db, "SHOW CREATE TABLE a").await;
    assert!(format!("{create:?}").contains("KEY `v` (`v`)"));

    // A failing statement names the dump's line, also behind the split.
    app.write_dump(
        "bad.sql",
        b"SET NAMES utf8mb4;\nCREATE TABLE t (id INT PRIMARY KEY);\n\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n",
    );
    let outcomes = update_with(&app, &["bad"], split(2)).await;
    let err = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("bad.sql") && err.contains("ERROR 1062") && err.contains("at line 5"),
        "{err}"
    );
}

#[tokio::test]
async fn post_import_sql_shapes_the_template_and_a_failing_script_fails_the_import() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", &common::shop_dump());
    app.write_dump(
        "shop.post.sql",
        b"UPDATE customers SET email = CONCAT('user', id, '@example.invalid');\n",
    );
    app.write_dump(
        "shop.post.d/20-accounts.sql",
        b"CREATE USER 'tester'@'%' IDENTIFIED BY 'secret';\nGRANT SELECT ON shop.* TO 'tester'@'%';\n",
    );
    app.write_dump(
        "shop.post.d/10-names.sql",
        b"UPDATE customers SET name = CONCAT('Customer ', id);\n",
    );
    app.update_ok(&["shop"]).await;
    let ctx = Context::new(app.settings.clone(), app.engine.clone()).unwrap();
    let v1 = ctx.store().current_version(&tpl("shop")).unwrap().unwrap();
    let meta = ctx
        .store()
        .version_meta(&tpl("shop"), &v1)
        .unwrap()
        .unwrap();
    let names: Vec<&str> = meta.post_scripts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["shop.post.sql", "10-names.sql", "20-accounts.sql"]);
    assert!(meta.post_scripts.iter().all(|h| h.sha256.len() == 64));

    let body = app.create("shop", "masked").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(
        scalar(port, &pw, &db, "SELECT email FROM customers WHERE id = 2").await,
        "user2@example.invalid"
    );
    assert_eq!(
        scalar(port, &pw, &db, "SELECT name FROM customers WHERE id = 3").await,
        "Customer 3"
    );
    assert_eq!(
        scalar(
            port,
            &pw,
            &db,
            "SELECT COUNT(*) FROM mysql.user WHERE user = 'tester'"
        )
        .await,
        "1"
    );

    // A failing script fails the import, naming it and quoting the server.
    app.write_dump(
        "shop.post.d/30-broken.sql",
        b"UPDATE no_such_table SET x = 1;\n",
    );
    let outcomes = app.update(&["shop"]).await;
    let err = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("30-broken.sql")
            && err.contains("ERROR 1146")
            && err.contains("no_such_table"),
        "{err}"
    );
    assert_eq!(
        ctx.store().current_version(&tpl("shop")).unwrap(),
        Some(v1),
        "the previous version keeps serving"
    );
}

#[tokio::test]
async fn an_unchanged_dump_is_skipped_unless_forced() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1000).as_bytes());
    app.update_ok(&["shop"]).await;
    let ctx = Context::new(app.settings.clone(), app.engine.clone()).unwrap();
    let v1 = ctx.store().current_version(&tpl("shop")).unwrap().unwrap();

    // The same dump, image and (no) post scripts: nothing published.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .arg("update")
        .envs(app.env())
        .output()
        .unwrap();
    let started = Instant::now();
    let outcomes = update_with(&app, &["shop"], UpdateOptions::default()).await;
    let skip_s = started.elapsed().as_secs_f64();
    eprintln!("unchanged skip in-process: {skip_s:.3} s");
    assert!(outcomes[0].unchanged);
    assert_eq!(outcomes[0].result.as_ref().unwrap().version, v1);
    assert!(skip_s < 3.0, "{skip_s}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("shop: unchanged"),
        "{stdout}"
    );
    assert_eq!(
        ctx.store().current_version(&tpl("shop")).unwrap(),
        Some(v1.clone())
    );
    assert_eq!(ctx.store().versions(&tpl("shop")).unwrap().len(), 1);

    // --force imports again.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dollyd"))
        .args(["update", "--force", "shop"])
        .envs(app.env())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("shop: imported"),
        "{stdout}"
    );
    let v2 = ctx.store().current_version(&tpl("shop")).unwrap().unwrap();
    assert_ne!(v1, v2);

    // A new post script is a change.
    app.write_dump("shop.post.sql", b"DELETE FROM t WHERE id > 10;\n");
    let outcomes = update_with(&app, &["shop"], UpdateOptions::default()).await;
    assert!(!outcomes[0].unchanged);
    assert!(outcomes[0].result.is_ok());
}

#[tokio::test]
async fn progress_is_visible_in_the_api_during_an_import() {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 1_500_000).as_bytes());
    let settings = app.settings.clone();
    let engine = app.engine.clone();
    let update = tokio::spawn(async move {
        let ctx = std::sync::Arc::new(Context::new(settings, engine).unwrap());
        let manager = Manager::new(std::sync::Arc::clone(&ctx));
        template::update(&ctx, &[tpl("shop")], &manager).await
    });
    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !update.is_finished() {
        // 404 until the update holds the template (it first sorts out
        // what killed updates left).
        let r = app.get("/api/v1/templates/shop").await;
        if r.status() == 404 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let t: serde_json::Value = r.json().await.expect("json");
        if t["importing"] == true && t["progress"].is_object() {
            seen = Some(t["progress"].clone());
            if t["progress"]["bytes_read"].as_u64().unwrap_or(0) > 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p = seen.expect("progress in GET /api/v1/templates/shop while importing");
    assert!(p["bytes_total"].as_u64().unwrap() > 10_000_000, "{p}");
    assert!(
        ["load", "indexes", "post", "publish"].contains(&p["phase"].as_str().unwrap()),
        "{p}"
    );
    assert!(
        p["percent"].as_f64().is_some() && p["mb_per_s"].as_f64().is_some(),
        "{p}"
    );
    let list = app.get_json("/api/v1/templates").await;
    eprintln!("list during import: {list}");
    let outcomes = update.await.unwrap().unwrap();
    assert!(outcomes[0].result.is_ok());
    let t = app.get_json("/api/v1/templates/shop").await;
    assert!(t["progress"].is_null(), "{t}");
}

#[tokio::test]
async fn create_schema_reports_its_database() {
    let app = TestApp::spawn().await;
    app.write_dump(
        "sakila.sql",
        b"SET NAMES utf8mb4;\nDROP SCHEMA IF EXISTS sakila;\nCREATE SCHEMA sakila;\nUSE sakila;\n\
          CREATE TABLE actor (actor_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT, first_name VARCHAR(45) NOT NULL, \
          PRIMARY KEY (actor_id), KEY idx_first (first_name));\n\
          INSERT INTO actor VALUES (1,'PENELOPE'),(2,'NICK');\n",
    );
    app.update_ok(&["sakila"]).await;
    let body = app.create("sakila", "c").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(db, "sakila");
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) FROM actor").await,
        "2"
    );
}

#[tokio::test]
async fn the_initial_datadir_and_the_image_probe_are_made_once_per_image() {
    use std::os::unix::fs::MetadataExt;
    let app = TestApp::spawn().await;
    app.write_dump("first.sql", simple_dump("a", 3).as_bytes());
    app.write_dump("second.sql", simple_dump("b", 4).as_bytes());
    let cache = app.data_dir().join("cache").join("init");
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    ok(&update_with(&app, &["first"], split(2)).await);
    let made = entries();
    assert_eq!(made.len(), 1, "one initial datadir for the image: {made:?}");
    let inode = std::fs::metadata(&made[0]).unwrap().ino();
    let mode = std::fs::metadata(&made[0]).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o500, "the cached datadir is read-only");
    assert!(made[0].join("mysql").is_dir(), "it holds the system tables");
    // What probing the image found is kept beside it: the next update
    // starts no probe container.
    let probes: Vec<_> = std::fs::read_dir(app.data_dir().join("cache").join("probe"))
        .expect("the image probe is kept")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(probes.len(), 1, "{probes:?}");
    let probe: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&probes[0]).unwrap()).unwrap();
    assert!(
        probe["id"].as_str().unwrap().starts_with("sha256:"),
        "{probe}"
    );

    // The next import, of another template, starts from the same entry.
    ok(&update_with(&app, &["second"], split(2)).await);
    assert_eq!(entries(), made);
    assert_eq!(std::fs::metadata(&made[0]).unwrap().ino(), inode);
    let body = app.create("second", "c").await;
    let (port, pw, db) = creds(&body);
    assert_eq!(scalar(port, &pw, &db, "SELECT COUNT(*) FROM b").await, "4");
    // The system tables came from the cache: root works as on any import.
    assert_eq!(
        scalar(port, &pw, &db, "SELECT COUNT(*) > 0 FROM mysql.user").await,
        "1"
    );
}
