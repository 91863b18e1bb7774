//! A look at a dump before its load: its size, and its biggest table
//! (which session its rows get, [`super::split::SplitOptions::big_table`]).

use std::io::BufRead;
use std::path::PathBuf;

use super::Compression;

/// The size of a dump whose files are all uncompressed (what the splitter
/// reads); `None` for a compressed one. Blocking.
pub fn plain_bytes(files: &[(PathBuf, Compression)]) -> Option<u64> {
    let mut total = 0;
    for (path, compression) in files {
        if *compression != Compression::None {
            return None;
        }
        total += std::fs::metadata(path).ok()?.len();
    }
    Some(total)
}

/// The table whose `INSERT` lines hold the most bytes of a dump whose
/// files are all uncompressed, with those bytes: a look at every line's
/// start (the files are in the page cache after the fingerprint's hash).
/// `None` for a compressed dump or one that cannot be read. Blocking.
pub fn biggest_table(files: &[(PathBuf, Compression)]) -> Option<(String, u64)> {
    const PREFIX: &[u8] = b"INSERT INTO `";
    let mut sizes: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    let mut line = Vec::new();
    for (path, compression) in files {
        if *compression != Compression::None {
            return None;
        }
        // Line by line: a dump is not held in memory.
        let mut file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).ok()?);
        loop {
            line.clear();
            if file.read_until(b'\n', &mut line).ok()? == 0 {
                break;
            }
            let Some(rest) = line.strip_prefix(PREFIX) else {
                continue;
            };
            let Some(end) = memchr::memchr(b'`', rest) else {
                continue;
            };
            *sizes.entry(rest[..end].to_vec()).or_default() += line.len() as u64;
        }
    }
    sizes
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(t, n)| (String::from_utf8_lossy(&t).into_owned(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_biggest_table_by_its_insert_lines() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("01.sql");
        let b = dir.path().join("02.sql");
        std::fs::write(
            &a,
            "CREATE TABLE `small` (id int);\nINSERT INTO `small` VALUES (1);\nINSERT INTO `big` VALUES (1),(2),(3);\n",
        )
        .unwrap();
        std::fs::write(&b, "INSERT INTO `big` VALUES (4),(5),(6);\n").unwrap();
        let files = vec![(a.clone(), Compression::None), (b, Compression::None)];
        assert_eq!(biggest_table(&files), Some(("big".to_owned(), 76)));
        assert_eq!(biggest_table(&[(a, Compression::Gzip)]), None);
    }
}
