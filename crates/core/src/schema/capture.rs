//! Reading a schema from a running server over its protocol.

use mysql_async::prelude::Queryable;
use mysql_async::Row;

use super::sql::ident;
use super::{parse, strip_definer, Database, Schema, Trigger};

/// Reads every user database's schema from the server `opts` reaches.
pub async fn capture(opts: mysql_async::OptsBuilder) -> Result<Schema, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    let result = read(&mut conn).await;
    let _ = conn.disconnect().await;
    result
}

async fn read(conn: &mut mysql_async::Conn) -> Result<Schema, mysql_async::Error> {
    let dbs: Vec<String> = conn
        .query(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys') \
             ORDER BY SCHEMA_NAME",
        )
        .await?;
    let mut schema = Schema::default();
    for db in dbs {
        let q = ident(&db);
        let mut d = Database::default();
        let objects: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (&db,),
            )
            .await?;
        for (name, kind) in objects {
            let qn = format!("{q}.{}", ident(&name));
            if kind == "VIEW" {
                let create = text(conn, &format!("SHOW CREATE VIEW {qn}"), 1).await?;
                d.views.insert(name, strip_definer(&create));
            } else {
                let create = text(conn, &format!("SHOW CREATE TABLE {qn}"), 1).await?;
                d.tables.insert(name, parse::table(&create));
            }
        }
        let triggers: Vec<(String, String)> = conn
            .exec(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = ?",
                (&db,),
            )
            .await?;
        for (name, table) in triggers {
            let create = text(
                conn,
                &format!("SHOW CREATE TRIGGER {q}.{}", ident(&name)),
                2,
            )
            .await?;
            d.triggers.insert(
                name,
                Trigger {
                    table,
                    create: strip_definer(&create),
                },
            );
        }
        let routines: Vec<(String, String)> = conn
            .exec(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = ?",
                (&db,),
            )
            .await?;
        for (kind, name) in routines {
            let create = text(conn, &format!("SHOW CREATE {kind} {q}.{}", ident(&name)), 2).await?;
            d.routines
                .insert(format!("{kind} {name}"), strip_definer(&create));
        }
        let events: Vec<String> = conn
            .exec(
                "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
                (&db,),
            )
            .await?;
        for name in events {
            let create = text(conn, &format!("SHOW CREATE EVENT {q}.{}", ident(&name)), 3).await?;
            d.events.insert(name, strip_definer(&create));
        }
        schema.databases.insert(db, d);
    }
    Ok(schema)
}

/// Column `i` of the first row of `sql`, as text.
async fn text(
    conn: &mut mysql_async::Conn,
    sql: &str,
    i: usize,
) -> Result<String, mysql_async::Error> {
    let row: Option<Row> = conn.query_first(sql).await?;
    Ok(row
        .and_then(|r| {
            r.get_opt::<Option<String>, usize>(i)
                .and_then(Result::ok)
                .flatten()
        })
        .unwrap_or_default())
}
