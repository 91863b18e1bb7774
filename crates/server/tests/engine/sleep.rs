//! `sleep_after` against the real engine: an idle instance's server stops
//! (only its forwarder runs), `sleeping` is reported, and the next client
//! connections wake it, including ones that arrive during the wake: they
//! connect slower, never fail.

use crate::common;

use std::time::Duration;

use common::{simple_dump, TestApp};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const PATH: &str = "/api/v1/templates/shop/instances/lazy";

async fn app() -> TestApp {
    let app = TestApp::spawn_with(|s| s.reap_interval = Duration::from_secs(1)).await;
    app.write_dump("shop.sql", simple_dump("t", 3).as_bytes());
    app.update_ok(&[]).await;
    app
}

fn opts(port: u16, password: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(password.to_owned()))
        .db_name(Some("default"))
        .prefer_socket(false)
}

/// Connects and reads the ids of `t` (the connection waits while the
/// server wakes).
async fn ids(port: u16, password: &str) -> Result<String, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts(port, password)).await?;
    let ids: Option<String> = conn
        .query_first("SELECT GROUP_CONCAT(id ORDER BY id) FROM t")
        .await?;
    conn.disconnect().await?;
    Ok(ids.unwrap_or_default())
}

async fn state(app: &TestApp) -> Value {
    app.get_json(PATH).await
}

async fn wait_sleeping(app: &TestApp) {
    for _ in 0..300 {
        if state(app).await["state"] == "sleeping" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the instance never went to sleep: {}", state(app).await);
}

async fn running_containers(app: &TestApp) -> Vec<String> {
    app.containers()
        .await
        .into_iter()
        .filter(|c| {
            c.labels.get("dolly.name").map(String::as_str) == Some("lazy")
                && c.state == dolly_engine::RunState::Running
        })
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn an_idle_instance_sleeps_and_connections_wake_it() {
    let app = app().await;
    let r = app
        .client
        .post(app.url(PATH))
        .json(&json!({"sleep_after": 1}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    assert_eq!(created["sleep_after"], 1, "{created}");
    let port = created["port"].as_u64().expect("port") as u16;
    let password = created["password"].as_str().expect("password").to_owned();
    assert_eq!(ids(port, &password).await.expect("query"), "1,2,3");

    wait_sleeping(&app).await;
    let running = running_containers(&app).await;
    assert_eq!(running.len(), 1, "only the forwarder runs: {running:?}");
    assert!(running[0].ends_with(".fwd"), "{running:?}");
    let listed = app.get_json("/api/v1/instances").await;
    let row = listed["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["name"] == "lazy")
        .cloned()
        .expect("listed");
    assert_eq!(row["state"], "sleeping", "{row}");
    // The web UI's list shows it too.
    let page = app.get("/ui/instances/rows").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains(r#"class="badge sleeping""#),
        "the UI lists it as sleeping: {html}"
    );

    // A connection wakes it: slower, no error. (While a client stays
    // connected, it does not sleep.)
    let mut held = mysql_async::Conn::new(opts(port, &password))
        .await
        .expect("woken");
    let n: Option<u64> = held
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("query");
    assert_eq!(n, Some(3));
    // The wake lets connections through as soon as the server accepts
    // them, then checks the instance's credentials through the forwarder
    // and saves the instance as running: a client may be in a few
    // milliseconds before the API says so.
    let mut awake = state(&app).await;
    for _ in 0..100 {
        if awake["state"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        awake = state(&app).await;
    }
    assert_eq!(awake["state"], "running", "{awake}");
    assert_eq!(awake["port"], port, "same port");
    held.disconnect().await.expect("disconnect");

    // Asleep again, several clients at once: the first wakes it, the
    // others arrive during the wake; each gets in.
    wait_sleeping(&app).await;
    let mut clients = Vec::new();
    for i in 0..4u64 {
        let pw = password.clone();
        clients.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(120 * i)).await;
            ids(port, &pw).await
        }));
    }
    for c in clients {
        assert_eq!(
            c.await.expect("task").expect("connect during the wake"),
            "1,2,3"
        );
    }
    // A wrong password is still refused once awake.
    assert!(mysql_async::Conn::new(opts(port, "wrong")).await.is_err());

    // Data written before a sleep is there after it.
    {
        let mut conn = mysql_async::Conn::new(opts(port, &password))
            .await
            .expect("connect");
        conn.query_drop("INSERT INTO t VALUES (7, 'kept')")
            .await
            .expect("insert");
        conn.disconnect().await.expect("disconnect");
    }
    wait_sleeping(&app).await;
    assert_eq!(ids(port, &password).await.expect("woken"), "1,2,3,7");

    // Deleting a sleeping instance leaves nothing running.
    wait_sleeping(&app).await;
    assert_eq!(app.delete(PATH).await.status(), 204);
    assert_eq!(running_containers(&app).await, Vec::<String>::new());
}
