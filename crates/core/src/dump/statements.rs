//! A dump's byte stream cut into statements the way the `mariadb`/`mysql`
//! client cuts it: quotes, backslash escapes, `--`/`#`/`/* */` comments,
//! executable `/*! */` comments (their content is SQL) and the client's
//! `DELIMITER` command. Line numbers are kept so that errors can name the
//! dump's line.

use memchr::{memchr, memchr2, memchr3};

/// One statement, as the client would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// Without its delimiter; leading comments and surrounding blanks
    /// trimmed.
    pub text: Vec<u8>,
    /// The delimiter in force when it ended (`;` unless `DELIMITER` said
    /// otherwise).
    pub delim: Vec<u8>,
    /// Line of the dump where it starts (1-based); 0 for SQL dolly wrote.
    pub line: u64,
}

/// The line `mariadb-dump` (10.5.25, 10.6.18, 10.11.8, 11.x and later)
/// writes first: the MariaDB client's sandbox command (`\-`: no shell or
/// file commands from here on). Cut as a [`Stmt`] of its own with an empty
/// delimiter: a client command, not SQL.
pub const SANDBOX: &[u8] = b"/*M!999999\\- enable the sandbox mode */";

impl Stmt {
    /// A command for the client itself (the sandbox line), not SQL.
    pub fn is_client_command(&self) -> bool {
        self.delim.is_empty()
    }

    /// SQL dolly adds (deferred index builds, foreign keys).
    pub fn synthetic(text: impl Into<Vec<u8>>) -> Self {
        Self {
            text: text.into(),
            delim: b";".to_vec(),
            line: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Quote(u8),
    /// After a backslash inside a quote.
    Escape(u8),
    /// `--` or `#` to the end of the line; `keep`: inside a statement.
    LineComment {
        keep: bool,
    },
    BlockComment {
        keep: bool,
        star: bool,
    },
    /// The rest of a `DELIMITER` line.
    Command,
}

/// Cuts a byte stream fed in arbitrary pieces into [`Stmt`]s.
pub struct Tokenizer {
    delim: Vec<u8>,
    buf: Vec<u8>,
    command: Vec<u8>,
    state: State,
    line: u64,
    stmt_line: u64,
    /// Bytes kept back until the next piece shows what they start.
    carry: Vec<u8>,
    /// No statement text yet (blanks and comments are skipped).
    leading: bool,
    last_len: usize,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokenizer {
    pub fn new() -> Self {
        Self {
            delim: b";".to_vec(),
            buf: Vec::new(),
            command: Vec::new(),
            state: State::Normal,
            line: 1,
            stmt_line: 1,
            carry: Vec::new(),
            leading: true,
            last_len: 0,
        }
    }

    /// Feeds the next piece of the stream; complete statements go to `out`.
    pub fn feed<E>(
        &mut self,
        piece: &[u8],
        out: &mut dyn FnMut(Stmt) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.carry.is_empty() {
            self.run(piece, false, out)
        } else {
            let mut data = std::mem::take(&mut self.carry);
            data.extend_from_slice(piece);
            self.run(&data, false, out)
        }
    }

    /// The end of the stream: what is left is the last statement (the
    /// client runs a statement that lacks its delimiter at the end).
    pub fn finish<E>(&mut self, out: &mut dyn FnMut(Stmt) -> Result<(), E>) -> Result<(), E> {
        let data = std::mem::take(&mut self.carry);
        self.run(&data, true, out)?;
        if self.state == State::Command {
            self.end_command();
        }
        if !self.leading {
            self.emit(out)?;
        }
        Ok(())
    }

    fn emit<E>(&mut self, out: &mut dyn FnMut(Stmt) -> Result<(), E>) -> Result<(), E> {
        let mut text = std::mem::replace(&mut self.buf, Vec::with_capacity(self.last_len));
        while text.last().is_some_and(|b| b.is_ascii_whitespace()) {
            text.pop();
        }
        self.leading = true;
        if text.is_empty() {
            return Ok(());
        }
        self.last_len = text.len().min(64 << 20);
        out(Stmt {
            text,
            delim: self.delim.clone(),
            line: self.stmt_line,
        })
    }

    fn end_command(&mut self) {
        let text = String::from_utf8_lossy(&self.command).into_owned();
        if let Some(d) = text.split_whitespace().next() {
            self.delim = d.as_bytes().to_vec();
        }
        self.command.clear();
        self.state = State::Normal;
        self.leading = true;
    }

    fn run<E>(
        &mut self,
        data: &[u8],
        eof: bool,
        out: &mut dyn FnMut(Stmt) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        let n = data.len();
        while i < n {
            match self.state {
                State::Normal => {
                    let b = data[i];
                    if self.leading {
                        if b.is_ascii_whitespace() {
                            if b == b'\n' {
                                self.line += 1;
                            }
                            i += 1;
                            continue;
                        }
                        if b == b'/' && SANDBOX.starts_with(&data[i..n.min(i + 2)]) {
                            // mariadb-dump's first line: a client command.
                            if n - i < SANDBOX.len() && !eof {
                                self.carry.extend_from_slice(&data[i..]);
                                return Ok(());
                            }
                            let end = memchr(b'\n', &data[i..]);
                            let sandbox = data[i..].starts_with(SANDBOX);
                            if sandbox && end.is_none() && !eof && n - i < 4096 {
                                self.carry.extend_from_slice(&data[i..]);
                                return Ok(());
                            }
                            if sandbox {
                                let stop = end.map_or(n, |k| i + k);
                                let mut text = data[i..stop].to_vec();
                                while text.last().is_some_and(|b| b.is_ascii_whitespace()) {
                                    text.pop();
                                }
                                out(Stmt {
                                    text,
                                    delim: Vec::new(),
                                    line: self.line,
                                })?;
                                i = stop;
                                continue;
                            }
                        }
                        if b == b'd' || b == b'D' {
                            if n - i < 10 && !eof {
                                self.carry.extend_from_slice(&data[i..]);
                                return Ok(());
                            }
                            let word = &data[i..n.min(i + 10)];
                            if word.len() == 10
                                && word[..9].eq_ignore_ascii_case(b"delimiter")
                                && (word[9] == b' ' || word[9] == b'\t')
                            {
                                self.state = State::Command;
                                i += 10;
                                continue;
                            }
                        }
                    }
                    // Constructs that need a look at the next bytes.
                    // (`--` needs the byte after it, `/*` the two: `/*!`,
                    // `/*M!`; a delimiter may start with either.)
                    if matches!(b, b'-' | b'/') || b == self.delim[0] {
                        let mut need = if b == self.delim[0] {
                            self.delim.len()
                        } else {
                            0
                        };
                        if matches!(b, b'-' | b'/') {
                            need = need.max(4);
                        }
                        if n - i < need && !eof {
                            self.carry.extend_from_slice(&data[i..]);
                            return Ok(());
                        }
                    }
                    if data[i..].starts_with(&self.delim) {
                        if self.leading {
                            // An empty statement.
                            i += self.delim.len();
                            continue;
                        }
                        self.emit(out)?;
                        i += self.delim.len();
                        continue;
                    }
                    let next = data.get(i + 1).copied();
                    match b {
                        b'\'' | b'"' | b'`' => {
                            self.start_text();
                            self.buf.push(b);
                            self.state = State::Quote(b);
                            i += 1;
                        }
                        b'#' => {
                            self.state = State::LineComment {
                                keep: !self.leading,
                            };
                            if !self.leading {
                                self.buf.push(b);
                            }
                            i += 1;
                        }
                        b'-' if next == Some(b'-')
                            && data.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
                        {
                            self.state = State::LineComment {
                                keep: !self.leading,
                            };
                            if !self.leading {
                                self.buf.extend_from_slice(b"--");
                            }
                            i += 2;
                        }
                        b'/' if next == Some(b'*')
                            && data.get(i + 2) != Some(&b'!')
                            && !data[i + 2..].starts_with(b"M!") =>
                        {
                            let keep = !self.leading;
                            self.state = State::BlockComment { keep, star: false };
                            if keep {
                                self.buf.extend_from_slice(b"/*");
                            }
                            i += 2;
                        }
                        b'\n' => {
                            self.line += 1;
                            self.buf.push(b);
                            i += 1;
                        }
                        _ => {
                            self.start_text();
                            // A run of ordinary bytes at once.
                            let d0 = self.delim[0];
                            let mut j = i + 1;
                            while j < n {
                                let c = data[j];
                                if c == d0
                                    || matches!(c, b'\'' | b'"' | b'`' | b'#' | b'-' | b'/' | b'\n')
                                {
                                    break;
                                }
                                j += 1;
                            }
                            self.buf.extend_from_slice(&data[i..j]);
                            i = j;
                        }
                    }
                }
                State::Quote(q) => {
                    let rest = &data[i..];
                    let found = if q == b'`' {
                        memchr2(q, b'\n', rest)
                    } else {
                        memchr3(q, b'\\', b'\n', rest)
                    };
                    match found {
                        None => {
                            self.buf.extend_from_slice(rest);
                            i = n;
                        }
                        Some(k) => {
                            let c = rest[k];
                            self.buf.extend_from_slice(&rest[..=k]);
                            i += k + 1;
                            if c == b'\n' {
                                self.line += 1;
                            } else if c == b'\\' {
                                self.state = State::Escape(q);
                            } else {
                                self.state = State::Normal;
                            }
                        }
                    }
                }
                State::Escape(q) => {
                    let c = data[i];
                    if c == b'\n' {
                        self.line += 1;
                    }
                    self.buf.push(c);
                    i += 1;
                    self.state = State::Quote(q);
                }
                State::LineComment { keep } => match memchr(b'\n', &data[i..]) {
                    None => {
                        if keep {
                            self.buf.extend_from_slice(&data[i..]);
                        }
                        i = n;
                    }
                    Some(k) => {
                        if keep {
                            self.buf.extend_from_slice(&data[i..=i + k]);
                        }
                        self.line += 1;
                        i += k + 1;
                        self.state = State::Normal;
                    }
                },
                State::BlockComment { keep, star } => {
                    let c = data[i];
                    if keep {
                        self.buf.push(c);
                    }
                    if c == b'\n' {
                        self.line += 1;
                    }
                    i += 1;
                    if star && c == b'/' {
                        self.state = State::Normal;
                    } else {
                        self.state = State::BlockComment {
                            keep,
                            star: c == b'*',
                        };
                    }
                }
                State::Command => match memchr(b'\n', &data[i..]) {
                    None => {
                        self.command.extend_from_slice(&data[i..]);
                        i = n;
                    }
                    Some(k) => {
                        self.command.extend_from_slice(&data[i..i + k]);
                        self.line += 1;
                        i += k + 1;
                        self.end_command();
                    }
                },
            }
        }
        Ok(())
    }

    fn start_text(&mut self) {
        if self.leading {
            self.leading = false;
            self.stmt_line = self.line;
        }
    }
}

/// A token of a statement's text, for classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word, upper-cased.
    Word(String),
    /// A back-quoted identifier, unquoted.
    Ident(String),
    Str,
    Punct(u8),
}

impl Tok {
    pub fn is(&self, word: &str) -> bool {
        matches!(self, Tok::Word(w) if w == word)
    }

    /// A name: a bare word (as written) or a back-quoted identifier.
    pub fn name(&self, text: &[u8], span: (usize, usize)) -> Option<String> {
        match self {
            Tok::Ident(s) => Some(s.clone()),
            Tok::Word(_) => Some(String::from_utf8_lossy(&text[span.0..span.1]).into_owned()),
            _ => None,
        }
    }
}

/// Tokens of SQL text: executable comment markers (`/*!50003`, `*/`) and
/// ordinary comments are skipped, so `/*!50003 CREATE*/ /*!50017
/// DEFINER=...*/ /*!50003 TRIGGER` reads as `CREATE DEFINER = ... TRIGGER`.
pub struct Lexer<'a> {
    s: &'a [u8],
    pub pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Self { s, pos: 0 }
    }

    /// The next token and its byte span.
    pub fn next_tok(&mut self) -> Option<(Tok, (usize, usize))> {
        let s = self.s;
        loop {
            while self.pos < s.len() && s[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &s[self.pos..];
            if rest.is_empty() {
                return None;
            }
            if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
                self.pos += if rest[2] == b'M' { 4 } else { 3 };
                while self.pos < s.len() && s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                continue;
            }
            if rest.starts_with(b"*/") {
                self.pos += 2;
                continue;
            }
            if rest.starts_with(b"/*") {
                match memchr::memmem::find(&rest[2..], b"*/") {
                    Some(k) => self.pos += k + 4,
                    None => self.pos = s.len(),
                }
                continue;
            }
            if rest[0] == b'#'
                || (rest.starts_with(b"--") && rest.get(2).is_none_or(|c| c.is_ascii_whitespace()))
            {
                match memchr(b'\n', rest) {
                    Some(k) => self.pos += k + 1,
                    None => self.pos = s.len(),
                }
                continue;
            }
            break;
        }
        let start = self.pos;
        let c = s[start];
        if c == b'`' {
            let mut out = Vec::new();
            let mut i = start + 1;
            while i < s.len() {
                if s[i] == b'`' {
                    if s.get(i + 1) == Some(&b'`') {
                        out.push(b'`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                out.push(s[i]);
                i += 1;
            }
            self.pos = i;
            return Some((
                Tok::Ident(String::from_utf8_lossy(&out).into_owned()),
                (start, i),
            ));
        }
        if c == b'\'' || c == b'"' {
            let mut i = start + 1;
            while i < s.len() {
                if s[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if s[i] == c {
                    if s.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            self.pos = i.min(s.len());
            return Some((Tok::Str, (start, self.pos)));
        }
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let mut i = start;
            while i < s.len()
                && (s[i].is_ascii_alphanumeric() || s[i] == b'_' || s[i] == b'$' || s[i] >= 0x80)
            {
                i += 1;
            }
            self.pos = i;
            let w = String::from_utf8_lossy(&s[start..i]).to_ascii_uppercase();
            return Some((Tok::Word(w), (start, i)));
        }
        self.pos = start + 1;
        Some((Tok::Punct(c), (start, start + 1)))
    }
}

#[cfg(test)]
mod tests;
