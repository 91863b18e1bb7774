//! The routing of one table's rows: which shapes spread over the sessions,
//! which keep the dump's order, and what every session gets first.

use super::super::{split_text, Phase, Scripts, SplitOptions, SplitStats};
use super::*;

const HEADER: &str = "/*!40101 SET NAMES utf8mb4 */;\n\
    /*!40103 SET TIME_ZONE='+00:00' */;\n\
    /*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n\
    /*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\
    /*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n";

const BIG: &str = "CREATE TABLE `big` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  \
    `c` int NOT NULL,\n  `v` varchar(20) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  \
    KEY `kc` (`c`)\n) ENGINE=InnoDB AUTO_INCREMENT=100 DEFAULT CHARSET=utf8mb4;\n";

/// `BIG` as the statement splitter gives it (no delimiter).
fn big() -> &'static [u8] {
    BIG.trim_end().trim_end_matches(';').as_bytes()
}

/// A dump: the header, `create`, then `inserts` INSERTs into `big` made
/// by `row(statement)`, then a small table.
fn dump(create: &str, inserts: usize, row: impl Fn(usize) -> String) -> String {
    let mut d = String::from(HEADER);
    d.push_str(create);
    d.push_str("LOCK TABLES `big` WRITE;\n/*!40000 ALTER TABLE `big` DISABLE KEYS */;\n");
    for k in 0..inserts {
        d.push_str(&row(k));
        d.push_str(";\n");
    }
    d.push_str("/*!40000 ALTER TABLE `big` ENABLE KEYS */;\nUNLOCK TABLES;\n");
    d.push_str("CREATE TABLE `small` (`id` int NOT NULL, PRIMARY KEY (`id`));\n");
    d.push_str("INSERT INTO `small` VALUES (1),(2);\n");
    d
}

fn explicit(k: usize) -> String {
    format!(
        "INSERT INTO `big` VALUES ({},{k},'a\\'b'),({},{k},NULL)",
        2 * k + 1,
        2 * k + 2
    )
}

/// Two sessions, deferred keys, rows spread after `spread_after` bytes;
/// nothing else.
fn opts(spread_after: u64) -> SplitOptions {
    SplitOptions {
        jobs: 2,
        defer_indexes: true,
        default_db: "db".into(),
        spread_after,
        dump_bytes: None,
        load_data: false,
        big_table: None,
    }
}

fn split(d: &str, spread_after: u64) -> (Scripts, SplitStats) {
    split_text(d.as_bytes(), opts(spread_after))
}

fn parallel(s: &Scripts) -> Vec<&Vec<String>> {
    s.phases
        .iter()
        .filter_map(|p| match p {
            Phase::Parallel(v) => Some(v),
            Phase::Serial(_) => None,
        })
        .collect()
}

#[test]
fn a_large_tables_rows_go_to_every_session_after_its_create_and_before_its_keys() {
    let d = dump(BIG, 6, explicit);
    // Spread after the first two statements (48 bytes each).
    let (s, stats) = split(&d, 60);
    assert_eq!(stats.fallback, None, "{:?}", s.fallbacks);
    assert_eq!(
        (stats.spread_tables, s.spread.as_slice()),
        (1, &["big".to_owned()][..])
    );
    let phases = parallel(&s);
    assert_eq!(phases.len(), 3, "{:#?}", s.phases);
    // 1: CREATE (keys taken out) and the first rows, in one session.
    let first = phases[0].join("");
    assert!(
        first.contains("PRIMARY KEY (`id`)") && !first.contains("KEY `kc`"),
        "{first}"
    );
    assert!(
        first.contains("VALUES (1,0,") && first.contains("VALUES (3,1,"),
        "{first}"
    );
    assert!(!first.contains("VALUES (5,2,"), "{first}");
    // 2: the rest of the rows, over both sessions, each after the
    // dump's session settings.
    let rows = phases[1];
    assert_eq!(rows.len(), 2);
    for (k, text) in rows.iter().enumerate() {
        assert!(text.contains("INSERT INTO `big`"), "session {k}: {text}");
        let insert = text.find("INSERT").unwrap();
        for setting in [
            "SET NAMES utf8mb4",
            "TIME_ZONE='+00:00'",
            "UNIQUE_CHECKS=0",
            "FOREIGN_KEY_CHECKS=0",
            "SQL_MODE='NO_AUTO_VALUE_ON_ZERO'",
        ] {
            assert!(
                text[..insert].contains(setting),
                "session {k}: {setting}: {text}"
            );
        }
        assert!(!text.contains("ADD KEY"), "{text}");
    }
    let spread: String = rows.join("");
    for k in 2..6 {
        assert_eq!(
            spread
                .matches(&format!("VALUES ({},{k},", 2 * k + 1))
                .count(),
            1
        );
    }
    // 3: the keys, once all rows have run; then the next table.
    let last = phases[2].join("");
    let alter = last
        .find("ALTER TABLE `db`.`big` ADD KEY `kc` (`c`)")
        .unwrap();
    assert!(
        alter < last.find("INSERT INTO `small`").unwrap_or(usize::MAX),
        "{last}"
    );
}

#[test]
fn a_small_table_and_one_session_keep_the_plain_routing() {
    let d = dump(BIG, 6, explicit);
    let (s, stats) = split(&d, 1 << 20);
    assert_eq!((stats.spread_tables, parallel(&s).len()), (0, 1));
    let (s, stats) = split_text(d.as_bytes(), SplitOptions { jobs: 1, ..opts(0) });
    assert_eq!((stats.spread_tables, parallel(&s).len()), (0, 1));
}

/// The reason a dump's big table kept the dump's order (none when it
/// spread), and the split's fallback.
fn ordered(d: &str) -> (Option<String>, Option<String>) {
    let (s, stats) = split(d, 0);
    if s.spread.iter().any(|t| t == "big") {
        return (None, stats.fallback);
    }
    let why = s
        .ordered
        .iter()
        .find(|(t, _)| t == "big")
        .map(|(_, w)| w.clone());
    // Every row of `big` in one session, in the dump's order.
    let mut sessions = parallel(&s)
        .iter()
        .flat_map(|p| p.iter())
        .filter(|t| t.contains("INTO `big`"))
        .count();
    if let Some(Phase::Serial(t)) = s.phases.last() {
        sessions += usize::from(t.contains("INTO `big`"));
    }
    assert_eq!(sessions, 1, "{:#?}", s.phases);
    (Some(why.unwrap_or_default()), stats.fallback)
}

#[test]
fn unsafe_shapes_keep_the_dump_order_and_say_why() {
    let cases: Vec<(String, &str)> = vec![
        (
            dump(&BIG.replace("  PRIMARY KEY (`id`),\n", ""), 3, explicit),
            "no primary key",
        ),
        (
            dump(&BIG.replace("KEY `kc`", "UNIQUE KEY `kc`"), 3, explicit),
            "unique secondary key",
        ),
        (
            dump(&BIG.replace("InnoDB", "MyISAM"), 3, explicit),
            "engine other than InnoDB",
        ),
        (
            dump(
                &BIG.replace("`v` varchar(20)", "`v` varchar(20) /* x */"),
                3,
                explicit,
            ),
            "comment",
        ),
        (
            dump(
                &BIG.replace(") ENGINE", ") PARTITION BY HASH (id) ENGINE"),
                3,
                explicit,
            ),
            "PARTITION",
        ),
        (
            dump(&BIG.replace("DEFAULT NULL", "AS (c + 1) VIRTUAL"), 3, |k| {
                format!("INSERT INTO `big` (`id`, `c`) VALUES ({},{k})", k + 1)
            }),
            "generated column",
        ),
        (
            dump(BIG, 3, |k| {
                format!("INSERT INTO `big` (`c`, `v`) VALUES ({k},'x')")
            }),
            "no AUTO_INCREMENT column given",
        ),
        (
            dump(BIG, 3, |k| {
                format!("INSERT INTO `big` VALUES (NULL,{k},'x')")
            }),
            "NULL in the AUTO_INCREMENT column",
        ),
        (
            dump(BIG, 3, |k| format!("INSERT INTO `big` VALUES (0,{k},'x')")),
            "0 in the AUTO_INCREMENT column",
        ),
        (
            dump(BIG, 3, |k| {
                format!("INSERT IGNORE INTO `big` VALUES ({},{k},'x')", k + 1)
            }),
            "INSERT IGNORE",
        ),
        (
            dump(BIG, 3, |k| {
                format!("REPLACE INTO `big` VALUES ({},{k},'x')", k + 1)
            }),
            "REPLACE",
        ),
        (
            dump(BIG, 3, |k| {
                format!(
                    "INSERT INTO `big` VALUES ({},{k},'x') ON DUPLICATE KEY UPDATE c = 1",
                    k + 1
                )
            }),
            "after the values",
        ),
        (
            dump(BIG, 3, |k| {
                format!("INSERT INTO `big` VALUES ({},{k},NOW())", k + 1)
            }),
            "the value NOW",
        ),
        (
            dump(&format!("SET autocommit=0;\n{BIG}"), 3, explicit),
            "autocommit is off",
        ),
        (
            dump(
                &format!("SET sql_mode = 'ANSI,NO_BACKSLASH_ESCAPES';\n{BIG}"),
                3,
                explicit,
            ),
            "NO_BACKSLASH_ESCAPES",
        ),
    ];
    for (d, why) in cases {
        let (reason, fallback) = ordered(&d);
        let reason = reason.unwrap_or_else(|| panic!("{why}: spread\n{d}"));
        assert!(reason.contains(why), "{why}: {reason}");
        assert_eq!(fallback, None, "{why}");
    }
}

#[test]
fn rows_that_read_other_tables_end_the_split() {
    for sql in [
        "INSERT INTO `big` VALUES (1,(SELECT COUNT(*) FROM `small`),'x')",
        "INSERT INTO `big` VALUES (1,2,'x'),(2,(SELECT MAX(id) FROM small),'y')",
    ] {
        let d = dump(
            BIG,
            2,
            |k| if k == 1 { sql.to_owned() } else { explicit(k) },
        );
        let (s, stats) = split(&d, 0);
        let reason = stats.fallback.unwrap_or_default();
        assert!(reason.contains("reads other tables"), "{sql}: {reason}");
        let Some(Phase::Serial(rest)) = s.phases.last() else {
            panic!("{:#?}", s.phases)
        };
        assert!(rest.contains(sql), "{rest}");
    }
    // INSERT ... SELECT was never split.
    let d = dump(BIG, 2, |_| "INSERT INTO `big` SELECT * FROM `small`".into());
    assert!(split(&d, 0)
        .1
        .fallback
        .unwrap()
        .contains("INSERT ... VALUES"));
}

#[test]
fn an_ordered_insert_after_spread_rows_ends_the_split_after_them() {
    let d = dump(BIG, 4, |k| {
        if k == 3 {
            "INSERT INTO `big` VALUES (NULL,3,'x')".into()
        } else {
            explicit(k)
        }
    });
    let (s, stats) = split(&d, 0);
    assert_eq!(s.spread, ["big"]);
    let reason = stats.fallback.unwrap();
    assert!(
        reason.contains("NULL in the AUTO_INCREMENT column"),
        "{reason}"
    );
    let Some(Phase::Serial(rest)) = s.phases.last() else {
        panic!("{:#?}", s.phases)
    };
    // Alone, after every spread row (a later phase), keys before it.
    assert!(rest.contains("VALUES (NULL,3,'x')"), "{rest}");
    let before = format!("{:?}", &s.phases[..s.phases.len() - 1]);
    assert!(before.contains("VALUES (5,2,"), "{before}");
}

#[test]
fn triggers_after_the_rows_leave_them_spread_triggers_before_do_not() {
    let trigger = "CREATE TRIGGER `t` BEFORE INSERT ON `big` FOR EACH ROW SET NEW.c = NEW.c + 1;\n";
    let mut after = dump(BIG, 3, explicit);
    after.push_str(trigger);
    let (s, stats) = split(&after, 0);
    assert_eq!((s.spread[0].as_str(), stats.fallback), ("big", None));
    // The trigger runs alone, after every row.
    let Some(Phase::Serial(tail)) = s.phases.last() else {
        panic!("{:#?}", s.phases)
    };
    assert!(tail.contains("CREATE TRIGGER"), "{tail}");
    let before = dump(&format!("{BIG}{trigger}"), 3, explicit);
    let (_, stats) = split(&before, 0);
    assert!(stats.fallback.unwrap().contains("after its trigger"));
}

#[test]
fn shapes() {
    let s = shape(big()).unwrap();
    assert_eq!(s.columns, ["id", "c", "v"]);
    assert_eq!((s.auto_inc, s.secondary_keys), (Some(0), true));
    let inline = b"CREATE TABLE t (a int, id int NOT NULL AUTO_INCREMENT PRIMARY KEY, CONSTRAINT ck CHECK (a > 0))";
    let s = shape(inline).unwrap();
    assert_eq!((s.auto_inc, s.secondary_keys), (Some(1), false));
    for (sql, why) in [
        (
            "CREATE TABLE t (id int, v int INVISIBLE, PRIMARY KEY (id))",
            "invisible",
        ),
        ("CREATE TABLE t (id SERIAL, PRIMARY KEY (id))", "unique"),
        (
            "CREATE TABLE t (id int PRIMARY KEY) WITH SYSTEM VERSIONING",
            "WITH",
        ),
        (
            "CREATE TABLE t (id int PRIMARY KEY, v int UNIQUE)",
            "unique",
        ),
    ] {
        let e = shape(sql.as_bytes()).unwrap_err();
        assert!(e.contains(why), "{sql}: {e}");
    }
}

#[test]
fn values() {
    let s = shape(big()).unwrap();
    let ok = |sql: &str| rows(sql.as_bytes(), Some(&s));
    for sql in [
        "INSERT INTO `big` VALUES (1,2,'x'),(2,-3,NULL)",
        "INSERT INTO db.big VALUES (1,2,_binary 'a\\'b'), ( 2 , 1.5e-3 , 0xFF ), (3,4,X'00'),(-4,5,TRUE)",
        "INSERT INTO `big` (`v`, `id`, `c`) VALUES ('x',7,1)",
        "INSERT INTO `big` VALUES (1,2,'it''s'),(2,3,_utf8mb4 0x41)",
    ] {
        assert_eq!(ok(sql), Rows::AnyOrder, "{sql}");
    }
    for sql in [
        "INSERT INTO `big` VALUES ('1',2,'x')",
        "INSERT INTO `big` VALUES (1,2,'x'),(00,3,'y')",
        "INSERT INTO `big` VALUES (1,2,@x)",
        "INSERT INTO `big` VALUES (1,2,\"x\")",
        "INSERT INTO `big` VALUES (1,2,'x') /* c */",
        "INSERT INTO `big` VALUES (1,2,DEFAULT)",
        "INSERT INTO `big` VALUES (1,2,'unterminated)",
    ] {
        assert!(matches!(ok(sql), Rows::Ordered(_)), "{sql}");
    }
    // A table without an AUTO_INCREMENT column takes any id.
    let plain = shape(b"CREATE TABLE t (id int NOT NULL, PRIMARY KEY (id))").unwrap();
    assert_eq!(
        rows(b"INSERT INTO t VALUES (0),(NULL)", Some(&plain)),
        Rows::AnyOrder
    );
    assert_eq!(
        rows(b"INSERT INTO t (id) VALUES (1)", Some(&plain)),
        Rows::AnyOrder
    );
}

#[test]
fn spreading_orders_the_sessions_with_marks_not_restarts() {
    let d = dump(BIG, 6, explicit);
    let (s, stats) = split(&d, 60);
    assert_eq!(stats.spread_tables, 1);
    // The other session starts on `big` once its CREATE TABLE has run
    // (the mark right after it, not after its first rows); `big`'s keys
    // wait for the other session's spread rows; nothing else waits (the
    // next table, which may spread too, has its mark).
    assert_eq!(
        s.gates,
        [
            "mark 0.1",
            "1 waits 0.1",
            "mark 1.1",
            "0 waits 1.1",
            "mark 1.2"
        ],
        "{:#?}",
        s.phases
    );
    let all: Vec<String> = s
        .phases
        .iter()
        .filter_map(|p| match p {
            Phase::Parallel(v) => Some(v.clone()),
            Phase::Serial(_) => None,
        })
        .fold(Vec::new(), |mut acc: Vec<String>, v| {
            if acc.len() < v.len() {
                acc.resize(v.len(), String::new());
            }
            for (k, t) in v.iter().enumerate() {
                acc[k].push_str(t);
            }
            acc
        });
    let at = |k: usize, what: &str| {
        all[k]
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {}", all[k]))
    };
    assert!(at(0, "CREATE TABLE `big`") < at(0, "-- mark 0.1"));
    assert!(at(0, "-- mark 0.1") < at(0, "INSERT INTO `big`"));
    assert!(at(1, "-- wait 0.1") < at(1, "INSERT INTO `big`"));
    let last_row_1 = all[1].rfind("INSERT INTO `big`").unwrap();
    assert!(last_row_1 < at(1, "-- mark 1.1"));
    let keys = at(0, "ADD KEY `kc`");
    assert!(at(0, "-- wait 1.1") < keys);
    assert!(all[0].rfind("INSERT INTO `big`").unwrap() < keys);
}

#[test]
fn a_table_spreads_only_once_it_is_more_than_its_share_of_the_dump() {
    let d = dump(BIG, 6, explicit);
    let with = |dump_bytes: u64| {
        split_text(
            d.as_bytes(),
            SplitOptions {
                dump_bytes: Some(dump_bytes),
                ..opts(0)
            },
        )
    };
    let rows: usize = d
        .lines()
        .filter(|l| l.starts_with("INSERT INTO `big`"))
        .map(|l| l.len() - 1)
        .sum();
    // A third of a dump three times its rows: reached only by the last
    // row, so nothing is left to spread.
    let (s, stats) = with(3 * rows as u64 + 3);
    assert_eq!(stats.spread_tables, 0);
    assert!(
        !s.gates.iter().any(|g| g.contains("waits")),
        "{:?}",
        s.gates
    );
    // Most of the dump: spread once past a third.
    let (s, stats) = with(rows as u64 + 100);
    assert_eq!(stats.spread_tables, 1);
    let first = &parallel(&s)[0].join("");
    assert!(
        first.contains("VALUES (3,1,") && !first.contains("VALUES (7,3,"),
        "{first}"
    );
}

#[test]
fn tables_of_equal_size_keep_by_table_routing() {
    // Two tables, each half of the dump: neither spreads (by table, the
    // two sessions are as busy), and no session waits.
    let mut d = dump(BIG, 6, explicit);
    d.push_str(&BIG.replace("`big`", "`big2`"));
    for k in 0..6 {
        d.push_str(&explicit(k).replace("`big`", "`big2`"));
        d.push_str(";\n");
    }
    let (s, stats) = split_text(
        d.as_bytes(),
        SplitOptions {
            dump_bytes: Some(d.len() as u64),
            ..opts(0)
        },
    );
    assert_eq!(stats.fallback, None);
    assert_eq!(stats.spread_tables, 0, "{:?}", s.spread);
    assert!(
        s.gates.iter().all(|g| g.starts_with("mark")),
        "{:?}",
        s.gates
    );
    assert_eq!(parallel(&s).len(), 1);
}

#[test]
fn a_big_table_known_beforehand_gets_a_session_no_table_before_it_takes() {
    let d = "CREATE TABLE `a` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;\n\
             INSERT INTO `a` VALUES (1);\n\
             CREATE TABLE `b` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;\n\
             INSERT INTO `b` VALUES (1);\n\
             CREATE TABLE `orders` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;\n\
             INSERT INTO `orders` VALUES (1);\n\
             CREATE TABLE `c` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;\n\
             INSERT INTO `c` VALUES (1);\n";
    let with = |big_table: Option<&str>| {
        let (s, _) = split_text(
            d.as_bytes(),
            SplitOptions {
                big_table: big_table.map(str::to_owned),
                ..opts(u64::MAX)
            },
        );
        let phases = parallel(&s);
        assert_eq!(phases.len(), 1, "{:?}", s.phases);
        phases[0].clone()
    };
    let sessions = with(Some("orders"));
    assert!(sessions[1].contains("`orders`"), "{sessions:?}");
    assert!(
        !sessions[1].contains("`a`") && !sessions[1].contains("`b`"),
        "{sessions:?}"
    );
    assert!(
        sessions[0].contains("`a`") && sessions[0].contains("`b`"),
        "{sessions:?}"
    );
    // Without it, the tables before it alternate.
    let sessions = with(None);
    assert!(sessions[1].contains("`b`"), "{sessions:?}");
}
