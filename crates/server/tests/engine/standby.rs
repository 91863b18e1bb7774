//! Instances behind a forwarder, against the real engine: resets through
//! the standby (same port and password, exactly the reset source's data,
//! connections open at the reset closed), the standby handed out once and
//! removed with its instance, the forwarder refusing wrong passwords, and
//! a dollyd killed during a handover or beside open connections.

use crate::common;

use std::time::Duration;

use common::dollyd::Harness;
use common::{query, simple_dump, Creds, TestApp};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const BASE: &str = "/api/v1/templates/shop/instances";

async fn app() -> TestApp {
    let app = TestApp::spawn().await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app
}

async fn ids(c: &Creds) -> String {
    let rows = query(
        c.port,
        &c.password,
        &c.database,
        "SELECT id FROM t ORDER BY id",
    )
    .await;
    rows.iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

async fn sql(c: &Creds, statement: &str) {
    query(c.port, &c.password, &c.database, statement).await;
}

fn opts(port: u16, user: &str, password: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user.to_owned()))
        .pass(Some(password.to_owned()))
        .prefer_socket(false)
}

/// A connection kept open by a test.
async fn connect(c: &Creds) -> mysql_async::Conn {
    mysql_async::Conn::new(opts(c.port, "root", &c.password).db_name(Some(c.database.clone())))
        .await
        .expect("connect")
}

/// Polls `GET path` until its standby is ready (bounded: a standby is a
/// server start away).
async fn wait_standby(get: impl Fn() -> futures_util::future::BoxFuture<'static, Value>) -> Value {
    for _ in 0..600 {
        let body = get().await;
        if body["standby_status"]["ready"] == true {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the standby never became ready: {}", get().await);
}

fn getter(
    app: &TestApp,
    path: String,
) -> impl Fn() -> futures_util::future::BoxFuture<'static, Value> {
    let client = app.client.clone();
    let url = app.url(&path);
    move || {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            client
                .get(url)
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("json")
        })
    }
}

/// Containers of this data folder belonging to `shop/name`.
async fn containers_of(app: &TestApp, name: &str) -> Vec<(String, bool)> {
    app.containers()
        .await
        .into_iter()
        .filter(|c| c.labels.get("dolly.name").map(String::as_str) == Some(name))
        .map(|c| (c.name, c.state == dolly_engine::RunState::Running))
        .collect()
}

#[tokio::test]
async fn a_reset_through_the_standby_gives_the_source_data_on_the_same_port() {
    let app = app().await;
    let path = format!("{BASE}/dev");
    let (status, created) = app.post_json(&path, json!({"standby": true})).await;
    assert_eq!(status, 201, "{created}");
    let c = Creds::of(&created);
    assert_eq!(created["standby_status"]["ready"], false, "{created}");
    let ready = wait_standby(getter(&app, path.clone())).await;
    assert!(
        ready["standby_status"]["memory_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "the standby's memory is reported: {ready}"
    );
    sql(&c, "INSERT INTO t VALUES (10, 'mine')").await;
    assert_eq!(ids(&c).await, "1,2,3,10");
    let mut held = connect(&c).await;
    let _: Vec<u64> = held.query("SELECT 1").await.expect("held connection works");

    let (status, reset) = app.post_json(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(
        reset["standby"], true,
        "the reset went through the standby: {reset}"
    );
    assert_eq!(Creds::of(&reset), c, "same port, password and database");
    assert_eq!(ids(&c).await, "1,2,3", "exactly the template's data");
    assert!(
        held.query::<u64, _>("SELECT 1").await.is_err(),
        "a connection open at the reset is closed"
    );
    // A write after the reset lands on the instance's datadir.
    sql(&c, "INSERT INTO t VALUES (11, 'after')").await;

    // A second reset right away: through a new standby if one is ready
    // already, else by cloning; the data is the template's either way,
    // never the first standby's again.
    let (status, again) = app.post_json(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert!(again["standby"].is_boolean(), "{again}");
    assert_eq!(Creds::of(&again), c);
    assert_eq!(ids(&c).await, "1,2,3");

    // The standby follows the reset point: a snapshot.
    sql(&c, "INSERT INTO t VALUES (20, 'in s1')").await;
    let (status, snap) = app
        .post_json(&format!("{path}/snapshots/s1"), json!({}))
        .await;
    assert_eq!(status, 201, "{snap}");
    sql(&c, "INSERT INTO t VALUES (21, 'after s1')").await;
    let (status, to_s1) = app
        .post_json(&format!("{path}/reset"), json!({"to": "s1"}))
        .await;
    assert_eq!(status, 200, "{to_s1}");
    assert_eq!(to_s1["standby"], false, "no standby of s1 yet: {to_s1}");
    assert_eq!(ids(&c).await, "1,2,3,20");
    wait_standby(getter(&app, path.clone())).await;
    sql(&c, "INSERT INTO t VALUES (22, 'after the restore')").await;
    let (status, to_s1) = app
        .post_json(&format!("{path}/reset"), json!({"to": "s1"}))
        .await;
    assert_eq!(status, 200, "{to_s1}");
    assert_eq!(to_s1["standby"], true, "{to_s1}");
    assert_eq!(Creds::of(&to_s1), c);
    assert_eq!(ids(&c).await, "1,2,3,20", "exactly s1's data");
    // And back to the version: the s1 standby is not handed out for it.
    let (status, back) = app.post_json(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["standby"], false, "{back}");
    assert_eq!(ids(&c).await, "1,2,3");

    // Delete: nothing of the instance is left, standby included.
    wait_standby(getter(&app, path.clone())).await;
    assert!(
        containers_of(&app, "dev").await.len() >= 3,
        "server, forwarder and standby run"
    );
    let r = app.delete(&path).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        containers_of(&app, "dev").await,
        vec![],
        "no container left"
    );
    assert!(
        mysql_async::Conn::new(opts(c.port, "root", &c.password))
            .await
            .is_err(),
        "nothing answers on the port"
    );
}

#[tokio::test]
async fn the_forwarder_lets_in_only_the_instance_password() {
    let app = app().await;
    let path = format!("{BASE}/sec");
    let (status, created) = app.post_json(&path, json!({"standby": true})).await;
    assert_eq!(status, 201, "{created}");
    let c = Creds::of(&created);
    wait_standby(getter(&app, path.clone())).await;
    let (status, reset) = app.post_json(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(reset["standby"], true);
    // Before and after a handover alike: the relays connect over TCP from
    // 127.0.0.1 of the forwarder's namespace, which must not pass for a
    // trusted local client.
    for round in 0..2 {
        for (user, password) in [
            ("root", "wrong"),
            ("root", ""),
            ("mysql", ""),
            ("nobody", ""),
            ("mariadb.sys", ""),
            ("", ""),
        ] {
            let refused = mysql_async::Conn::new(opts(c.port, user, password)).await;
            assert!(
                refused.is_err(),
                "{user:?} with password {password:?} got in through the forwarder"
            );
        }
        let mut ok = mysql_async::Conn::new(opts(c.port, "root", &c.password))
            .await
            .expect("the instance's password works");
        let user: String = ok
            .query_first("SELECT CURRENT_USER()")
            .await
            .expect("query")
            .expect("a row");
        assert_eq!(user, "root@%", "the client is matched as any TCP client");
        if round == 0 {
            wait_standby(getter(&app, path.clone())).await;
            let (status, reset) = app.post_json(&format!("{path}/reset"), json!({})).await;
            assert_eq!(status, 200, "{reset}");
        }
    }
}

#[tokio::test]
async fn stop_and_start_keep_the_port_and_the_standby_comes_back() {
    let app = app().await;
    let path = format!("{BASE}/ss");
    let (status, created) = app.post_json(&path, json!({"standby": true})).await;
    assert_eq!(status, 201, "{created}");
    let c = Creds::of(&created);
    wait_standby(getter(&app, path.clone())).await;
    let (status, stopped) = app.post_json(&format!("{path}/stop"), json!({})).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(stopped["standby_status"]["ready"], false, "{stopped}");
    let running: Vec<_> = containers_of(&app, "ss")
        .await
        .into_iter()
        .filter(|(_, up)| *up)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(running.len(), 1, "only the forwarder runs: {running:?}");
    let (status, started) = app.post_json(&format!("{path}/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(Creds::of(&started), c);
    assert_eq!(ids(&c).await, "1,2,3");
    wait_standby(getter(&app, path.clone())).await;
    let (_, reset) = app.post_json(&format!("{path}/reset"), json!({})).await;
    assert_eq!(reset["standby"], true, "{reset}");
    assert_eq!(ids(&c).await, "1,2,3");
}

/// The ids `i1` holds after the test's write.
const WRITTEN: &str = "1,2,3,100";

/// Kills dollyd at `point` of a handover of `i1`, starts it again, and
/// checks `i1` answers on its port with its password and the template's
/// data (a handover is always finished), with one server and one
/// forwarder, and takes the next reset.
async fn handover_crash(point: &str) {
    let mut h = Harness::new().await;
    let d = h.start(Some(point), &[]).await;
    let path = format!("{BASE}/i1");
    let created = d.post_expect(&path, json!({"standby": true}), 201).await;
    let c = Creds::of(&created);
    sql(&c, "INSERT INTO t VALUES (100, 'mine')").await;
    assert_eq!(ids(&c).await, WRITTEN);
    for _ in 0..600 {
        if d.get_json(&path).await["standby_status"]["ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let request = d
        .client
        .post(d.url(&format!("{path}/reset")))
        .json(&json!({}));
    d.crash_with(request, "POST reset").await;

    let d = h.start(None, &[]).await;
    let body = d.get_json(&path).await;
    assert_eq!(body["state"], "running", "{body}");
    assert_eq!(Creds::of(&body), c, "same port, password and database");
    assert_eq!(ids(&c).await, "1,2,3", "the handover was finished");
    let q = d.get_json("/api/v1/quarantine").await;
    assert_eq!(q["quarantined"], json!([]), "nothing set aside: {q}");
    // The next reset works, through a standby prepared again.
    for _ in 0..600 {
        if d.get_json(&path).await["standby_status"]["ready"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sql(&c, "INSERT INTO t VALUES (100, 'again')").await;
    let r = d
        .post_expect(&format!("{path}/reset"), json!({}), 200)
        .await;
    assert_eq!(r["standby"], true, "{r}");
    assert_eq!(ids(&c).await, "1,2,3");
    // Exactly one server and one forwarder (and at most a new standby)
    // once the old server a handover leaves is gone.
    let d2 = d.delete(&path).await;
    assert_eq!(d2.status(), 204);
    assert_eq!(h.containers_of("i1").await, Vec::<String>::new());
    h.assert_tmp_clean();
}

#[tokio::test]
async fn dollyd_killed_after_pointing_at_the_standby_finishes_the_handover() {
    handover_crash("handover.target").await;
}

#[tokio::test]
async fn dollyd_killed_after_killing_the_old_server_finishes_the_handover() {
    handover_crash("handover.killed").await;
}

#[tokio::test]
async fn dollyd_killed_between_the_datadir_renames_finishes_the_handover() {
    handover_crash("handover.half_swapped").await;
}

#[tokio::test]
async fn a_dollyd_crash_drops_no_open_connection() {
    let mut h = Harness::new().await;
    let d = h.start(None, &[]).await;
    let path = format!("{BASE}/i1");
    let created = d.post_expect(&path, json!({"standby": true}), 201).await;
    let c = Creds::of(&created);
    let mut held = connect(&c).await;
    held.query_drop("INSERT INTO t VALUES (100, 'held')")
        .await
        .expect("insert");
    d.kill9();
    let d = h.start(None, &[]).await;
    let n: u64 = held
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("the connection survived dollyd's crash and restart")
        .expect("a row");
    assert_eq!(n, 4);
    let body = d.get_json(&path).await;
    assert_eq!(Creds::of(&body), c);
    assert_eq!(ids(&c).await, WRITTEN);
}
