use super::*;
use crate::dump::split::spread::shape;

const ORDERS: &str = "CREATE TABLE `orders` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `customer_id` int(11) NOT NULL,\n  `status` varchar(16) NOT NULL,\n  `total` decimal(12,2) NOT NULL,\n  `created_at` datetime NOT NULL,\n  `note` text DEFAULT NULL,\n  `kind` enum('a','b') DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

fn orders() -> Shape {
    shape(ORDERS.as_bytes()).expect("a shape")
}

fn tsv(insert: &str) -> Result<String, String> {
    convert(insert.as_bytes(), &orders(), "utf8mb4").map(|f| String::from_utf8(f.tsv).unwrap())
}

#[test]
fn column_kinds_come_from_the_create_table() {
    use ColumnKind::*;
    assert_eq!(
        orders().kinds,
        [Integer, Integer, Text, Decimal, Temporal, Text, Choice]
    );
    let other = shape(
        b"CREATE TABLE t (id int NOT NULL, f float, d double, b blob, v varbinary(3), \
          c char(3) BINARY, y year, j json, bits bit(3), x varchar(3) CHARACTER SET binary, \
          PRIMARY KEY (id)) ENGINE=InnoDB",
    )
    .unwrap();
    assert_eq!(other.kinds[0], Integer);
    assert!(other.kinds[1..].iter().all(|k| *k == Other), "{other:?}");
}

#[test]
fn rows_become_lines_of_tab_separated_fields() {
    assert_eq!(
        tsv("INSERT INTO `orders` VALUES (1,7,'paid',12.50,'2024-01-02 03:04:05','a note','a'),(2,-3,'new',0,'2024-01-02',NULL,NULL)")
            .unwrap(),
        "1\t7\tpaid\t12.50\t2024-01-02 03:04:05\ta note\ta\n2\t-3\tnew\t0\t2024-01-02\t\\N\t\\N\n"
    );
}

#[test]
fn strings_keep_every_byte_the_server_would_store() {
    // SQL escapes decoded, LOAD DATA's applied: backslash, tab, newline,
    // carriage return and NUL escaped; \% and \_ keep their backslash;
    // the word NULL and the text \N stay strings.
    let t = tsv(r#"INSERT INTO orders VALUES (1,1,'it\'s ''q'' \"x\"',1,'2024-01-01','a\tb\nc\rd\0e\\f \% \_ \Z \b NULL \\N é',NULL)"#).unwrap();
    assert_eq!(
        t,
        "1\t1\tit's 'q' \"x\"\t1\t2024-01-01\ta\\tb\\nc\\rd\\0e\\\\f \\\\% \\\\_ \u{1a} \u{8} NULL \\\\N é\t\\N\n"
    );
}

#[test]
fn a_column_list_maps_values_to_its_columns() {
    let f = convert(
        b"INSERT INTO `shop`.`orders` (`id`, status, `note`) VALUES (1,'x',NULL)",
        &orders(),
        "utf8mb4",
    )
    .unwrap();
    assert_eq!(f.tsv, b"1\tx\t\\N\n");
    assert_eq!(
        String::from_utf8(f.statement("/dolly-rows/1.tsv")).unwrap(),
        "LOAD DATA INFILE '/dolly-rows/1.tsv' INTO TABLE `shop`.`orders` CHARACTER SET utf8mb4 (`id`, status, `note`)"
    );
    let all = convert(
        b"INSERT INTO orders VALUES (1,1,'',1,'',NULL,NULL)",
        &orders(),
        "UTF8MB4",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(all.statement("/r/2.tsv")).unwrap(),
        "LOAD DATA INFILE '/r/2.tsv' INTO TABLE orders CHARACTER SET utf8mb4 (`id`,`customer_id`,`status`,`total`,`created_at`,`note`,`kind`)"
    );
}

#[test]
fn what_might_store_differently_stays_in_sql() {
    for insert in [
        // A number into a text column, a string into a number column.
        "INSERT INTO orders VALUES (1,1,5,1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,'1','x',1,'2024-01-01',NULL,NULL)",
        // A fraction into an integer, an exponent, a leading dot or plus.
        "INSERT INTO orders VALUES (1,1.5,'x',1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,'x',1e3,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,'x',.5,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (+1,1,'x',1,'2024-01-01',NULL,NULL)",
        // Hex, introducers, prefixes, functions, TRUE.
        "INSERT INTO orders VALUES (0x01,1,'x',1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,_binary 'x',1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,X'41',1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,N'x',1,'2024-01-01',NULL,NULL)",
        "INSERT INTO orders VALUES (1,1,'x',1,NOW(),NULL,NULL)",
        "INSERT INTO orders VALUES (TRUE,1,'x',1,'2024-01-01',NULL,NULL)",
        // Wrong widths.
        "INSERT INTO orders VALUES (1,1,'x',1,'2024-01-01',NULL)",
        "INSERT INTO orders VALUES (1,1,'x',1,'2024-01-01',NULL,NULL,NULL)",
        "INSERT INTO orders (id) VALUES (1,2)",
        // A column the table does not have; not a VALUES insert.
        "INSERT INTO orders (nope) VALUES (1)",
        "INSERT INTO orders SET id = 1",
        "INSERT INTO orders VALUES (1,1,'x',1,'2024-01-01',NULL,NULL) ON DUPLICATE KEY UPDATE id=id",
        // Not valid UTF-8.
        "INSERT INTO orders VALUES (1,1,'\u{FFFD}',1,'2024-01-01',NULL,NULL)",
    ] {
        let mut bytes = insert.as_bytes().to_vec();
        if insert.contains('\u{FFFD}') {
            bytes = insert.replace('\u{FFFD}', "").into_bytes();
            let at = bytes.iter().position(|&b| b == b'\'').unwrap() + 1;
            bytes.insert(at, 0xC3);
        }
        assert!(
            convert(&bytes, &orders(), "utf8mb4").is_err(),
            "{insert} converted"
        );
    }
}

#[test]
fn character_sets_must_be_known_and_strings_valid_in_them() {
    let insert = "INSERT INTO orders VALUES (1,1,'😀',1,'2024-01-01',NULL,NULL)".as_bytes();
    assert!(convert(insert, &orders(), "utf8mb4").is_ok());
    assert!(convert(insert, &orders(), "utf8mb3").is_err());
    assert!(convert(insert, &orders(), "ascii").is_err());
    assert!(convert(insert, &orders(), "latin1").is_ok());
    assert!(convert(insert, &orders(), "sjis").is_err());
    assert!(convert(insert, &orders(), "gbk").is_err());
}

/// `LOAD DATA`'s reading of one line (default format): the fields.
fn read_line(line: &[u8]) -> Vec<Option<Vec<u8>>> {
    line.split(|&b| b == b'\t')
        .map(|f| {
            if f == b"\\N" {
                return None;
            }
            let mut out = Vec::new();
            let mut i = 0;
            while i < f.len() {
                if f[i] == b'\\' && i + 1 < f.len() {
                    out.push(match f[i + 1] {
                        b'0' => 0,
                        b'b' => 8,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'Z' => 26,
                        c => c,
                    });
                    i += 2;
                } else {
                    out.push(f[i]);
                    i += 1;
                }
            }
            Some(out)
        })
        .collect()
}

/// mysqldump's escaping of a string.
fn quote(v: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &c in v {
        match c {
            0 => out.extend_from_slice(b"\\0"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\'' => out.extend_from_slice(b"\\'"),
            b'"' => out.extend_from_slice(b"\\\""),
            26 => out.extend_from_slice(b"\\Z"),
            c => out.push(c),
        }
    }
    out.push(b'\'');
    out
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('a', 'z'),
                1 => proptest::sample::select(vec!['\\', '\'', '"', '\t', '\n', '\r', '\0', '\u{1a}', '%', '_', 'N', 'é', '😀', ' ', ',', '(', ')']),
            ],
            0..24,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        /// Strings written as mysqldump writes them come out of the file
        /// as LOAD DATA reads it byte for byte; NULLs as NULLs; numbers
        /// as written.
        #[test]
        fn the_file_holds_the_values_the_insert_held(
            rows in proptest::collection::vec((any::<i64>(), proptest::option::of(text()), text()), 1..8)
        ) {
            let mut sql = b"INSERT INTO `orders` VALUES ".to_vec();
            for (k, (id, note, status)) in rows.iter().enumerate() {
                if k > 0 {
                    sql.push(b',');
                }
                sql.extend_from_slice(format!("({id},1,").as_bytes());
                sql.extend(quote(status.as_bytes()));
                sql.extend_from_slice(b",1.25,'2024-01-01',");
                match note {
                    Some(n) => sql.extend(quote(n.as_bytes())),
                    None => sql.extend_from_slice(b"NULL"),
                }
                sql.extend_from_slice(b",NULL)");
            }
            let f = convert(&sql, &orders(), "utf8mb4").expect("converts");
            prop_assert_eq!(f.rows, rows.len() as u64);
            let lines: Vec<&[u8]> = f.tsv.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n').collect();
            prop_assert_eq!(lines.len(), rows.len());
            for (line, (id, note, status)) in lines.iter().zip(&rows) {
                let fields = read_line(line);
                prop_assert_eq!(fields.len(), 7);
                let id = id.to_string();
                prop_assert_eq!(fields[0].as_deref(), Some(id.as_bytes()));
                prop_assert_eq!(fields[2].as_deref(), Some(status.as_bytes()));
                prop_assert_eq!(fields[5].as_deref(), note.as_deref().map(str::as_bytes));
                prop_assert_eq!(fields[6].as_deref(), None);
            }
        }

        /// Arbitrary bytes never panic: a file or a reason.
        #[test]
        fn arbitrary_inserts_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut sql = b"INSERT INTO orders VALUES ".to_vec();
            sql.extend(tail);
            let _ = convert(&sql, &orders(), "utf8mb4");
        }
    }
}
