//! What a rule does to one value. Deterministic strategies are keyed
//! HMAC-SHA256 of the value under the `mask_key` setting: the same input
//! gives the same output in every table and every night (joins and foreign
//! keys still match), and nobody without the key can recompute or test a
//! guess. `NULL` stays `NULL` under every strategy but `constant`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// The value as it is.
    Keep,
    /// `NULL`.
    Null,
    /// This literal, whatever the value (`NULL` too).
    Constant(String),
    /// Keyed hash keeping the shape: letters stay letters of the same
    /// case, digits stay digits, punctuation stays; same length in
    /// characters. Binary values get bytes of the same length.
    Hash,
    /// An address `h<16 hex>@example.invalid` (64 bits of the keyed hash
    /// of the lower-cased address: unique inputs stay unique but with a
    /// probability of about n²/2⁶⁵); a value with no `@` is hashed as
    /// [`Strategy::Hash`].
    Email,
    /// Every digit replaced by a keyed digit, everything else kept: a phone
    /// number keeps its length and format.
    Digits,
    /// A fake value picked by the keyed hash from a built-in list.
    Fake(Fake),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fake {
    Name,
    FirstName,
    LastName,
    Company,
    City,
    Street,
    Word,
    Sentence,
}

impl Fake {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Fake::Name,
            "first_name" => Fake::FirstName,
            "last_name" => Fake::LastName,
            "company" => Fake::Company,
            "city" => Fake::City,
            "street" => Fake::Street,
            "word" => Fake::Word,
            "sentence" => Fake::Sentence,
            _ => return None,
        })
    }
}

const FIRST: &[&str] = &[
    "Ada", "Alan", "Ayla", "Bruno", "Chen", "Dara", "Elif", "Emil", "Fatou", "Grace", "Hana",
    "Ines", "Ivan", "Jonas", "Kemal", "Lea", "Lina", "Marta", "Milan", "Nadia", "Noor", "Omar",
    "Pia", "Quinn", "Rosa", "Sami", "Sofia", "Tomas", "Uma", "Vera", "Wen", "Yara", "Zane",
];
const LAST: &[&str] = &[
    "Abara", "Berg", "Costa", "Dumont", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
    "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi", "Silva",
    "Tanaka", "Urban", "Varga", "Weber", "Xu", "Yilmaz", "Zeller",
];
const COMPANY: &[&str] = &[
    "Acme",
    "Bluefin",
    "Cobalt",
    "Dunmore",
    "Everly",
    "Foxglove",
    "Granite",
    "Harbor",
    "Ironwood",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Northwind",
    "Oakridge",
    "Pinnacle",
];
const COMPANY_KIND: &[&str] = &["Ltd", "Inc", "GmbH", "SA", "Group", "Labs", "Partners"];
const CITY: &[&str] = &[
    "Springfield",
    "Riverton",
    "Lakeside",
    "Fairview",
    "Greenville",
    "Kingsport",
    "Milford",
    "Newport",
    "Oakdale",
    "Westbrook",
    "Ashford",
    "Brookfield",
];
const STREET: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Elm St",
    "Park Rd",
    "Mill Lane",
    "Church St",
    "High St",
    "Lake Dr",
];
const WORDS: &[&str] = &[
    "amber", "basil", "cedar", "delta", "ember", "fable", "glade", "haven", "ivory", "jolly",
    "karma", "lotus", "maple", "noble", "opal", "prism", "quill", "raven", "sable", "tidal",
    "umber", "vivid", "willow", "yonder", "zephyr",
];

/// A value of an `INSERT`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A string literal's bytes (escapes undone).
    Text(Vec<u8>),
    /// A hex (`0x..`, `X'..'`) or `_binary '..'` literal's bytes.
    Binary(Vec<u8>),
    /// A numeric literal as written.
    Number(Vec<u8>),
}

/// The keyed hash: HMAC-SHA256 under the `mask_key` setting.
#[derive(Clone)]
pub struct Keyed {
    mac: HmacSha256,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(..)")
    }
}

impl Keyed {
    pub fn new(key: &[u8]) -> Self {
        Self {
            // HMAC takes a key of any length.
            mac: HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!()),
        }
    }

    /// 32 bytes of keyed hash of (`domain`, `counter`, `input`).
    fn block(&self, domain: &[u8], counter: u32, input: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(domain);
        m.update(&[0]);
        m.update(&counter.to_be_bytes());
        m.update(input);
        m.finalize().into_bytes().into()
    }

    /// `n` bytes of keyed stream for `input`.
    fn stream(&self, domain: &[u8], input: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 32);
        let mut counter = 0;
        while out.len() < n {
            out.extend_from_slice(&self.block(domain, counter, input));
            counter += 1;
        }
        out.truncate(n);
        out
    }
}

impl Strategy {
    /// The masked value; `None`: keep the original text.
    pub fn apply(&self, key: &Keyed, v: &Value) -> Option<Value> {
        if let Strategy::Constant(c) = self {
            return Some(Value::Text(c.as_bytes().to_vec()));
        }
        match (self, v) {
            (Strategy::Keep, _) => None,
            (Strategy::Null, _) => Some(Value::Null),
            (_, Value::Null) => None,
            (Strategy::Hash, Value::Binary(b)) => {
                Some(Value::Binary(key.stream(b"bytes", b, b.len())))
            }
            (Strategy::Hash, Value::Text(t)) => Some(Value::Text(shape(key, b"hash", t, false))),
            (Strategy::Hash | Strategy::Digits, Value::Number(n)) => {
                Some(Value::Number(number(key, n)))
            }
            (Strategy::Email, Value::Number(n)) => Some(Value::Number(number(key, n))),
            (Strategy::Email, Value::Text(t) | Value::Binary(t)) => {
                let out = email(key, t);
                Some(match v {
                    Value::Binary(_) => Value::Binary(out),
                    _ => Value::Text(out),
                })
            }
            (Strategy::Digits, Value::Text(t)) => Some(Value::Text(shape(key, b"hash", t, true))),
            (Strategy::Digits, Value::Binary(t)) => {
                Some(Value::Binary(shape(key, b"hash", t, true)))
            }
            (Strategy::Fake(kind), Value::Text(t) | Value::Binary(t) | Value::Number(t)) => {
                Some(Value::Text(fake(key, *kind, t).into_bytes()))
            }
            (Strategy::Constant(_), _) => None,
        }
    }
}

/// Same shape: each ASCII letter a keyed letter of its case, each digit a
/// keyed digit, each other ASCII byte kept, each non-ASCII character (any
/// script: it could be a name) a keyed lower-case ASCII letter. With
/// `digits_only`, letters and other characters are kept.
fn shape(key: &Keyed, domain: &[u8], t: &[u8], digits_only: bool) -> Vec<u8> {
    let ks = key.stream(domain, t, t.len());
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let b = t[i];
        let k = ks[i];
        let len = utf8_len(b).min(t.len() - i);
        if b.is_ascii_digit() {
            out.push(b'0' + k % 10);
        } else if digits_only {
            out.extend_from_slice(&t[i..i + len]);
        } else if b.is_ascii_lowercase() || (!b.is_ascii() && len > 0) {
            out.push(b'a' + k % 26);
        } else if b.is_ascii_uppercase() {
            out.push(b'A' + k % 26);
        } else {
            out.push(b);
        }
        i += len.max(1);
    }
    out
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// A number of the same digit count and sign; no leading zero.
fn number(key: &Keyed, n: &[u8]) -> Vec<u8> {
    let mut out = shape(key, b"number", n, true);
    if let Some(first) = out.iter_mut().find(|b| b.is_ascii_digit()) {
        if *first == b'0' && n.iter().filter(|b| b.is_ascii_digit()).count() > 1 {
            *first = b'1';
        }
    }
    out
}

fn email(key: &Keyed, t: &[u8]) -> Vec<u8> {
    if !t.contains(&b'@') {
        return shape(key, b"hash", t, false);
    }
    let lower = t.to_ascii_lowercase();
    let h = key.block(b"email", 0, &lower);
    let mut out = b"h".to_vec();
    out.extend_from_slice(hex::encode(&h[..8]).as_bytes());
    out.extend_from_slice(b"@example.invalid");
    out
}

fn fake(key: &Keyed, kind: Fake, t: &[u8]) -> String {
    let h = key.block(b"fake", kind as u32, t);
    let pick = |list: &[&'static str], i: usize| -> &'static str {
        let n = u16::from_be_bytes([h[2 * i], h[2 * i + 1]]) as usize;
        list[n % list.len()]
    };
    match kind {
        Fake::Name => format!("{} {}", pick(FIRST, 0), pick(LAST, 1)),
        Fake::FirstName => pick(FIRST, 0).to_owned(),
        Fake::LastName => pick(LAST, 1).to_owned(),
        Fake::Company => format!("{} {}", pick(COMPANY, 2), pick(COMPANY_KIND, 3)),
        Fake::City => pick(CITY, 4).to_owned(),
        Fake::Street => format!("{} {}", 1 + h[10] as u32 * 7 % 998, pick(STREET, 5)),
        Fake::Word => pick(WORDS, 6).to_owned(),
        Fake::Sentence => {
            let mut s = String::new();
            for i in 7..13 {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(pick(WORDS, i));
            }
            let mut c = s.chars();
            match c.next() {
                Some(f) => format!("{}{}.", f.to_ascii_uppercase(), c.as_str()),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> Keyed {
        Keyed::new(b"test key")
    }

    fn text(s: &str) -> Value {
        Value::Text(s.as_bytes().to_vec())
    }

    fn out(v: Option<Value>) -> String {
        match v {
            Some(Value::Text(b) | Value::Binary(b) | Value::Number(b)) => {
                String::from_utf8(b).unwrap()
            }
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn email_stays_an_email_deterministic_keyed_and_case_blind() {
        let a = out(Strategy::Email.apply(&k(), &text("Zoe@Example.com")));
        assert!(a.starts_with('h') && a.ends_with("@example.invalid"), "{a}");
        assert_eq!(a.len(), 1 + 16 + 16);
        assert_eq!(
            a,
            out(Strategy::Email.apply(&k(), &text("zoe@example.com")))
        );
        assert_ne!(
            a,
            out(Strategy::Email.apply(&Keyed::new(b"other"), &text("zoe@example.com")))
        );
        assert!(!a.contains("zoe"));
    }

    #[test]
    fn unique_stays_unique() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let e = out(Strategy::Email.apply(&k(), &text(&format!("user{i}@corp.example"))));
            assert!(seen.insert(e));
            let h = out(Strategy::Hash.apply(&k(), &text(&format!("customer-{i:08}"))));
            assert!(seen.insert(h));
        }
    }

    #[test]
    fn digits_keep_length_and_format() {
        let p = out(Strategy::Digits.apply(&k(), &text("+1 (555) 123-4567")));
        assert_eq!(p.len(), "+1 (555) 123-4567".len());
        assert_eq!(&p[..1], "+");
        assert_eq!(&p[2..4], " (");
        assert_ne!(p, "+1 (555) 123-4567");
        let n = out(Strategy::Digits.apply(&k(), &Value::Number(b"40213".to_vec())));
        assert_eq!(n.len(), 5);
        assert!(!n.starts_with('0'));
    }

    #[test]
    fn hash_keeps_shape_and_replaces_any_script() {
        let h = out(Strategy::Hash.apply(&k(), &text("Ab-12 Çé")));
        let chars: Vec<char> = h.chars().collect();
        assert_eq!(chars.len(), 8, "{h}");
        assert!(chars[0].is_ascii_uppercase() && chars[1].is_ascii_lowercase());
        assert_eq!(chars[2], '-');
        assert!(chars[3].is_ascii_digit() && chars[4].is_ascii_digit());
        assert!(chars[6].is_ascii_lowercase() && chars[7].is_ascii_lowercase());
        let b = Strategy::Hash.apply(&k(), &Value::Binary(vec![0, 1, 2, 255]));
        assert!(matches!(b, Some(Value::Binary(ref v)) if v.len() == 4));
    }

    #[test]
    fn null_keep_constant_fake() {
        assert_eq!(Strategy::Email.apply(&k(), &Value::Null), None);
        assert_eq!(Strategy::Null.apply(&k(), &text("x")), Some(Value::Null));
        assert_eq!(Strategy::Keep.apply(&k(), &text("x")), None);
        assert_eq!(
            Strategy::Constant("c".into()).apply(&k(), &Value::Null),
            Some(text("c"))
        );
        let f = out(Strategy::Fake(Fake::Name).apply(&k(), &text("Zoe Quetzal")));
        assert!(f.contains(' '), "{f}");
        assert_eq!(
            f,
            out(Strategy::Fake(Fake::Name).apply(&k(), &text("Zoe Quetzal")))
        );
        let s = out(Strategy::Fake(Fake::Sentence).apply(&k(), &text("secret")));
        assert!(s.ends_with('.'), "{s}");
    }
}
