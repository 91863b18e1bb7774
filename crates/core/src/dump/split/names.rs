//! The connection's character set as the dump's `SET`s leave it: what a
//! string literal is read as, so what a `LOAD DATA` file of the same rows
//! must say it is in. Known only from a `SET NAMES` on; anything that
//! changes it in a way not followed here makes it unknown.

use std::collections::HashMap;

use crate::dump::keys::toks;
use crate::dump::statements::Tok;

/// The client's and the connection's character sets, as far as known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Names {
    client: Option<String>,
    connection: Option<String>,
    /// User variables holding a saved character set (mysqldump's
    /// `SET @saved_cs_client = @@character_set_client`).
    saved: HashMap<String, Option<String>>,
}

impl Names {
    /// The character set string literals are in: the client's and the
    /// connection's, when both are known and the same.
    pub fn charset(&self) -> Option<&str> {
        match (&self.client, &self.connection) {
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        }
    }

    /// Follows a session-state statement (`SET ...`).
    pub fn observe(&mut self, text: &[u8]) {
        let t = toks(text, 256);
        if !t.first().is_some_and(|(tok, _)| tok.is("SET")) {
            return;
        }
        // A word, a quoted name or `DEFAULT` at `k`: the name, lower-case.
        let value = |k: usize| -> Option<String> {
            let (tok, (from, to)) = t.get(k)?;
            let raw = &text[*from..*to];
            let name = match tok {
                Tok::Word(w) if w == "DEFAULT" => return None,
                Tok::Word(_) | Tok::Ident(_) => String::from_utf8_lossy(raw).into_owned(),
                Tok::Str => String::from_utf8_lossy(raw)
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_owned(),
                Tok::Punct(_) => return None,
            };
            Some(name.trim_matches('`').to_ascii_lowercase())
        };
        let user_var = |k: usize| -> Option<String> {
            match (t.get(k), t.get(k + 1)) {
                (Some((Tok::Punct(b'@'), _)), Some((tok, span)))
                    if !matches!(tok, Tok::Punct(_)) =>
                {
                    tok.name(text, *span).map(|n| n.to_ascii_lowercase())
                }
                _ => None,
            }
        };
        let assigns = |k: usize| {
            let mut v = k + 1;
            if matches!(t.get(v), Some((Tok::Punct(b':'), _))) {
                v += 1;
            }
            matches!(t.get(v), Some((Tok::Punct(b'='), _))).then_some(v + 1)
        };
        for k in 0..t.len() {
            let (tok, _) = &t[k];
            let after_set_or_comma =
                k > 0 && (t[k - 1].0.is("SET") || t[k - 1].0 == Tok::Punct(b','));
            if tok.is("NAMES") && after_set_or_comma {
                let cs = value(k + 1);
                self.client.clone_from(&cs);
                self.connection = cs;
            } else if tok.is("CHARACTER")
                && after_set_or_comma
                && t.get(k + 1).is_some_and(|(n, _)| n.is("SET"))
            {
                // `SET CHARACTER SET x`: the connection gets the
                // database's character set.
                self.client = value(k + 2);
                self.connection = None;
            } else if tok.is("CHARSET") && after_set_or_comma {
                self.client = value(k + 1);
                self.connection = None;
            } else if tok.is("CHARACTER_SET_CLIENT") || tok.is("CHARACTER_SET_CONNECTION") {
                let Some(v) = assigns(k) else {
                    // Read on the right of `=`: a save.
                    if tok.is("CHARACTER_SET_CLIENT") {
                        if let Some(var) = saving_into(&t, text, k) {
                            self.saved.insert(var, self.client.clone());
                        }
                    }
                    continue;
                };
                let cs = match user_var(v) {
                    Some(var) => self.saved.get(&var).cloned().flatten(),
                    None => value(v),
                };
                if tok.is("CHARACTER_SET_CLIENT") {
                    self.client = cs;
                } else {
                    self.connection = cs;
                }
            } else if tok.is("COLLATION_CONNECTION") && assigns(k).is_some() {
                // Its character set is the collation's prefix; not followed.
                self.connection = None;
            }
        }
    }
}

/// `@var = @@character_set_client` with the system variable at `k`: `var`.
fn saving_into(t: &[(Tok, (usize, usize))], text: &[u8], k: usize) -> Option<String> {
    // Back over `@@` (and `SESSION.`) to the `=`.
    let mut j = k;
    while j > 0 && (matches!(t[j - 1].0, Tok::Punct(b'@' | b'.')) || t[j - 1].0.is("SESSION")) {
        j -= 1;
    }
    if j < 3 || t[j - 1].0 != Tok::Punct(b'=') {
        return None;
    }
    let (tok, span) = &t[j - 2];
    if t[j - 3].0 != Tok::Punct(b'@') {
        return None;
    }
    tok.name(text, *span).map(|n| n.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(stmts: &[&str]) -> Option<String> {
        let mut n = Names::default();
        for s in stmts {
            n.observe(s.as_bytes());
        }
        n.charset().map(str::to_owned)
    }

    #[test]
    fn unknown_until_set_names() {
        assert_eq!(after(&[]), None);
        assert_eq!(after(&["SET sql_mode = ''"]), None);
        assert_eq!(
            after(&["/*!40101 SET NAMES utf8mb4 */"]).as_deref(),
            Some("utf8mb4")
        );
        assert_eq!(
            after(&["SET NAMES 'latin1' COLLATE 'latin1_bin'"]).as_deref(),
            Some("latin1")
        );
    }

    #[test]
    fn mysqldumps_save_and_restore_around_a_create_table() {
        let dump = [
            "/*!40101 SET NAMES utf8mb4 */",
            "/*!40101 SET @saved_cs_client     = @@character_set_client */",
            "/*!50503 SET character_set_client = utf8mb4 */",
        ];
        assert_eq!(after(&dump).as_deref(), Some("utf8mb4"));
        let older = [
            "/*!40101 SET NAMES utf8mb4 */",
            "/*!40101 SET @saved_cs_client     = @@character_set_client */",
            "/*!40101 SET character_set_client = utf8 */",
        ];
        // Client utf8, connection utf8mb4: not the same, unknown.
        assert_eq!(after(&older), None);
        let restored = [
            older[0],
            older[1],
            older[2],
            "/*!40101 SET character_set_client = @saved_cs_client */",
        ];
        assert_eq!(after(&restored).as_deref(), Some("utf8mb4"));
    }

    #[test]
    fn what_is_not_followed_makes_it_unknown() {
        for s in [
            "SET CHARACTER SET latin1",
            "SET collation_connection = latin1_swedish_ci",
            "SET character_set_client = @somewhere",
            "SET NAMES DEFAULT",
            "SET character_set_connection = DEFAULT",
        ] {
            assert_eq!(after(&["SET NAMES utf8mb4", s]), None, "{s}");
        }
    }

    #[test]
    fn old_variables_restore_what_was_saved() {
        assert_eq!(
            after(&[
                "SET NAMES latin1",
                "SET @old = @@character_set_client",
                "SET NAMES utf8mb4",
                "SET character_set_client = @old, character_set_connection = latin1",
            ])
            .as_deref(),
            Some("latin1")
        );
    }
}
