//! [`Engine`] on the Docker Engine API, through bollard.

mod exec;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, HostConfig, PortBinding, RestartPolicy as DockerRestart,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, KillContainerOptions, ListContainersOptionsBuilder,
    LogsOptions, RemoveContainerOptions, RenameContainerOptions, StatsOptions,
    StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tracing::{debug, info};

use super::{
    ContainerInfo, ContainerSpec, Engine, EngineError, ExecOutput, RestartPolicy, RunState, Stdin,
    StdoutWatch,
};

/// The Docker Engine, reached through the local socket or `DOCKER_HOST`.
#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    /// Per container name: its id and its main process as this process
    /// sees it (recorded after `run`), so that `kill` can signal it
    /// directly instead of through the engine's API (tens of ms on a
    /// loaded engine). Only used when `/proc/PID/cgroup` names the id.
    pids: std::sync::Arc<std::sync::Mutex<HashMap<String, (String, u32)>>>,
}

impl DockerEngine {
    /// Waits (bounded) until a container being removed is gone.
    async fn wait_gone(&self, name: &str, conflict: String) -> Result<(), EngineError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if not_found_is_none(self.docker.inspect_container(name, None).await)?.is_none() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(EngineError::Conflict(conflict));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Connects (lazily) with the usual defaults; the API version is
    /// negotiated on first use so older engines work.
    pub async fn connect() -> Result<Self, EngineError> {
        let docker = Docker::connect_with_defaults().map_err(map_err)?;
        // Negotiation needs the engine; if it is down, keep the default
        // version and let requests fail (and succeed once it is back).
        let docker = match docker.clone().negotiate_version().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot negotiate the engine API version");
                docker
            }
        };
        Ok(Self {
            docker,
            pids: Default::default(),
        })
    }

    /// When this process runs in a container of this engine (with the
    /// engine's socket mounted), `path` as the engine sees it: read from our
    /// own container's mounts. `None` outside a container, or when `path`
    /// is not under a mount (then it is the same path on both sides).
    pub async fn host_path_of(&self, path: &Path) -> Option<PathBuf> {
        if !Path::new("/.dockerenv").exists() {
            return None;
        }
        let me = gethostname::gethostname().to_string_lossy().into_owned();
        let inspection = match self.docker.inspect_container(&me, None).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "running in a container that the engine does not know by its host name; set DOLLY_HOST_DATA_DIR if bind mounts fail");
                return None;
            }
        };
        let best = inspection
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some((PathBuf::from(m.destination?), PathBuf::from(m.source?))))
            .filter(|(dest, _)| path.starts_with(dest))
            .max_by_key(|(dest, _)| dest.as_os_str().len())?;
        let host = best.1.join(path.strip_prefix(&best.0).ok()?);
        (host != path).then_some(host)
    }
}

/// Classifies a bollard error by its variant and the engine's HTTP
/// status, never by its text.
fn map_err(e: BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => EngineError::Conflict(message),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Rejected {
            status: status_code,
            message,
        },
        e @ (BollardError::IOError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::HttpClientError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_)
        | BollardError::UnsupportedURISchemeError { .. }) => {
            EngineError::Unavailable(e.to_string())
        }
        other => EngineError::Protocol(other.to_string()),
    }
}

fn not_found_is_none<T>(r: Result<T, BollardError>) -> Result<Option<T>, EngineError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => match map_err(e) {
            EngineError::NotFound(_) => Ok(None),
            other => Err(other),
        },
    }
}

fn label_map(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

fn summary_info(c: ContainerSummary) -> ContainerInfo {
    let state = match c.state {
        Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => RunState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => RunState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => RunState::Restarting,
        Some(ContainerSummaryStateEnum::EXITED) => RunState::Exited,
        Some(ContainerSummaryStateEnum::DEAD) => RunState::Dead,
        _ => RunState::Other,
    };
    let host_port = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .find_map(|p| p.public_port);
    let name = c
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    let status = c.status.unwrap_or_default();
    // The list has no exit code field, only "Exited (137) 2 seconds ago".
    let exit_code = status
        .strip_prefix("Exited (")
        .and_then(|rest| rest.split(')').next())
        .and_then(|code| code.parse().ok());
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name,
        labels: label_map(c.labels),
        state,
        status,
        created: c.created.unwrap_or_default(),
        host_port,
        exit_code,
    }
}

fn inspect_info(c: ContainerInspectResponse) -> ContainerInfo {
    let st = c.state.unwrap_or_default();
    let state = match st.status {
        Some(ContainerStateStatusEnum::CREATED) => RunState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => RunState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => RunState::Paused,
        Some(ContainerStateStatusEnum::RESTARTING) => RunState::Restarting,
        Some(ContainerStateStatusEnum::EXITED) => RunState::Exited,
        Some(ContainerStateStatusEnum::DEAD) => RunState::Dead,
        _ => RunState::Other,
    };
    let host_port = c
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default()
        .into_values()
        .flatten()
        .flatten()
        .find_map(|b| b.host_port.and_then(|p| p.parse::<u16>().ok()));
    let created = c
        .created
        .as_ref()
        .and_then(|d| {
            chrono::DateTime::parse_from_rfc3339(&d.to_string())
                .ok()
                .map(|t| t.timestamp())
        })
        .unwrap_or_default();
    let status = match state {
        RunState::Running => "Up".to_owned(),
        RunState::Exited => format!("Exited ({})", st.exit_code.unwrap_or_default()),
        _ => format!("{state:?}"),
    };
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        labels: label_map(c.config.and_then(|c| c.labels)),
        state,
        status,
        created,
        host_port,
        exit_code: st.exit_code,
    }
}

#[async_trait]
impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.docker.ping().await.map(|_| ()).map_err(map_err)
    }

    async fn ensure_image(&self, image: &str) -> Result<String, EngineError> {
        let id_of = |i: bollard::models::ImageInspect| i.id.unwrap_or_default();
        if let Some(found) = not_found_is_none(self.docker.inspect_image(image).await)? {
            return Ok(id_of(found));
        }
        info!(image, "pulling image");
        let opts = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        };
        let mut pull = self.docker.create_image(Some(opts), None, None);
        while let Some(step) = pull.next().await {
            if let Err(e) = step {
                debug!(error = %e, "pull failed");
                return Err(EngineError::ImageMissing(image.to_owned()));
            }
        }
        match not_found_is_none(self.docker.inspect_image(image).await)? {
            Some(found) => Ok(id_of(found)),
            None => Err(EngineError::ImageMissing(image.to_owned())),
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let binds = spec
            .binds
            .iter()
            .map(|b| {
                format!(
                    "{}:{}:{}",
                    b.host.display(),
                    b.container,
                    if b.read_only { "ro" } else { "rw" }
                )
            })
            .collect::<Vec<_>>();
        let (exposed, port_bindings) = match spec.publish {
            Some(p) => {
                let key = format!("{}/tcp", p.container_port);
                let binding = PortBinding {
                    host_ip: Some(p.host_ip.to_string()),
                    // Empty: the engine picks a free port, so no races.
                    host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                };
                (
                    Some(vec![key.clone()]),
                    Some(HashMap::from([(key, Some(vec![binding]))])),
                )
            }
            None => (None, None),
        };
        let memory = spec.memory_bytes.map(|m| m as i64);
        let host_config = HostConfig {
            binds: Some(binds),
            port_bindings,
            memory,
            // Same as memory: no swap on top of the limit.
            memory_swap: memory,
            network_mode: spec.network_of.as_ref().map(|c| format!("container:{c}")),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            restart_policy: Some(DockerRestart {
                name: Some(match spec.restart {
                    RestartPolicy::No => RestartPolicyNameEnum::NO,
                    RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                }),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.cmd.clone()),
            entrypoint: Some(Vec::new()),
            user: spec.user.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: exposed,
            host_config: Some(host_config),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(map_err)?;
        crate::faultpoint::hit("engine.created");
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self.remove(&created.id).await;
            return Err(map_err(e));
        }
        // Its main process, for a fast `kill` later (in the background:
        // `run` answers as before).
        let (docker, pids, name, id) = (
            self.docker.clone(),
            std::sync::Arc::clone(&self.pids),
            spec.name.clone(),
            created.id.clone(),
        );
        tokio::spawn(async move {
            if let Ok(c) = docker.inspect_container(&id, None).await {
                let pid = c.state.and_then(|s| s.pid).filter(|p| *p > 0);
                if let Some(pid) = pid.and_then(|p| u32::try_from(p).ok()) {
                    pids.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name, (id, pid));
                }
            }
        });
        Ok(created.id)
    }

    async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        Ok(not_found_is_none(self.docker.inspect_container(name, None).await)?.map(inspect_info))
    }

    async fn inspect_raw(&self, name: &str) -> Result<Option<serde_json::Value>, EngineError> {
        match not_found_is_none(self.docker.inspect_container(name, None).await)? {
            Some(c) => serde_json::to_value(c)
                .map(Some)
                .map_err(|e| EngineError::Protocol(e.to_string())),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let filters = HashMap::from([("label".to_owned(), filter)]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(map_err)?;
        Ok(list.into_iter().map(summary_info).collect())
    }

    async fn stop(&self, name: &str, timeout_secs: u32) -> Result<(), EngineError> {
        let opts = StopContainerOptions {
            t: Some(timeout_secs as i32),
            signal: None,
        };
        match self.docker.stop_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn rename(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        {
            let mut pids = self.pids.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = pids.remove(name) {
                pids.insert(new_name.to_owned(), entry);
            }
        }
        let opts = RenameContainerOptions {
            name: new_name.to_owned(),
        };
        self.docker
            .rename_container(name, opts)
            .await
            .map_err(map_err)
    }

    async fn start(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.start_container(name, None).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn remove(&self, name: &str) -> Result<(), EngineError> {
        self.pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) => match map_err(e) {
                EngineError::NotFound(_) => Ok(()),
                // 409 on a forced removal: already being removed (by a
                // dollyd killed meanwhile, say). Callers take "removed"
                // to mean gone (the name is then reused at once), so wait
                // for it to be gone.
                EngineError::Conflict(m) => self.wait_gone(name, m).await,
                other => Err(other),
            },
        }
    }

    async fn kill(&self, name: &str) -> Result<(), EngineError> {
        let known = self
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some((id, pid)) = known {
            let signalled = tokio::task::spawn_blocking(move || kill_own_process(&id, pid))
                .await
                .unwrap_or(false);
            if signalled {
                return Ok(());
            }
        }
        let opts = KillContainerOptions {
            signal: "SIGKILL".to_owned(),
        };
        match self.docker.kill_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) => match map_err(e) {
                // Gone, or not running (409): nothing to kill.
                EngineError::NotFound(_) | EngineError::Conflict(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn memory_usage(&self, name: &str) -> Result<Option<u64>, EngineError> {
        let Some(c) = not_found_is_none(self.docker.inspect_container(name, None).await)? else {
            return Ok(None);
        };
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let Some(id) = c.id.filter(|_| running) else {
            return Ok(None);
        };
        // The cgroup's own figures when this process sees them (dollyd on
        // the engine's host): what `docker stats` computes, without its
        // one-second sampling.
        let id2 = id.clone();
        if let Ok(Some(bytes)) = tokio::task::spawn_blocking(move || cgroup_memory(&id2)).await {
            return Ok(Some(bytes));
        }
        let opts = StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stream = self.docker.stats(&id, Some(opts));
        let stats = match stream.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) => match map_err(e) {
                EngineError::NotFound(_) => return Ok(None),
                other => return Err(other),
            },
            None => return Ok(None),
        };
        let Some(mem) = stats.memory_stats else {
            return Ok(None);
        };
        let Some(usage) = mem.usage else {
            return Ok(None);
        };
        Ok(Some(
            usage.saturating_sub(inactive_file(mem.stats.as_ref())),
        ))
    }

    async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        let mut stream = self.docker.wait_container(name, None);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(map_err(e)),
            None => Err(EngineError::Protocol(format!("no exit status for {name}"))),
        }
    }

    async fn logs_tail(&self, name: &str, lines: usize) -> Result<String, EngineError> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(name, Some(opts));
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => out.push_str(&String::from_utf8_lossy(&c.into_bytes())),
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(out)
    }

    async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
    ) -> Result<ExecOutput, EngineError> {
        self.exec_with(name, cmd, user, stdin, None).await
    }

    async fn exec_watched(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
        watch: StdoutWatch,
    ) -> Result<ExecOutput, EngineError> {
        self.exec_with(name, cmd, user, stdin, Some(watch)).await
    }
}

/// Sends SIGKILL to `pid` if it is the process of container `id` (its
/// `/proc/PID/cgroup` names the id: a reused pid is never signalled).
/// Returns whether it did. Blocking (a procfs read).
fn kill_own_process(id: &str, pid: u32) -> bool {
    let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    if id.len() < 12 || !cgroup.contains(id) {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

/// `docker stats`' memory figure of container `id` read from its cgroup
/// (v1: `memory/docker/ID`, v2: `system.slice/docker-ID.scope` or
/// `docker/ID`): usage less inactive page cache. `None` when this process
/// does not see the cgroup. Blocking (sysfs reads).
fn cgroup_memory(id: &str) -> Option<u64> {
    let root = Path::new("/sys/fs/cgroup");
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    let stat_of = |text: &str| -> HashMap<String, u64> {
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_owned(), v.trim().parse().ok()?))
            })
            .collect()
    };
    let v1 = [
        root.join("memory/docker").join(id),
        root.join("memory/system.slice")
            .join(format!("docker-{id}.scope")),
    ];
    for dir in v1 {
        if let Some(usage) = read(dir.join("memory.usage_in_bytes")) {
            let usage: u64 = usage.trim().parse().ok()?;
            let stat = stat_of(&read(dir.join("memory.stat"))?);
            return Some(usage.saturating_sub(inactive_file(Some(&stat))));
        }
    }
    let v2 = [
        root.join("system.slice").join(format!("docker-{id}.scope")),
        root.join("docker").join(id),
    ];
    for dir in v2 {
        if let Some(usage) = read(dir.join("memory.current")) {
            let usage: u64 = usage.trim().parse().ok()?;
            let stat = stat_of(&read(dir.join("memory.stat"))?);
            return Some(usage.saturating_sub(inactive_file(Some(&stat))));
        }
    }
    None
}

/// As the docker CLI: cgroup v1 `total_inactive_file`, v2 `inactive_file`.
fn inactive_file(stats: Option<&HashMap<String, u64>>) -> u64 {
    stats
        .and_then(|s| {
            s.get("total_inactive_file")
                .or_else(|| s.get("inactive_file"))
        })
        .copied()
        .unwrap_or(0)
}
