use super::*;

fn deferred(create: &str) -> Deferred {
    defer_keys(create.as_bytes(), "db", "t").unwrap_or_else(|e| panic!("{create}: {e:?}"))
}

fn why(create: &str) -> String {
    match defer_keys(create.as_bytes(), "db", "t") {
        Err(Verbatim::NotUnderstood(why)) => why,
        other => panic!("{create}: expected NotUnderstood, got {other:?}"),
    }
}

fn nothing(create: &str) {
    assert_eq!(
        defer_keys(create.as_bytes(), "db", "t"),
        Err(Verbatim::Nothing),
        "{create}"
    );
}

fn s(v: &[u8]) -> String {
    String::from_utf8(v.to_vec()).unwrap()
}

#[test]
fn keys_are_deferred_in_their_order_one_fulltext_per_statement() {
    let d = deferred(
        "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `a` varchar(10) DEFAULT 'x,y',\n  \
         `b` text,\n  `c` int AS (`id` * 2) VIRTUAL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `ua` (`a`),\n  \
         KEY `kc` (`c`),\n  FULLTEXT KEY `f1` (`b`),\n  FULLTEXT KEY `f2` (`a`,`b`),\n  \
         CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `p` (`a`) ON DELETE CASCADE,\n  CONSTRAINT `chk` CHECK (`id` > 0)\n\
         ) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4",
    );
    let c = s(&d.create);
    assert!(c.contains("PRIMARY KEY (`id`)") && c.contains("UNIQUE KEY `ua`"));
    assert!(c.contains("CONSTRAINT `chk` CHECK (`id` > 0)"));
    assert!(c.contains("DEFAULT 'x,y'"));
    assert!(!c.contains("KEY `kc`") && !c.contains("FULLTEXT") && !c.contains("FOREIGN"));
    assert!(c.ends_with(") ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4"));
    let alters: Vec<String> = d.index_alters.iter().map(|a| s(a)).collect();
    assert_eq!(
        alters,
        [
            "ALTER TABLE `db`.`t` ADD KEY `kc` (`c`), ADD FULLTEXT KEY `f1` (`b`)",
            "ALTER TABLE `db`.`t` ADD FULLTEXT KEY `f2` (`a`,`b`)"
        ]
    );
    assert_eq!(
        s(&d.fk_alter.unwrap()),
        "ALTER TABLE `db`.`t` ADD CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `db`.`p` (`a`) ON DELETE CASCADE"
    );
}

#[test]
fn nothing_to_defer_or_not_for_this_table() {
    // No primary key, another engine, an auto-increment column only a
    // secondary key covers, no secondary key: the table as it is.
    nothing("CREATE TABLE t (a INT, KEY k (a))");
    nothing("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) ENGINE=MyISAM");
    nothing("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) ENGINE = `Aria`");
    nothing("CREATE TABLE t (a INT, b INT AUTO_INCREMENT, PRIMARY KEY (a), KEY k (b))");
    nothing("CREATE TABLE t (a INT PRIMARY KEY, b INT UNIQUE)");
    nothing("/*!50001 CREATE TABLE `v` (\n  `a` tinyint NOT NULL\n) ENGINE=MyISAM */");
    // An auto-increment column a unique key covers is fine.
    let d =
        deferred("CREATE TABLE t (a INT, b INT AUTO_INCREMENT UNIQUE, PRIMARY KEY (a), KEY k (b))");
    assert_eq!(d.index_alters.len(), 1);
}

#[test]
fn comments_anywhere_keep_the_table_as_it_is() {
    // sakila: a column and a key the server runs only from 5.7.5 on.
    let sakila = "CREATE TABLE address (\n  address_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,\n  \
        phone VARCHAR(20) NOT NULL,\n  /*!50705 location GEOMETRY NOT NULL,*/\n  \
        PRIMARY KEY  (address_id),\n  KEY idx_fk_city_id (city_id),\n  \
        /*!50705 SPATIAL KEY `idx_location` (location),*/\n  \
        CONSTRAINT `fk_address_city` FOREIGN KEY (city_id) REFERENCES city (city_id) ON DELETE SET NULL\n\
        )ENGINE=InnoDB DEFAULT CHARSET=utf8";
    assert_eq!(why(sakila), "a comment inside the statement");
    for create in [
        "CREATE TABLE t (a INT PRIMARY KEY, b INT /*!80023 INVISIBLE */, KEY k (b))",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) /*!50100 PARTITION BY HASH (a) */",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b) /* plain */)",
        "CREATE TABLE t (a INT PRIMARY KEY, -- a line comment\n b INT, KEY k (b))",
        "CREATE TABLE t (a INT PRIMARY KEY, # a hash comment\n b INT, KEY k (b))",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, /*M!100500 KEY k2 (b), */ KEY k (b))",
    ] {
        assert_eq!(why(create), "a comment inside the statement", "{create}");
    }
    // Comment-like text in quotes is no comment.
    let d = deferred(
        "CREATE TABLE `t/*x*/` (a INT PRIMARY KEY, `b#` INT COMMENT 'a */ b; -- c', KEY `k--` (`b#`)) COMMENT='x /* y'",
    );
    assert!(s(&d.create).contains("COMMENT 'a */ b; -- c'"));
    assert_eq!(
        s(&d.index_alters[0]),
        "ALTER TABLE `db`.`t` ADD KEY `k--` (`b#`)"
    );
}

#[test]
fn unknown_table_options_keep_the_table_as_it_is() {
    for (create, option) in [
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) PARTITION BY HASH (a) PARTITIONS 4", "PARTITION"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) WITH SYSTEM VERSIONING", "WITH"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) TABLESPACE ts", "TABLESPACE"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) ENGINE=InnoDB DEFAULT ENGINE=x", "DEFAULT"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) DATA DIRECTORY='/x'", "DATA"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) SEQUENCE=1", "SEQUENCE"),
    ] {
        assert_eq!(why(create), format!("the table option {option}"), "{create}");
    }
    // What mysqldump and mariadb-dump write is understood.
    for options in [
        "ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
        "ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci ROW_FORMAT=DYNAMIC COMMENT='it''s; here'",
        "ENGINE = InnoDB, DEFAULT CHARACTER SET = utf8mb4, STATS_PERSISTENT=0 KEY_BLOCK_SIZE=8",
        "CHARACTER SET utf8mb4 PAGE_COMPRESSED=1 CHECKSUM=1",
        "",
    ] {
        let create = format!("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY k (b)) {options}");
        let d = deferred(&create);
        assert!(s(&d.create).ends_with(&format!(") {options}")), "{create}");
    }
}

#[test]
fn keys_without_names_and_unknown_definitions_keep_the_table() {
    for (create, reason) in [
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY (b))", "a key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, INDEX USING BTREE (b))", "a key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b TEXT, FULLTEXT (b))", "a key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b TEXT, FULLTEXT KEY (b))", "a key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, FOREIGN KEY (b) REFERENCES p (a))", "a foreign key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, CONSTRAINT FOREIGN KEY (b) REFERENCES p (a))", "a foreign key without a name"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT REFERENCES p (a), KEY k (b))", "a column with an inline REFERENCES"),
        ("CREATE TABLE t (a INT PRIMARY KEY, \"b\" INT, KEY k (b))", "a definition the rewriter cannot read"),
        ("CREATE TABLE t (a INT PRIMARY KEY, LIKE x, KEY k (b))", "a definition the rewriter cannot read"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, , KEY k (b))", "an empty definition"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b INT, CONSTRAINT c EXCLUDE (b), KEY k (b))", "a constraint the rewriter does not know"),
        ("CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR(3) DEFAULT 'a\\'b', KEY k (b))", "a backslash inside the statement"),
    ] {
        assert_eq!(why(create), reason, "{create}");
    }
}

#[test]
fn foreign_keys_are_moved_byte_for_byte_unless_they_restrict() {
    assert!(why(
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, CONSTRAINT f FOREIGN KEY (b) REFERENCES p (a) ON DELETE RESTRICT ON UPDATE CASCADE)"
    )
    .contains("RESTRICT"));
    assert!(why(
        "CREATE TABLE t (a INT PRIMARY KEY, b INT, CONSTRAINT f FOREIGN KEY (b) REFERENCES p (a) ON UPDATE restrict)"
    )
    .contains("RESTRICT"));
    for (fk, moved) in [
        (
            "CONSTRAINT `f` FOREIGN KEY (`b`) REFERENCES `p` (`a`) ON DELETE SET NULL ON UPDATE CASCADE",
            "CONSTRAINT `f` FOREIGN KEY (`b`) REFERENCES `db`.`p` (`a`) ON DELETE SET NULL ON UPDATE CASCADE",
        ),
        (
            "CONSTRAINT f FOREIGN KEY fidx (b) REFERENCES other.p (a) ON DELETE NO ACTION",
            "CONSTRAINT f FOREIGN KEY fidx (b) REFERENCES other.p (a) ON DELETE NO ACTION",
        ),
        (
            "CONSTRAINT `a``b` FOREIGN KEY (b) REFERENCES `x``y` (a) MATCH FULL",
            "CONSTRAINT `a``b` FOREIGN KEY (b) REFERENCES `db`.`x``y` (a) MATCH FULL",
        ),
    ] {
        let d = deferred(&format!("CREATE TABLE t (a INT PRIMARY KEY, b INT, KEY kb (b), {fk})"));
        assert_eq!(
            s(&d.fk_alter.unwrap()),
            format!("ALTER TABLE `db`.`t` ADD {moved}")
        );
        assert_eq!(s(&d.create), "CREATE TABLE t (\n  a INT PRIMARY KEY,\n  b INT\n)");
        assert_eq!(d.index_alters.len(), 1);
    }
}

#[test]
fn every_key_form_moves_verbatim() {
    for key in [
        "KEY `k` (`b`(10) DESC, `c`)",
        "INDEX k USING HASH (b)",
        "KEY `k` (`b`) USING BTREE COMMENT 'x, y' KEY_BLOCK_SIZE=4",
        "KEY `k` (`b`) INVISIBLE",
        "KEY `k` (`b`) IGNORED",
        "SPATIAL KEY `g` (`g`)",
        "SPATIAL INDEX g (g)",
        "FULLTEXT KEY `f` (`b`) WITH PARSER ngram",
        "FULLTEXT INDEX `f` (`b`,`c`)",
    ] {
        let d = deferred(&format!(
            "CREATE TABLE `t` (`a` INT NOT NULL, `b` TEXT, `c` INT INVISIBLE, `g` POINT NOT NULL, \
             `v` INT AS (a + 1) STORED, PRIMARY KEY (`a`), {key}) ENGINE=InnoDB"
        ));
        assert_eq!(
            s(&d.index_alters[0]),
            format!("ALTER TABLE `db`.`t` ADD {key}")
        );
        assert!(s(&d.create).contains("`c` INT INVISIBLE"));
        assert!(s(&d.create).contains("`v` INT AS (a + 1) STORED"));
    }
}

#[test]
fn quoted_names_are_quoted_again_in_the_alter() {
    let d = defer_keys(
        b"CREATE TABLE `we``ird` (`id` INT PRIMARY KEY, `x` INT, KEY `k` (`x`))",
        "d`b",
        "we`ird",
    )
    .unwrap();
    assert_eq!(
        s(&d.index_alters[0]),
        "ALTER TABLE `d``b`.`we``ird` ADD KEY `k` (`x`)"
    );
}

#[test]
fn has_comment_reads_quotes_like_the_server() {
    assert!(!has_comment(b"a 'x /* y' \"#\" `--` 'it''s' 'a\\'/*'"));
    assert!(has_comment(b"a 'x' /* y */"));
    assert!(has_comment(b"a /*!50100 b */"));
    assert!(has_comment(b"a # b"));
    assert!(has_comment(b"a -- b"));
    assert!(has_comment(b"a--1"));
    assert!(!has_comment(b"a - 1 / 2 * 3"));
    // An unterminated quote ends the scan without a panic.
    assert!(!has_comment(b"a 'unterminated \\"));
}

#[test]
fn a_broken_statement_is_kept() {
    assert_eq!(why("CREATE TABLE t"), "no column list");
    assert_eq!(
        why("CREATE TABLE t (a INT PRIMARY KEY, KEY k (a)"),
        "an unclosed column list"
    );
}

#[test]
fn a_foreign_key_needs_a_key_of_its_own() {
    // No key starts with `p`: the server would add one where the foreign
    // key stands.
    for create in [
        "CREATE TABLE t (id INT PRIMARY KEY, p INT, q INT, KEY k (q), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, p INT, q INT, KEY k (q, p), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, p VARCHAR(9), KEY k (p(4)), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, p INT, q INT, KEY k (p), CONSTRAINT f FOREIGN KEY (p, q) REFERENCES x (a, b))",
    ] {
        assert!(why(create).starts_with("a foreign key no key covers"), "{create}");
    }
    // Covered by a deferred key, a unique key, the primary key, an inline
    // unique column, a longer key: deferred.
    for create in [
        "CREATE TABLE t (id INT PRIMARY KEY, p INT, KEY k (p), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, p INT, q INT, KEY k (`P` DESC, q), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT, p INT, PRIMARY KEY (p, id), CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, p INT UNIQUE, CONSTRAINT f FOREIGN KEY (p) REFERENCES x (id))",
        "CREATE TABLE t (id INT PRIMARY KEY, CONSTRAINT f FOREIGN KEY (id) REFERENCES x (id))",
    ] {
        assert!(deferred(create).fk_alter.is_some(), "{create}");
    }
}
