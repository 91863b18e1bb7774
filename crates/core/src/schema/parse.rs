//! `SHOW CREATE TABLE` into a [`Table`].

use super::Table;

/// Parses the server's `SHOW CREATE TABLE` text.
pub fn table(create: &str) -> Table {
    let mut t = Table::default();
    let mut body = Vec::new();
    let mut lines = create.lines();
    // The first line is `CREATE TABLE `name` (`.
    let head = lines.next().unwrap_or_default().to_owned();
    for line in lines {
        let trimmed = line.trim();
        if let Some(options) = trimmed.strip_prefix(')') {
            t.options = table_options(options);
            let kept: Vec<String> = t.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            body.push(format!(") {}", kept.join(" ")));
            continue;
        }
        let item = trimmed.trim_end_matches(',').to_owned();
        body.push(format!("  {item}"));
        if item.starts_with('`') {
            if let Some((name, def)) = quoted_name(&item) {
                t.columns.push((name, def.trim().to_owned()));
            }
        } else if item.starts_with("PRIMARY KEY") {
            t.indexes.insert("PRIMARY".to_owned(), item);
        } else if let Some(rest) = [
            "UNIQUE KEY ",
            "KEY ",
            "FULLTEXT KEY ",
            "SPATIAL KEY ",
            "UNIQUE INDEX ",
            "INDEX ",
        ]
        .iter()
        .find_map(|p| item.strip_prefix(p))
        {
            if let Some((name, _)) = quoted_name(rest) {
                t.indexes.insert(name, item.clone());
            }
        } else if let Some(rest) = item.strip_prefix("CONSTRAINT ") {
            if let Some((name, def)) = quoted_name(rest) {
                if def.trim_start().starts_with("FOREIGN KEY") {
                    t.foreign_keys.insert(name, item.clone());
                } else {
                    t.checks.insert(name, item.clone());
                }
            }
        }
    }
    t.create = format!("{head}\n{}", body.join(",\n").replace(",\n) ", "\n) "));
    t
}

/// `` `name` rest `` → (name, rest); doubled backquotes inside unescaped.
fn quoted_name(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|(_, n)| *n == '`') {
                name.push('`');
                chars.next();
                continue;
            }
            return Some((name, &s[i + 1..]));
        }
        name.push(c);
    }
    None
}

/// `ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COMMENT='x y'`
/// into options, without `AUTO_INCREMENT`.
fn table_options(s: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('\'') {
            // A quoted value: up to the closing quote ('' is a quote).
            let mut end = 0;
            let bytes = q.as_bytes();
            while end < bytes.len() {
                if bytes[end] == b'\'' {
                    if bytes.get(end + 1) == Some(&b'\'') {
                        end += 2;
                        continue;
                    }
                    break;
                }
                end += 1;
            }
            (
                format!("'{}'", &q[..end.min(q.len())]),
                &q[(end + 1).min(q.len())..],
            )
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        if key != "AUTO_INCREMENT" {
            out.insert(key, value);
        }
        rest = next.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "CREATE TABLE `orders` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `customer` int(11) NOT NULL,
  `note` varchar(200) DEFAULT 'a, b',
  `weird``name` text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u_note` (`note`),
  KEY `k_customer` (`customer`),
  FULLTEXT KEY `ft_note` (`note`),
  CONSTRAINT `fk_customer` FOREIGN KEY (`customer`) REFERENCES `customers` (`id`),
  CONSTRAINT `positive` CHECK (`id` > 0)
) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='it''s, here'";

    #[test]
    fn a_create_table_is_taken_apart() {
        let t = table(CREATE);
        let names: Vec<&str> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["id", "customer", "note", "weird`name"]);
        assert_eq!(t.columns[2].1, "varchar(200) DEFAULT 'a, b'");
        assert_eq!(
            t.indexes.keys().collect::<Vec<_>>(),
            vec!["PRIMARY", "ft_note", "k_customer", "u_note"]
        );
        assert!(t.foreign_keys["fk_customer"].contains("REFERENCES `customers`"));
        assert!(t.checks["positive"].contains("CHECK"));
        assert_eq!(t.options["ENGINE"], "InnoDB");
        assert_eq!(t.options["COMMENT"], "'it''s, here'");
        assert!(!t.options.contains_key("AUTO_INCREMENT"));
        assert!(!t.create.contains("AUTO_INCREMENT=42"), "{}", t.create);
    }

    #[test]
    fn the_auto_increment_counter_is_noise() {
        let other = CREATE.replace("AUTO_INCREMENT=42", "AUTO_INCREMENT=99");
        assert_eq!(table(CREATE), table(&other));
    }
}
