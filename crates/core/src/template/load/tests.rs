//! The split load against a fake engine that records its clients.

use super::*;
use crate::dump::{Compression, Dump, DumpKind};
use dolly_engine::fake::{ExecRecord, FakeEngine};
use dolly_engine::{ContainerSpec, RestartPolicy};
use std::sync::atomic::AtomicU64;

/// What a client prints for the marks in its input.
fn print_marks(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    text.match_indices("SELECT 'dolly-mark ")
        .filter_map(|(at, _)| {
            let rest = &text[at + 8..];
            Some(format!("{0}\n{0}\n", &rest[..rest.find('\'')?]))
        })
        .collect()
}

/// A split load of `sql` into a fake engine whose clients take 30 ms
/// each, its sessions waiting for `after`: the load's thread, and what
/// the dump reader has read.
fn split_load(
    engine: &Arc<FakeEngine>,
    dir: &std::path::Path,
    sql: &str,
    after: After,
) -> (
    tokio::task::JoinHandle<Result<SplitStats, String>>,
    Arc<AtomicU64>,
) {
    split_load_taking(engine, dir, sql, after, Duration::from_millis(30), false)
}

/// [`split_load`] whose clients take `client` each.
fn split_load_taking(
    engine: &Arc<FakeEngine>,
    dir: &std::path::Path,
    sql: &str,
    after: After,
    client: Duration,
    rows_files: bool,
) -> (
    tokio::task::JoinHandle<Result<SplitStats, String>>,
    Arc<AtomicU64>,
) {
    let path = dir.join("shop.sql");
    std::fs::write(&path, sql).unwrap();
    engine.create_only(&ContainerSpec {
        name: "import".into(),
        image: "fake".into(),
        cmd: Vec::new(),
        user: None,
        binds: Vec::new(),
        publish: None,
        labels: Default::default(),
        memory_bytes: None,
        restart: RestartPolicy::No,
        network_of: None,
    });
    engine.record_execs(client, print_marks);
    let d = Dump {
        template: dolly_names::TemplateName::parse("shop").unwrap(),
        path: path.clone(),
        kind: DumpKind::Sql,
        files: vec![(path, Compression::None)],
        post_scripts: Vec::new(),
        mask_rules: None,
    };
    let read = Arc::new(AtomicU64::new(0));
    let reader = d.open(Arc::clone(&read));
    let clients = Clients {
        engine: Arc::clone(engine) as Arc<dyn Engine>,
        container: "import".into(),
        command: vec!["client".into()],
        user: "mysql".into(),
    };
    let mut loader = Loader::new(
        clients,
        2,
        Arc::new(AtomicU8::new(0)),
        Arc::new(AtomicBool::new(false)),
        after,
    );
    if rows_files {
        let rows = dir.join("rows");
        std::fs::create_dir_all(&rows).unwrap();
        loader.rows_files(rows, "/rows");
    }
    let opts = SplitOptions {
        jobs: 2,
        defer_indexes: true,
        default_db: "shop".into(),
        spread_after: u64::MAX,
        dump_bytes: None,
        load_data: rows_files,
        big_table: None,
    };
    let task = tokio::task::spawn_blocking(move || run(loader, reader, opts, None));
    (task, read)
}

fn holding<'a>(execs: &'a [ExecRecord], text: &str) -> Vec<&'a ExecRecord> {
    execs
        .iter()
        .filter(|e| String::from_utf8_lossy(&e.input).contains(text))
        .collect()
}

/// Two tables after a `CREATE DATABASE` that runs alone; `a`'s rows are
/// more than one read of the dump (1 MiB), so a splitter that waited for
/// the server would not have read them all.
fn shop() -> String {
    let mut d = String::from(
        "CREATE DATABASE shop;\nUSE shop;\n\
         CREATE TABLE a (id INT PRIMARY KEY, v INT, KEY v (v));\n",
    );
    for chunk in 0..40 {
        let rows: Vec<String> = (0..2000)
            .map(|k| {
                let id = chunk * 2000 + k + 1;
                format!("({id},{id})")
            })
            .collect();
        d.push_str(&format!("INSERT INTO a VALUES {};\n", rows.join(",")));
    }
    d.push_str(
        "CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY a_id (a_id), \
         CONSTRAINT fk FOREIGN KEY (a_id) REFERENCES a (id));\n\
         INSERT INTO b VALUES (1,1);\n",
    );
    assert!(d.len() > 1 << 20);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_splitter_reads_on_while_the_server_starts_and_sessions_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(FakeEngine::new());
    let (open, after) = start_gate();
    let dump = shop();
    let (task, read) = split_load(&engine, dir.path(), &dump, after);

    // The whole dump is read and cut while no client may start.
    let deadline = Instant::now() + Duration::from_secs(10);
    while read.load(Ordering::Relaxed) < dump.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the splitter waited for the server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        engine.execs().is_empty(),
        "a client ran before the server answered"
    );
    assert!(!task.is_finished());

    open.open(true);
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.tables, 2);
    let execs = engine.execs();
    // What runs alone first ended before any session after it began.
    let first = holding(&execs, "CREATE DATABASE");
    assert_eq!(first.len(), 1, "{execs:?}");
    for e in &execs {
        if e.began != first[0].began {
            assert!(
                e.began >= first[0].ended,
                "a session began before the serial one ended"
            );
        }
    }
    // Both tables' sessions ended before the foreign key was added.
    let (a, b) = (
        holding(&execs, "CREATE TABLE a"),
        holding(&execs, "CREATE TABLE b"),
    );
    let fk = holding(&execs, "ADD CONSTRAINT");
    assert_eq!((a.len(), b.len(), fk.len()), (1, 1, 1), "{execs:?}");
    assert!(a[0].ended <= fk[0].began && b[0].ended <= fk[0].began);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_load_and_no_client_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(FakeEngine::new());
    let (open, after) = start_gate();
    let (task, _) = split_load(&engine, dir.path(), &shop(), after);
    tokio::time::sleep(Duration::from_millis(50)).await;
    open.open(false);
    let err = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the load ends")
        .unwrap()
        .unwrap_err();
    assert!(err.contains("did not start"), "{err}");
    assert!(engine.execs().is_empty());
}

/// Small dumps of the shapes the engine tests import most, loaded over
/// and over with the server answering and the clients ending at varied
/// moments, on the one-thread runtime the engine tests use: every load
/// ends, and well.
#[tokio::test]
async fn small_loads_end_whatever_the_timing() {
    let dir = tempfile::tempdir().unwrap();
    let table = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB;\n\
                 INSERT INTO t VALUES (1,'a'),(2,'b');\n";
    let dumps = [
        format!("-- MariaDB dump 10.19\n{table}"),
        format!("CREATE DATABASE shop;\nUSE shop;\n{table}"),
        format!(
            "{table}CREATE TABLE u (id INT PRIMARY KEY, t_id INT, KEY t_id (t_id), \
             CONSTRAINT fk FOREIGN KEY (t_id) REFERENCES t (id));\nINSERT INTO u VALUES (1,1);\n"
        ),
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for i in 0..300 {
        let engine = Arc::new(FakeEngine::new());
        let (open, after) = start_gate();
        let server = Duration::from_micros(next(3000));
        let client = Duration::from_micros(next(2000));
        let dump = &dumps[(i / 2) % dumps.len()];
        let rows_files = i % 2 == 0;
        let (task, _) = split_load_taking(&engine, dir.path(), dump, after, client, rows_files);
        let opener = tokio::spawn(async move {
            tokio::time::sleep(server).await;
            open.open(true);
        });
        let stats = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("load {i} hung (server {server:?}, clients {client:?})"))
            .unwrap()
            .unwrap_or_else(|e| panic!("load {i} failed: {e}"));
        assert!(stats.tables >= 1);
        opener.await.unwrap();
    }
}

/// A one-table dump gives the second session nothing: no client starts
/// for it (an `exec` whose input ends at once is the one the engine can
/// lose the end of).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_given_nothing_starts_no_client() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(FakeEngine::new());
    // mariadb-dump's first line goes to every session that starts.
    let dump = "/*M!999999\\- enable the sandbox mode */ \n\
                CREATE TABLE t (id INT PRIMARY KEY, v INT);\nINSERT INTO t VALUES (1,1),(2,2);\n";
    let (task, _) = split_load(&engine, dir.path(), dump, After::now());
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.tables, 1);
    let execs = engine.execs();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(holding(&execs, "INSERT INTO t").len(), 1);
    assert_eq!(holding(&execs, "sandbox").len(), 1);
}
