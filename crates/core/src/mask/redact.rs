//! Server messages without the values they quote: what members see of a
//! failed import (`ERROR 1062 (23000) at line 45: Duplicate entry '…' for
//! key '…'`). The full message goes to dollyd's log only.

/// `message` with the content of every single- or double-quoted literal
/// replaced by `…` (an unterminated one: to the end). Back-quoted names
/// are kept; error codes, SQLSTATE classes and line numbers are outside
/// quotes and stay.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' && c != '"' {
            out.push(c);
            continue;
        }
        out.push(c);
        out.push('…');
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' {
                chars.next();
                continue;
            }
            if d == c {
                if chars.peek() == Some(&c) {
                    chars.next();
                    continue;
                }
                closed = true;
                break;
            }
        }
        if closed {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_go_codes_and_lines_stay() {
        assert_eq!(
            redact_values(
                "ERROR 1062 (23000) at line 45: Duplicate entry 'real.person@corp.example' for key 'email'"
            ),
            "ERROR 1062 (23000) at line 45: Duplicate entry '…' for key '…'"
        );
        assert_eq!(
            redact_values("ERROR 1406 (22001) at line 3: Data too long for column `name` at row 1"),
            "ERROR 1406 (22001) at line 3: Data too long for column `name` at row 1"
        );
        assert_eq!(
            redact_values("bad 'it''s \\' x' and \"dq\" and 'unterminated secret"),
            "bad '…' and \"…\" and '…"
        );
    }
}
