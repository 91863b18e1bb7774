use super::classify::sets_fk_checks;
use super::*;

fn opts(jobs: usize) -> SplitOptions {
    SplitOptions {
        jobs,
        defer_indexes: true,
        default_db: "default".into(),
        spread_after: 1 << 40,
        dump_bytes: None,
        load_data: false,
        big_table: None,
    }
}

fn shop() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/dumps/shop.sql"
    ))
    .unwrap()
}

#[test]
fn shop_splits_by_table_with_the_header_everywhere() {
    let (s, stats) = split_text(&shop(), opts(2));
    assert_eq!(stats.fallback, None, "{:?}", s.fallbacks);
    assert_eq!(stats.tables, 3);
    assert_eq!(s.phases.len(), 2, "{:#?}", s.phases);
    let Phase::Parallel(sessions) = &s.phases[0] else {
        panic!("{:#?}", s.phases)
    };
    assert_eq!(sessions.len(), 2);
    for text in sessions {
        assert!(text.contains("SET NAMES utf8mb4"), "{text}");
        assert!(text.contains("FOREIGN_KEY_CHECKS=0"), "{text}");
        assert!(!text.contains("LOCK TABLES"), "{text}");
        assert!(!text.contains("TRIGGER"), "{text}");
    }
    let all = sessions.join("");
    // orders: KEY customer_id after the data, its foreign key later.
    let create = all.find("CREATE TABLE `orders`").unwrap();
    let insert = all.find("INSERT INTO `orders`").unwrap();
    let alter = all
        .find("ALTER TABLE `default`.`orders` ADD KEY `customer_id` (`customer_id`)")
        .unwrap();
    assert!(create < insert && insert < alter, "{all}");
    assert!(!all[create..insert].contains("KEY `customer_id`"));
    assert!(all[create..insert].contains("PRIMARY KEY (`id`)"));
    // customers keeps its unique key in CREATE TABLE.
    assert!(all.contains("UNIQUE KEY `email` (`email`)"));
    let Phase::Serial(tail) = &s.phases[1] else {
        panic!()
    };
    let trigger = tail.find("TRIGGER `orders_after_insert`").unwrap();
    let function = tail.find("FUNCTION `order_total`").unwrap();
    let view = tail.find("VIEW `customer_totals`").unwrap();
    let fk = tail
        .find("ALTER TABLE `default`.`orders` ADD CONSTRAINT `orders_ibfk_1` FOREIGN KEY (`customer_id`) REFERENCES `default`.`customers` (`id`)")
        .unwrap();
    assert!(trigger < function && function < view && view < fk, "{tail}");
    assert!(tail.contains("DELIMITER ;;\n"), "{tail}");
    // The tail replays the session state: the trigger's sql_mode.
    assert!(tail[..trigger].contains("NO_AUTO_CREATE_USER"));
}

#[test]
fn what_the_splitter_does_not_understand_runs_in_one_session() {
    let dump = b"SET NAMES utf8mb4;\nCREATE TABLE a (id INT PRIMARY KEY, v INT, KEY v (v));\n\
        INSERT INTO a VALUES (1,1);\nUPDATE a SET v = 2;\nCREATE TABLE b (id INT PRIMARY KEY);\n\
        INSERT INTO b VALUES (1);\n";
    let (s, stats) = split_text(dump, opts(2));
    let reason = stats.fallback.unwrap();
    assert!(reason.contains("line 4: a UPDATE statement"), "{reason}");
    assert_eq!(s.phases.len(), 2, "{:#?}", s.phases);
    let Phase::Parallel(p) = &s.phases[0] else {
        panic!()
    };
    assert!(p[0].contains("ALTER TABLE `default`.`a` ADD KEY v (v)"));
    let Phase::Serial(rest) = &s.phases[1] else {
        panic!()
    };
    assert!(rest.starts_with("SET NAMES utf8mb4;\nUPDATE a SET v = 2;\n"));
    assert!(rest.contains("CREATE TABLE b (id INT PRIMARY KEY);\nINSERT INTO b VALUES (1);"));
}

#[test]
fn statements_reaching_other_tables_fall_back() {
    for (sql, why) in [
        ("INSERT INTO a SELECT * FROM b", "INSERT ... VALUES"),
        ("CREATE TABLE c LIKE a", "LIKE"),
        ("CREATE TABLE c (id INT) SELECT * FROM a", "SELECT"),
        ("SET @x = (SELECT COUNT(*) FROM a)", "query"),
        ("INSERT INTO nowhere VALUES (1)", "did not create"),
        ("CALL p()", "CALL"),
    ] {
        let dump = format!("CREATE TABLE a (id INT PRIMARY KEY);\n{sql};\n");
        let (_, stats) = split_text(dump.as_bytes(), opts(2));
        let reason = stats.fallback.unwrap_or_default();
        assert!(reason.contains(why), "{sql}: {reason}");
    }
}

#[test]
fn the_dumps_own_alter_runs_after_the_deferred_keys() {
    let dump = b"CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY kv (v));\n\
        /*!40000 ALTER TABLE `a` DISABLE KEYS */;\nINSERT INTO a VALUES (1,1);\n\
        /*!40000 ALTER TABLE `a` ENABLE KEYS */;\nALTER TABLE a ADD KEY kw (v, id);\n";
    let (s, stats) = split_text(dump, opts(2));
    assert_eq!(stats.fallback, None);
    let Phase::Parallel(p) = &s.phases[0] else {
        panic!("{:#?}", s.phases)
    };
    let all = p.join("");
    let insert = all.find("INSERT INTO a").unwrap();
    let kv = all.find("ADD KEY kv (v)").unwrap();
    let kw = all.find("ADD KEY kw").unwrap();
    // DISABLE KEYS does not pull the keys before the data.
    assert!(
        all.find("DISABLE KEYS").unwrap() < insert && insert < kv && kv < kw,
        "{all}"
    );
}

#[test]
fn an_alter_of_a_table_with_deferred_foreign_keys_falls_back() {
    let dump = b"CREATE TABLE p (id INT PRIMARY KEY);\n\
        CREATE TABLE a (id INT PRIMARY KEY, p INT, KEY kp (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id));\n\
        ALTER TABLE a DROP FOREIGN KEY f;\n";
    let (s, stats) = split_text(dump, opts(2));
    assert!(stats
        .fallback
        .unwrap()
        .contains("foreign keys are deferred"));
    let Some(Phase::Serial(rest)) = s.phases.last() else {
        panic!("{:#?}", s.phases)
    };
    let add = rest.find("ADD CONSTRAINT f").unwrap();
    let drop = rest.find("DROP FOREIGN KEY f").unwrap();
    assert!(add < drop, "{rest}");
}

#[test]
fn a_dropped_table_leaves_nothing_deferred_behind() {
    let dump = b"CREATE TABLE p (id INT PRIMARY KEY);\n\
        CREATE TABLE a (id INT PRIMARY KEY, p INT, KEY k (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE);\n\
        DROP TABLE a;\n";
    let (s, stats) = split_text(dump, opts(2));
    assert_eq!(stats.fallback, None);
    let all = format!("{:?}", s.phases);
    assert!(!all.contains("ALTER TABLE"), "{all}");
}

#[test]
fn tables_the_rewriter_does_not_understand_go_verbatim_and_are_counted() {
    let dump = b"CREATE TABLE a (id INT PRIMARY KEY, /*!50705 g GEOMETRY NOT NULL,*/ v INT,\n\
        KEY kv (v), /*!50705 SPATIAL KEY kg (g),*/ CONSTRAINT f FOREIGN KEY (v) REFERENCES b (id) ON DELETE RESTRICT);\n\
        CREATE TABLE b (id INT PRIMARY KEY, v INT, KEY kv (v)) PARTITION BY HASH (id);\n\
        CREATE TABLE c (id INT PRIMARY KEY, v INT, KEY kv (v));\n";
    let (s, stats) = split_text(dump, opts(2));
    assert_eq!((stats.deferred_tables, stats.verbatim_tables), (1, 2));
    let all = format!("{:?}", s.phases);
    // The two tables exactly as written.
    assert!(all.contains("/*!50705 SPATIAL KEY kg (g),*/ CONSTRAINT f FOREIGN KEY (v) REFERENCES b (id) ON DELETE RESTRICT);"));
    assert!(all.contains("KEY kv (v)) PARTITION BY HASH (id);"));
    assert!(
        !all.contains("ALTER TABLE `default`.`a`") && !all.contains("ALTER TABLE `default`.`b`")
    );
}

#[test]
fn create_index_is_an_alter_of_its_table_and_the_sandbox_line_no_statement() {
    let dump = b"/*M!999999\\- enable the sandbox mode */\n\
        CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY kv (v));\nINSERT INTO a VALUES (1,1);\n\
        CREATE UNIQUE INDEX uv ON a (v, id);\nCREATE INDEX kw ON a (v);\n";
    let (s, stats) = split_text(dump, opts(2));
    assert_eq!(stats.fallback, None, "{:?}", s.fallbacks);
    assert_eq!(stats.statements, 5);
    let Phase::Parallel(p) = &s.phases[0] else {
        panic!("{:#?}", s.phases)
    };
    let all = p.join("");
    assert!(!all.contains("sandbox"), "{all}");
    let kv = all.find("ADD KEY kv (v)").unwrap();
    let uv = all.find("CREATE UNIQUE INDEX uv").unwrap();
    assert!(kv < uv, "{all}");
    assert_eq!(
        classify(b"CREATE INDEX kw ON `db`.a (v)"),
        Kind::Table {
            name: (Some("db".into()), "a".into()),
            op: TableOp::Alter
        }
    );
    assert!(matches!(classify(b"CREATE INDEX kw"), Kind::Unsupported(_)));
}

#[test]
fn rows_checked_against_live_foreign_keys_keep_the_dump_order() {
    // Chinook: foreign keys added by the dump, checks on.
    let dump =
        b"CREATE TABLE p (id INT PRIMARY KEY);\nCREATE TABLE c (id INT PRIMARY KEY, p INT);\n\
        ALTER TABLE c ADD CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id);\n\
        INSERT INTO p VALUES (1);\nINSERT INTO c VALUES (1,1);\n";
    let (_, stats) = split_text(dump, opts(2));
    let reason = stats.fallback.unwrap();
    assert!(
        reason.contains("line 4: rows into `p` with foreign keys checked"),
        "{reason}"
    );
    // mysqldump turns the checks off first: split.
    let mut off =
        b"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
            .to_vec();
    off.extend_from_slice(dump);
    let (_, stats) = split_text(&off, opts(2));
    assert_eq!(stats.fallback, None);
    // ... and back on at the end: reading @OLD_... restores.
    let mut on = off.clone();
    on.extend_from_slice(
        b"SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS;\nINSERT INTO c VALUES (2,1);\n",
    );
    let (_, stats) = split_text(&on, opts(2));
    assert!(stats.fallback.unwrap().contains("line 8"));
    // A foreign key in a CREATE TABLE kept as written is live too;
    // one dolly defers is not.
    let kept = b"CREATE TABLE c (id INT PRIMARY KEY, p INT, CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id) ON DELETE RESTRICT);\n\
        INSERT INTO c VALUES (1,1);\n";
    assert!(split_text(kept, opts(2)).1.fallback.is_some());
    let deferred = b"CREATE TABLE c (id INT PRIMARY KEY, p INT, KEY kp (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES p (id));\n\
        INSERT INTO c VALUES (1,1);\n";
    assert_eq!(split_text(deferred, opts(2)).1.fallback, None);
    assert_eq!(sets_fk_checks(b"SET foreign_key_checks = OFF"), Some(false));
    assert_eq!(
        sets_fk_checks(b"SET @@session.foreign_key_checks := 1"),
        Some(true)
    );
    assert_eq!(sets_fk_checks(b"SET @x = @@foreign_key_checks"), None);
}

#[test]
fn data_after_a_trigger_falls_back() {
    let dump = b"CREATE TABLE a (id INT PRIMARY KEY);\n\
        CREATE TRIGGER tr BEFORE INSERT ON a FOR EACH ROW SET NEW.id = NEW.id + 1;\n\
        INSERT INTO a VALUES (1);\n";
    let (_, stats) = split_text(dump, opts(2));
    assert!(stats.fallback.unwrap().contains("after its trigger"));
}
