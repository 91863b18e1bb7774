//! Synthetic dumps in mysqldump's shape, deterministic for a given seed.
//!
//! Four tables (`customers`, `order_items`, `orders`, `products`, in
//! mysqldump's alphabetical order), secondary indexes, a unique key and two
//! foreign keys, multi-row `INSERT`s of about 1 MB each, mysqldump's header
//! and trailer (`-- Dump completed on ...`). Row counts are fixed before
//! writing, so every foreign key value points at an existing row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;

/// The database the dumps create (`CREATE DATABASE` + `USE`, as
/// `mysqldump --databases` writes).
pub const DATABASE: &str = "benchdb";

/// Target size of one `INSERT` statement.
const INSERT_BYTES: usize = 1 << 20;

/// splitmix64: small, fast, deterministic.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ana",
    "Björn",
    "Chloé",
    "Dmitri",
    "Eve",
    "François",
    "Grace",
    "Hiro",
    "Ines",
    "Jürgen",
    "Kai",
    "Lena",
    "Mateo",
    "Nora",
    "Oskar",
    "Paula",
    "Quinn",
    "Rosa",
    "Søren",
    "Tomás",
];
const LAST: &[&str] = &[
    "O'Brien",
    "García",
    "Müller",
    "Nakamura",
    "Smith",
    "Łukasz",
    "Dupont",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Andersson",
    "Silva",
];
const COUNTRIES: &[&str] = &["ES", "FR", "DE", "IT", "PT", "GB", "US", "JP", "BR", "PL"];
const STATUSES: &[&str] = &[
    "new",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "\\\"q\\\"",
    "it\\'s",
    "naïve",
    "café",
    "100%",
    "back\\\\slash",
];

fn words(rng: &mut Rng, n: u64, out: &mut String) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
}

fn datetime(rng: &mut Rng) -> String {
    // 2020-01-01 .. about 2025-06, second precision.
    let secs = 1_577_836_800 + rng.below(170_000_000) as i64;
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "2020-01-01 00:00:00".to_owned())
}

fn money(rng: &mut Rng, max_cents: u64) -> String {
    let c = rng.below(max_cents) + 1;
    format!("{}.{:02}", c / 100, c % 100)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Customers,
    OrderItems,
    Orders,
    Products,
}

/// How the dump's bytes are shared among the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// customers 10 %, order_items 35 %, orders 40 %, products 15 %.
    Shop,
    /// One big table (issue 22 item 5): orders 74 %, order_items 12 %,
    /// customers and products 7 % each.
    BigTable,
}

impl Table {
    /// mysqldump's order: alphabetical.
    const ALL: [Table; 4] = [
        Table::Customers,
        Table::OrderItems,
        Table::Orders,
        Table::Products,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::OrderItems => "order_items",
            Table::Orders => "orders",
            Table::Products => "products",
        }
    }

    /// Share of the dump's bytes.
    fn share(self, shape: Shape) -> f64 {
        match (shape, self) {
            (Shape::Shop, Table::Customers) => 0.10,
            (Shape::Shop, Table::OrderItems) => 0.35,
            (Shape::Shop, Table::Orders) => 0.40,
            (Shape::Shop, Table::Products) => 0.15,
            (Shape::BigTable, Table::Customers) => 0.07,
            (Shape::BigTable, Table::OrderItems) => 0.12,
            (Shape::BigTable, Table::Orders) => 0.74,
            (Shape::BigTable, Table::Products) => 0.07,
        }
    }

    fn seed(self, seed: u64) -> u64 {
        seed ^ (0x1000 * (self as u64 + 1))
    }

    fn create(self, rows: u64) -> String {
        let body = match self {
            Table::Customers => {
                "  `id` int(11) NOT NULL AUTO_INCREMENT,\n\
                 \x20 `email` varchar(120) NOT NULL,\n\
                 \x20 `name` varchar(80) NOT NULL,\n\
                 \x20 `country` char(2) NOT NULL,\n\
                 \x20 `created_at` datetime NOT NULL,\n\
                 \x20 `notes` text DEFAULT NULL,\n\
                 \x20 PRIMARY KEY (`id`),\n\
                 \x20 UNIQUE KEY `uq_email` (`email`),\n\
                 \x20 KEY `idx_country` (`country`),\n\
                 \x20 KEY `idx_created` (`created_at`)"
            }
            Table::OrderItems => {
                "  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n\
                 \x20 `order_id` bigint(20) NOT NULL,\n\
                 \x20 `product_id` int(11) NOT NULL,\n\
                 \x20 `quantity` int(11) NOT NULL,\n\
                 \x20 `unit_price` decimal(10,2) NOT NULL,\n\
                 \x20 `comment` varchar(255) DEFAULT NULL,\n\
                 \x20 PRIMARY KEY (`id`),\n\
                 \x20 KEY `idx_order` (`order_id`),\n\
                 \x20 KEY `idx_product` (`product_id`),\n\
                 \x20 CONSTRAINT `fk_items_order` FOREIGN KEY (`order_id`) REFERENCES `orders` (`id`)"
            }
            Table::Orders => {
                "  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n\
                 \x20 `customer_id` int(11) NOT NULL,\n\
                 \x20 `status` varchar(16) NOT NULL,\n\
                 \x20 `total` decimal(12,2) NOT NULL,\n\
                 \x20 `created_at` datetime NOT NULL,\n\
                 \x20 `shipping_address` varchar(255) NOT NULL,\n\
                 \x20 `note` text DEFAULT NULL,\n\
                 \x20 PRIMARY KEY (`id`),\n\
                 \x20 KEY `idx_customer` (`customer_id`),\n\
                 \x20 KEY `idx_status_created` (`status`,`created_at`),\n\
                 \x20 CONSTRAINT `fk_orders_customer` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`)"
            }
            Table::Products => {
                "  `id` int(11) NOT NULL AUTO_INCREMENT,\n\
                 \x20 `sku` varchar(32) NOT NULL,\n\
                 \x20 `title` varchar(200) NOT NULL,\n\
                 \x20 `price` decimal(10,2) NOT NULL,\n\
                 \x20 `stock` int(11) NOT NULL DEFAULT 0,\n\
                 \x20 `description` text DEFAULT NULL,\n\
                 \x20 PRIMARY KEY (`id`),\n\
                 \x20 UNIQUE KEY `uq_sku` (`sku`),\n\
                 \x20 KEY `idx_price` (`price`)"
            }
        };
        format!(
            "CREATE TABLE `{}` (\n{body}\n) ENGINE=InnoDB AUTO_INCREMENT={} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n",
            self.name(),
            rows + 1
        )
    }

    /// One row's `(...)` text. `counts` holds every table's row count.
    fn row(self, id: u64, rng: &mut Rng, counts: &Counts, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Table::Customers => {
                let first = rng.pick(FIRST);
                let last = rng.pick(LAST).replace('\'', "\\'");
                let _ = write!(
                    out,
                    "({id},'user{id}@example.com','{first} {last}','{}','{}',",
                    rng.pick(COUNTRIES),
                    datetime(rng)
                );
                if rng.below(3) == 0 {
                    out.push_str("NULL)");
                } else {
                    out.push('\'');
                    let n = 4 + rng.below(20);
                    words(rng, n, out);
                    out.push_str("')");
                }
            }
            Table::OrderItems => {
                let _ = write!(
                    out,
                    "({id},{},{},{},{},",
                    rng.below(counts.orders) + 1,
                    rng.below(counts.products) + 1,
                    rng.below(9) + 1,
                    money(rng, 50_000)
                );
                if rng.below(2) == 0 {
                    out.push_str("NULL)");
                } else {
                    out.push('\'');
                    let n = 2 + rng.below(12);
                    words(rng, n, out);
                    out.push_str("')");
                }
            }
            Table::Orders => {
                let _ = write!(
                    out,
                    "({id},{},'{}',{},'{}','{} Calle ",
                    rng.below(counts.customers) + 1,
                    rng.pick(STATUSES),
                    money(rng, 500_000),
                    datetime(rng),
                    rng.below(999) + 1,
                );
                let n = 2 + rng.below(4);
                words(rng, n, out);
                let _ = write!(out, ", {}',", rng.pick(COUNTRIES));
                if rng.below(4) == 0 {
                    out.push_str("NULL)");
                } else {
                    out.push('\'');
                    let n = 5 + rng.below(30);
                    words(rng, n, out);
                    out.push_str("')");
                }
            }
            Table::Products => {
                let _ = write!(out, "({id},'SKU-{id:08}','");
                let n = 3 + rng.below(6);
                words(rng, n, out);
                let _ = write!(out, "',{},{},'", money(rng, 100_000), rng.below(1000));
                let n = 20 + rng.below(60);
                words(rng, n, out);
                out.push_str("')");
            }
        }
    }
}

/// Rows per table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub customers: u64,
    pub order_items: u64,
    pub orders: u64,
    pub products: u64,
}

impl Counts {
    fn get(&self, t: Table) -> u64 {
        match t {
            Table::Customers => self.customers,
            Table::OrderItems => self.order_items,
            Table::Orders => self.orders,
            Table::Products => self.products,
        }
    }

    fn set(&mut self, t: Table, n: u64) {
        match t {
            Table::Customers => self.customers = n,
            Table::OrderItems => self.order_items = n,
            Table::Orders => self.orders = n,
            Table::Products => self.products = n,
        }
    }

    /// `(table, rows)` in dump order.
    pub fn tables(&self) -> Vec<(String, u64)> {
        Table::ALL
            .iter()
            .map(|t| (t.name().to_owned(), self.get(*t)))
            .collect()
    }
}

/// Row counts for a dump of about `bytes`, from the average row size of
/// a sample (its own RNG stream, so the dump's content is unaffected).
pub fn plan(bytes: u64, seed: u64, shape: Shape) -> Counts {
    let dummy = Counts {
        customers: 1000,
        order_items: 1000,
        orders: 1000,
        products: 1000,
    };
    let mut counts = Counts::default();
    for t in Table::ALL {
        let mut rng = Rng::new(seed ^ 0xABCD_EF01 ^ t as u64);
        let mut s = String::new();
        let sample = 2000;
        for i in 0..sample {
            t.row(1_000_000 + i, &mut rng, &dummy, &mut s);
            s.push(',');
        }
        let avg = s.len() as f64 / sample as f64;
        let rows = ((bytes as f64 * t.share(shape)) / avg).max(10.0) as u64;
        counts.set(t, rows);
    }
    counts
}

const HEADER: &str = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: benchdb
-- ------------------------------------------------------
-- Server version\t10.11.6-MariaDB-0+deb12u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

--
-- Current Database: `benchdb`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `benchdb` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci */;

USE `benchdb`;
";

const TRAILER: &str = "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-01-01  3:00:00
";

/// Writes a dump of about `bytes` to `path` (through `path.partial` and a
/// rename, so a file at `path` is always complete). Returns the row counts.
pub fn write_dump(path: &Path, bytes: u64, seed: u64, shape: Shape) -> anyhow::Result<Counts> {
    let counts = plan(bytes, seed, shape);
    let partial = path.with_extension("partial");
    let file = File::create(&partial).with_context(|| format!("create {}", partial.display()))?;
    let mut w = BufWriter::with_capacity(4 << 20, file);
    w.write_all(HEADER.as_bytes())?;
    let mut stmt = String::with_capacity(INSERT_BYTES + 64 * 1024);
    for t in Table::ALL {
        let name = t.name();
        write!(
            w,
            "\n--\n-- Table structure for table `{name}`\n--\n\n\
             DROP TABLE IF EXISTS `{name}`;\n\
             /*!40101 SET @saved_cs_client     = @@character_set_client */;\n\
             /*!40101 SET character_set_client = utf8 */;\n{}\
             /*!40101 SET character_set_client = @saved_cs_client */;\n\n\
             --\n-- Dumping data for table `{name}`\n--\n\n\
             LOCK TABLES `{name}` WRITE;\n\
             /*!40000 ALTER TABLE `{name}` DISABLE KEYS */;\n",
            t.create(counts.get(t))
        )?;
        let mut rng = Rng::new(t.seed(seed));
        let rows = counts.get(t);
        let mut id = 1;
        while id <= rows {
            stmt.clear();
            stmt.push_str("INSERT INTO `");
            stmt.push_str(name);
            stmt.push_str("` VALUES ");
            let mut first = true;
            while id <= rows && stmt.len() < INSERT_BYTES {
                if !first {
                    stmt.push(',');
                }
                first = false;
                t.row(id, &mut rng, &counts, &mut stmt);
                id += 1;
            }
            stmt.push_str(";\n");
            w.write_all(stmt.as_bytes())?;
        }
        write!(
            w,
            "/*!40000 ALTER TABLE `{name}` ENABLE KEYS */;\nUNLOCK TABLES;\n"
        )?;
    }
    w.write_all(b"\n")?;
    w.write_all(TRAILER.as_bytes())?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&partial, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_are_deterministic_and_shaped_like_mysqldump() {
        let dir = std::env::temp_dir().join(format!("dolly-bench-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (a, b) = (dir.join("a.sql"), dir.join("b.sql"));
        let ca = write_dump(&a, 300_000, 7, Shape::Shop).expect("dump a");
        let cb = write_dump(&b, 300_000, 7, Shape::Shop).expect("dump b");
        let (ta, tb) = (
            std::fs::read_to_string(&a).expect("read a"),
            std::fs::read_to_string(&b).expect("read b"),
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ta, tb);
        assert_eq!(ca.tables(), cb.tables());
        assert!(ta
            .trim_end()
            .ends_with("-- Dump completed on 2026-01-01  3:00:00"));
        assert!(ta.contains("FOREIGN KEY"));
        assert!(ta.contains("INSERT INTO `orders` VALUES (1,"));
        let size = ta.len() as f64;
        assert!((200_000.0..450_000.0).contains(&size), "size {size}");
    }
}
