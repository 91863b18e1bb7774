use super::*;

fn cut(input: &[u8], piece: usize) -> Vec<Stmt> {
    let mut t = Tokenizer::new();
    let mut out = Vec::new();
    let mut push = |s: Stmt| {
        out.push(s);
        Ok::<(), ()>(())
    };
    for chunk in input.chunks(piece.max(1)) {
        t.feed(chunk, &mut push).unwrap();
    }
    t.finish(&mut push).unwrap();
    out
}

#[test]
fn statements_quotes_comments_and_delimiters() {
    let dump = b"-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n\
        # a comment; with a semicolon\n\
        INSERT INTO `t` VALUES (1,'a;b\\'c'),(2,\"x;\"), (3, 'line\nbreak');\n\
        /* plain; comment */\n\
        DELIMITER ;;\n\
        CREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; SET @b = 2; END ;;\n\
        DELIMITER ;\n\
        SELECT 1 -- trailing; comment\n;\n\
        SELECT `a;b` FROM t";
    for piece in [1, 2, 3, 7, 1000] {
        let s = cut(dump, piece);
        let texts: Vec<String> = s
            .iter()
            .map(|s| String::from_utf8_lossy(&s.text).into_owned())
            .collect();
        assert_eq!(texts.len(), 5, "piece {piece}: {texts:#?}");
        assert_eq!(texts[0], "/*!40101 SET NAMES utf8mb4 */");
        assert_eq!(s[0].line, 2);
        assert!(texts[1].starts_with("INSERT INTO `t`") && texts[1].ends_with("break')"));
        assert_eq!(s[1].line, 4);
        assert!(texts[2].starts_with("CREATE TRIGGER") && texts[2].ends_with("END"));
        assert_eq!(s[2].delim, b";;");
        assert_eq!(s[2].line, 8);
        assert_eq!(texts[3], "SELECT 1 -- trailing; comment");
        assert_eq!(s[3].delim, b";");
        assert_eq!(texts[4], "SELECT `a;b` FROM t");
    }
}

#[test]
fn the_lexer_reads_through_executable_comments() {
    let text = b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `trg` AFTER INSERT ON `db`.`orders` FOR EACH ROW";
    let mut l = Lexer::new(text);
    let mut toks = Vec::new();
    while let Some((t, _)) = l.next_tok() {
        toks.push(t);
    }
    assert_eq!(toks[0], Tok::Word("CREATE".into()));
    assert_eq!(toks[1], Tok::Word("DEFINER".into()));
    assert!(toks.contains(&Tok::Ident("orders".into())));
}

fn texts(s: &[Stmt]) -> Vec<String> {
    s.iter()
        .map(|s| String::from_utf8_lossy(&s.text).into_owned())
        .collect()
}

/// Cuts `input` fed in pieces of the given sizes (cycled).
fn cut_at(input: &[u8], sizes: &[usize]) -> Vec<Stmt> {
    let mut t = Tokenizer::new();
    let mut out = Vec::new();
    let mut push = |s: Stmt| {
        out.push(s);
        Ok::<(), ()>(())
    };
    let (mut i, mut k) = (0, 0);
    while i < input.len() {
        let n = sizes
            .get(k % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        let end = (i + n).min(input.len());
        t.feed(&input[i..end], &mut push).unwrap();
        i = end;
        k += 1;
    }
    t.finish(&mut push).unwrap();
    out
}

#[test]
fn a_plain_comment_starting_with_m_is_a_comment() {
    for piece in [1, 2, 3, 4, 100] {
        let s = cut(
            b"/*Mark's note; see */ SELECT 1;\nSELECT 2 /*M it's*/;\n/*M!100100 SELECT 3 */;",
            piece,
        );
        assert_eq!(
            texts(&s),
            ["SELECT 1", "SELECT 2 /*M it's*/", "/*M!100100 SELECT 3 */"],
            "piece {piece}"
        );
    }
}

#[test]
fn a_delimiter_that_starts_like_a_comment() {
    // `//` as the delimiter, `/*` split across pieces.
    let dump = b"DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; /* x; */ END//\nSELECT 2 /*!50003 + 1 */ //\nDELIMITER ;\nSELECT 3;";
    for piece in 1..8 {
        let s = cut(dump, piece);
        assert_eq!(
            texts(&s),
            [
                "CREATE PROCEDURE p() BEGIN SELECT 1; /* x; */ END",
                "SELECT 2 /*!50003 + 1 */",
                "SELECT 3"
            ],
            "piece {piece}"
        );
        assert_eq!(s[0].delim, b"//");
        assert_eq!(s[2].delim, b";");
    }
    // A delimiter that starts with a dash.
    let s = cut(b"DELIMITER -x\nSELECT 1-x\nSELECT 2 -- c -x\n-x", 1);
    assert_eq!(texts(&s), ["SELECT 1", "SELECT 2 -- c -x"]);
}

#[test]
fn line_numbers_crlf_and_the_end_of_the_stream() {
    let s = cut(
        b"\r\n-- c\r\nSELECT 1;\r\n\r\n  SELECT\r\n 2;;;\nSELECT 3",
        3,
    );
    assert_eq!(texts(&s), ["SELECT 1", "SELECT\r\n 2", "SELECT 3"]);
    assert_eq!(s.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 5, 7]);
    // A DELIMITER line at the very end, and comments only: nothing more.
    assert!(cut(b"-- only\n/* a comment */\n# and\nDELIMITER ;;", 2).is_empty());
    // `--` not followed by a blank is no comment.
    assert_eq!(texts(&cut(b"SELECT 1--1;", 1)), ["SELECT 1--1"]);
    // Quotes and escapes across lines.
    let s = cut(
        b"INSERT INTO t VALUES ('a\\\nb;', \"c\n\", `d\n;`);\nSELECT 1;",
        1,
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].line, 5);
}

#[test]
fn the_client_delimiter_command_is_case_blind_and_takes_one_word() {
    let s = cut(
        b"delimiter $$ trailing words\nSELECT 1$$\nDeLiMiTeR\t;\nSELECT 2;",
        1,
    );
    assert_eq!(texts(&s), ["SELECT 1", "SELECT 2"]);
    assert_eq!(s[0].delim, b"$$");
    // Not at the start of a statement: ordinary text.
    let s = cut(b"SELECT 1 delimiter x;", 1);
    assert_eq!(texts(&s), ["SELECT 1 delimiter x"]);
}

#[test]
fn mariadb_dumps_sandbox_line_is_a_client_command() {
    let dump = b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\nSELECT 1;";
    for piece in [1, 5, 40, 1000] {
        let s = cut(dump, piece);
        assert_eq!(
            texts(&s),
            [
                "/*M!999999\\- enable the sandbox mode */",
                "/*!40101 SET NAMES utf8mb4 */",
                "SELECT 1"
            ],
            "piece {piece}"
        );
        assert!(s[0].is_client_command() && !s[1].is_client_command());
        assert_eq!((s[0].line, s[1].line, s[2].line), (1, 3, 4));
    }
    // Only that exact line: another comment is skipped as before.
    assert_eq!(
        texts(&cut(b"/*M!99 x */;\n/* y */ SELECT 2;", 3)),
        ["/*M!99 x */", "SELECT 2"]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that drive the tokenizer through every state, mixed with
    /// arbitrary bytes.
    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => proptest::sample::select(vec![
                ";", ";;", "'", "\"", "`", "\\", "--", "-- ", "#", "/*", "*/", "/*!50001 ",
                "/*M!100100 ", "/*M", "/*M!999999\\- enable the sandbox mode */", "\n", "\r\n", "DELIMITER ;;\n", "DELIMITER //\n",
                "DELIMITER ;\n", "delimiter $$\n", "DELIMITER -x\n", "//", "$$", "-x", "-", "/",
                "*", " ", "\t", "SELECT 1", "d", "D", "INSERT INTO `t` VALUES (1,'a')",
                "CREATE TABLE t (a INT PRIMARY KEY, KEY k (a))",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    fn dump() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(fragment(), 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_same_statements_whatever_the_chunking(
            input in dump(),
            sizes in proptest::collection::vec(1usize..12, 1..8),
        ) {
            let whole = cut(&input, input.len().max(1));
            prop_assert_eq!(&cut_at(&input, &sizes), &whole);
            prop_assert_eq!(&cut(&input, 1), &whole);
            // Statements are never empty and never start with a blank.
            for s in &whole {
                prop_assert!(!s.text.is_empty());
                prop_assert!(!s.text[0].is_ascii_whitespace());
                prop_assert!(!s.delim.is_empty() || s.text.starts_with(SANDBOX));
                // What reads a statement never panics on it either.
                let _ = crate::dump::split::classify(&s.text);
                let _ = crate::dump::keys::defer_keys(&s.text, "db", "t");
                let mut l = Lexer::new(&s.text);
                while l.next_tok().is_some() {}
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            input in proptest::collection::vec(any::<u8>(), 0..512),
            sizes in proptest::collection::vec(1usize..64, 1..4),
        ) {
            let whole = cut(&input, input.len().max(1));
            prop_assert_eq!(&cut_at(&input, &sizes), &whole);
            for s in &whole {
                let _ = crate::dump::split::classify(&s.text);
                let _ = crate::dump::keys::defer_keys(&s.text, "db", "t");
            }
        }
    }
}
