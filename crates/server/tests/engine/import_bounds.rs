//! Nothing hangs, nothing stays: a FIFO where a dump should be is refused
//! (named) and the other dumps import; `import_timeout` bounds an import
//! from its first read, the hash included; what a killed update left (its
//! import container, its datadir in `tmp/`) goes at the next update,
//! unless a live update holds the template.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{simple_dump, TestApp};
use dolly_core::context::Context;
use dolly_core::dbserver::ServerContainer;
use dolly_core::store::Scratch;
use dolly_types::TemplateName;

fn tpl(name: &str) -> TemplateName {
    TemplateName::parse(name).unwrap()
}

fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_is_refused_and_the_other_dumps_import() {
    let app = TestApp::new_stopped(|_| {}).await;
    mkfifo(&app.dumps_dir().join("stuck.sql"));
    std::fs::create_dir_all(app.dumps_dir().join("folder")).unwrap();
    mkfifo(&app.dumps_dir().join("folder/01-schema.sql"));
    app.write_dump("zshop.sql", simple_dump("t", 3).as_bytes());
    let outcomes = tokio::time::timeout(Duration::from_secs(300), app.update(&[]))
        .await
        .expect("the update ends");
    let by: BTreeMap<&str, &_> = outcomes.iter().map(|o| (o.template.as_str(), o)).collect();
    for (t, file) in [("stuck", "stuck.sql"), ("folder", "folder/01-schema.sql")] {
        let e = by[t].result.as_ref().unwrap_err().to_string();
        assert!(
            e.contains(file) && e.contains("is a FIFO") && e.contains("refused"),
            "{t}: {e}"
        );
    }
    assert!(by["zshop"].result.is_ok(), "{:?}", by["zshop"].result);
    // The refusal is the template's last import, for the API.
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let last = ctx.store().last_import(&tpl("stuck")).unwrap().unwrap();
    assert!(!last.ok);
    assert!(last.message.contains("is a FIFO"), "{}", last.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_timeout_counts_from_the_first_read() {
    // A dump whose hash alone takes longer than the timeout.
    let app = TestApp::new_stopped(|s| s.import_timeout = Duration::from_millis(200)).await;
    let big = app.dumps_dir().join("big.sql");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(2 << 30).unwrap(); // sparse: 2 GiB of zeros to hash
    let started = Instant::now();
    let outcomes = app.update(&["big"]).await;
    let e = outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(e.contains("import_timeout"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(app.containers().await.is_empty());
    let tmp = app.tmp_entries("");
    assert!(tmp.is_empty(), "{tmp:?}");
    // The hash was given up too: this test ends at once.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_update_left_goes_at_the_next_update() {
    let app = TestApp::new_stopped(|_| {}).await;
    app.write_dump("other.sql", simple_dump("t", 1).as_bytes());
    let ctx = Context::new(app.settings.clone(), Arc::clone(&app.engine)).unwrap();
    let image = ctx.image().await.unwrap().clone();
    // What `dollyd update` killed while importing `shop` and `held` leaves:
    // a running import container and its datadir in tmp/.
    let mut left = Vec::new();
    for t in ["shop", "held"] {
        let v = ctx.store().new_version(&tpl(t));
        let work = ctx.store().scratch(&Scratch::Import(tpl(t), v));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("ibdata1"), vec![0u8; 1 << 20]).unwrap();
        let mut labels = ctx.labels("import");
        labels.insert("dolly.template".into(), t.into());
        let name = format!("{}{t}._import", app.settings.container_prefix);
        let spec = image.server_spec(
            ServerContainer {
                name: name.clone(),
                image: app.settings.image.clone(),
                datadir: ctx.store().for_engine(&work),
                labels,
            },
            vec!["sleep".into(), "600".into()],
            None,
            None,
        );
        app.engine.run(&spec).await.unwrap();
        left.push((name, work));
    }
    // A live update holds `held`.
    let lock = ctx.store().lock_import(&tpl("held")).unwrap();
    app.update_ok(&["other"]).await;
    let names: Vec<String> = app.containers().await.into_iter().map(|c| c.name).collect();
    assert!(!names.contains(&left[0].0), "{names:?}");
    assert!(!left[0].1.exists());
    // The live one is left alone.
    assert!(names.contains(&left[1].0), "{names:?}");
    assert!(left[1].1.exists());
    drop(lock);
    app.update_ok(&["other"]).await;
    let names: Vec<String> = app.containers().await.into_iter().map(|c| c.name).collect();
    assert!(!names.contains(&left[1].0), "{names:?}");
    assert!(!left[1].1.exists());
}
