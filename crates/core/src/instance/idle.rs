//! Optional idle expiry (`idle_ttl`): stop instances no client uses.
//!
//! Detection is cheap: at each reaper pass, one short connection per
//! running instance reads `Threads_connected` and `Connections`. A client
//! is present if another thread is connected, or if `Connections` grew by
//! more than our own look since the previous pass (someone came and went).
//! Stopping keeps the datadir, port and password; `start` brings it back.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tracing::{info, warn};

use super::{Instance, InstanceError, InstanceState, Manager};

#[derive(Debug, Clone, Copy)]
pub(super) struct Activity {
    connections: u64,
    last_active: Instant,
}

impl Manager {
    /// Stops running, unprotected instances idle for longer than `idle_ttl`.
    pub async fn stop_idle(&self) -> Result<Vec<Instance>, InstanceError> {
        let Some(idle_ttl) = self.ctx.settings.idle_ttl else {
            return Ok(Vec::new());
        };
        let mut stopped = Vec::new();
        for i in self.list(None).await? {
            if i.state != InstanceState::Running || i.meta.protected {
                continue;
            }
            let key = (i.meta.template.clone(), i.meta.name.clone());
            let Some(idle_for) = self.idle_for(&i).await else {
                continue;
            };
            if idle_for >= idle_ttl {
                match self.stop(&key.0, &key.1).await {
                    Ok(s) => {
                        info!(template = %key.0, instance = %key.1, idle_secs = idle_for.as_secs(), "idle instance stopped");
                        stopped.push(s);
                    }
                    Err(e) => {
                        warn!(template = %key.0, instance = %key.1, error = %e, "cannot stop idle instance")
                    }
                }
                self.forget_activity(&key);
            }
        }
        Ok(stopped)
    }

    /// How long nobody used the running instance `i`, as far as the looks
    /// so far tell (the first look counts as use); `None` when its server
    /// cannot be asked.
    pub(super) async fn idle_for(&self, i: &Instance) -> Option<Duration> {
        let port = i.port?;
        let key = (i.meta.template.clone(), i.meta.name.clone());
        let (threads, connections) =
            counters(&self.ctx.settings.connect_host, port, &i.meta.password)
                .await
                .ok()?;
        let now = Instant::now();
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        let entry = activity.entry(key).or_insert(Activity {
            connections,
            last_active: now,
        });
        // Our own connection counts once in each figure.
        if threads > 1 || connections > entry.connections + 1 {
            entry.last_active = now;
        }
        entry.connections = connections;
        Some(now.duration_since(entry.last_active))
    }

    /// Forgets what was seen of `key`'s clients (it was stopped, slept or
    /// woken: the next look starts afresh).
    pub(super) fn forget_activity(&self, key: &super::InstanceKey) {
        self.activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// `Threads_connected` and `Connections` of a server.
async fn counters(
    host: &str,
    port: u16,
    password: &str,
) -> Result<(u64, u64), super::server::ProbeError> {
    let opts = super::server::connect_opts(host, port, password);
    let look = async {
        let mut conn = mysql_async::Conn::new(opts).await?;
        let rows: Vec<(String, String)> = conn
            .query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Connections')")
            .await?;
        conn.disconnect().await?;
        Ok::<_, mysql_async::Error>(rows)
    };
    let limit = std::time::Duration::from_secs(2);
    let rows = tokio::time::timeout(limit, look)
        .await
        .map_err(|_| super::server::ProbeError::TimedOut(limit))??;
    let get = |name: &str| {
        rows.iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((get("Threads_connected"), get("Connections")))
}
