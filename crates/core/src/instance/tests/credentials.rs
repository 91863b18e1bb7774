//! An instance reported running answers with its own credentials, whatever
//! a crash interrupted (issue 25): the account is set up again at every
//! start, and a server that does not answer is `broken`, never `running`.

use std::fs;

use crate::instance::InstanceState;

use crate::dbserver::init_sql;
use crate::instance::testing::{n, t, Harness};
use crate::instance::{InstanceError, ResetTarget, Source};

async fn restart(h: &Harness) -> crate::instance::ReconcileReport {
    let report = h.manager.reconcile().await.unwrap();
    h.manager.heal(true).await.unwrap();
    report
}

fn assert_answers(h: &Harness, i: &crate::instance::Instance) {
    assert_eq!(i.state, InstanceState::Running, "{i:?}");
    assert!(
        h.engine.accepts(i.port.unwrap(), &i.meta.password),
        "the server accepts the instance's own credentials"
    );
}

fn init_file_holds_no_password(h: &Harness) {
    let init = h.manager.context().store.init_file(&t(), &n("i1"));
    let text = fs::read_to_string(init).unwrap();
    assert!(!text.contains("IDENTIFIED BY"), "init file: {text}");
}

/// The state `server.running` leaves after a reset: the committed fresh
/// clone (no account yet), its server started with the init file holding
/// the password but not yet read, dollyd killed.
#[tokio::test]
async fn a_start_killed_before_its_server_read_the_init_file_is_started_again() {
    let h = Harness::new();
    let m = &h.manager;
    let i = m
        .create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let store = m.context().store.blocking();
    fs::write(store.init_file(&t(), &n("i1")), init_sql(&i.meta.password)).unwrap();
    h.engine
        .forget_accounts(&store.instance_data(&t(), &n("i1")));
    assert!(!h.engine.accepts(i.port.unwrap(), &i.meta.password));

    let report = restart(&h).await;
    assert_eq!(report.unanswered, 1, "{report:?}");
    let after = m.get(&t(), &n("i1")).await.unwrap();
    assert_answers(&h, &after);
    assert_eq!(after.port, i.port, "same port");
    assert_eq!(after.meta.password, i.meta.password, "same password");
    init_file_holds_no_password(&h);
}

/// Whatever the init file says, a running server that refuses the
/// instance's credentials is started again at dollyd's start.
#[tokio::test]
async fn a_running_server_refusing_the_credentials_is_started_again() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let store = m.context().store.blocking();
    h.engine
        .forget_accounts(&store.instance_data(&t(), &n("i1")));
    let report = restart(&h).await;
    assert_eq!(report.unanswered, 1, "{report:?}");
    assert_answers(&h, &m.get(&t(), &n("i1")).await.unwrap());
    init_file_holds_no_password(&h);
}

/// A crash after the server answered but before the init file was emptied:
/// the server keeps running (no restart) and the password leaves the file.
#[tokio::test]
async fn a_start_killed_after_its_server_answered_keeps_it_and_empties_the_init_file() {
    let h = Harness::new();
    let m = &h.manager;
    let i = m
        .create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    let store = m.context().store.blocking();
    fs::write(store.init_file(&t(), &n("i1")), init_sql(&i.meta.password)).unwrap();
    let report = restart(&h).await;
    assert_eq!(report.unanswered, 0, "{report:?}");
    let after = m.get(&t(), &n("i1")).await.unwrap();
    assert_answers(&h, &after);
    assert_eq!(after.status, i.status);
    init_file_holds_no_password(&h);
}

/// A reset whose server never answers leaves the instance `broken` with
/// the reason and no container (never `running`); the password is not
/// left in the init file; a reset then repairs it.
#[tokio::test]
async fn a_server_that_does_not_answer_is_broken_and_a_reset_repairs_it() {
    let h = Harness::new();
    let m = &h.manager;
    let i = m
        .create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    h.engine.set_broken(true);
    let err = m
        .reset(&t(), &n("i1"), ResetTarget::Original)
        .await
        .unwrap_err();
    assert!(matches!(err, InstanceError::NotReady { .. }), "{err}");
    let broken = m.get(&t(), &n("i1")).await.unwrap();
    assert_eq!(broken.state, InstanceState::Broken);
    let problem = broken.meta.broken.clone().unwrap();
    assert!(problem.contains("exited before it answered"), "{problem}");
    assert!(
        !h.engine.names().contains(&h.container("i1")),
        "no container left"
    );
    init_file_holds_no_password(&h);
    // The periodic heal leaves it (each try costs ready_timeout).
    m.heal(false).await.unwrap();
    assert_eq!(
        m.get(&t(), &n("i1")).await.unwrap().state,
        InstanceState::Broken
    );
    h.engine.set_broken(false);
    let repaired = m
        .reset(&t(), &n("i1"), ResetTarget::Original)
        .await
        .unwrap();
    assert_answers(&h, &repaired);
    assert_eq!(repaired.meta.broken, None);
    assert_eq!(repaired.meta.password, i.meta.password);
    assert_eq!(repaired.port, i.port);
}

/// dollyd's start tries a broken instance again.
#[tokio::test]
async fn a_broken_instance_is_tried_again_at_start() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    h.engine.set_broken(true);
    m.reset(&t(), &n("i1"), ResetTarget::Original)
        .await
        .unwrap_err();
    h.engine.set_broken(false);
    restart(&h).await;
    let i = m.get(&t(), &n("i1")).await.unwrap();
    assert_answers(&h, &i);
    assert_eq!(i.meta.broken, None);
}

/// A start of a stopped instance whose server dies is `broken`; dollyd's
/// start tries it again (the user asked for it to run).
#[tokio::test]
async fn a_stopped_instance_whose_start_failed_is_started_at_dollyds_start() {
    let h = Harness::new();
    let m = &h.manager;
    m.create(&t(), &n("i1"), None, Source::Template)
        .await
        .unwrap();
    m.stop(&t(), &n("i1")).await.unwrap();
    h.engine.set_broken(true);
    m.start(&t(), &n("i1")).await.unwrap_err();
    assert_eq!(
        m.get(&t(), &n("i1")).await.unwrap().state,
        InstanceState::Broken
    );
    h.engine.set_broken(false);
    restart(&h).await;
    let i = m.get(&t(), &n("i1")).await.unwrap();
    assert_answers(&h, &i);
    assert!(!i.meta.stopped);
}
