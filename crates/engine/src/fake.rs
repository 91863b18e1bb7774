//! An in-memory [`Engine`] for fast tests of the logic above it.
//!
//! Containers live in a map; `run` publishes ports (given or picked) and
//! refuses a port another running container holds, as the Docker Engine
//! does. A container's "server" remembers the password an init file in its
//! datadir sets (like the `mysql.user` table of a real datadir), so
//! [`FakeEngine::accepts`] answers whether a client with that password
//! would get in. Faults are injected by hand: [`FakeEngine::kill`],
//! [`FakeEngine::lose`], [`FakeEngine::set_unavailable`]. With
//! [`FakeEngine::record_execs`], an `exec` given input reads it to its
//! end, answers it, and is kept with when it ran ([`ExecRecord`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{ContainerInfo, ContainerSpec, Engine, EngineError, ExecOutput, RunState, Stdin};

/// The file a server reads its first password from, inside its datadir.
const INIT_FILE: &str = ".dolly-init.sql";

#[derive(Debug, Clone)]
struct Fake {
    id: String,
    spec: ContainerSpec,
    state: RunState,
    exit_code: Option<i64>,
    host_port: Option<u16>,
}

/// An `exec` that was given input, as [`FakeEngine::record_execs`] keeps it.
#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub container: String,
    pub cmd: Vec<String>,
    pub input: Vec<u8>,
    /// When the `exec` began, and when it ended.
    pub began: Instant,
    pub ended: Instant,
}

/// What a recorded `exec` prints, from its input.
type Respond = dyn Fn(&[u8]) -> String + Send + Sync;

#[derive(Clone)]
struct Recording {
    /// How long each `exec` takes after its input ends.
    delay: Duration,
    respond: Arc<Respond>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FakeEngine {
    containers: Mutex<BTreeMap<String, Fake>>,
    /// Per datadir (host path): the password the server accepts.
    passwords: Mutex<HashMap<PathBuf, String>>,
    next_id: AtomicU64,
    unavailable: AtomicBool,
    /// Servers that never come up (their process exits at once).
    broken: AtomicBool,
    recording: Mutex<Option<Recording>>,
    execs: Mutex<Vec<ExecRecord>>,
}

impl FakeEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on an `exec` given input reads it to its end, takes
    /// `delay` more, prints what `respond` makes of the input, and is kept
    /// ([`FakeEngine::execs`]).
    pub fn record_execs(
        &self,
        delay: Duration,
        respond: impl Fn(&[u8]) -> String + Send + Sync + 'static,
    ) {
        *self.recording.lock().unwrap_or_else(|p| p.into_inner()) = Some(Recording {
            delay,
            respond: Arc::new(respond),
        });
    }

    /// The recorded `exec`s, in the order they ended.
    pub fn execs(&self) -> Vec<ExecRecord> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Fake>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self) -> Result<(), EngineError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(EngineError::Unavailable("fake engine switched off".into()))
        } else {
            Ok(())
        }
    }

    /// Every call fails as if the engine were down (or works again).
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    /// Servers started from now on exit at once (or start normally again).
    pub fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
    }

    /// The server of `name` crashes (exit 137).
    pub fn kill(&self, name: &str) {
        if let Some(c) = self.lock().get_mut(name) {
            c.state = RunState::Exited;
            c.exit_code = Some(137);
        }
    }

    /// The datadir at `host` loses the accounts its init file made, as a
    /// fresh clone of a template has none: a server started on it without
    /// reading the init file again accepts no password.
    pub fn forget_accounts(&self, host: &std::path::Path) {
        self.passwords
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(host);
    }

    /// A container created from `spec` and never started, as a create in
    /// flight in the engine leaves it when its caller died before `start`.
    pub fn create_only(&self, spec: &ContainerSpec) {
        let id = format!("fake{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.lock().insert(
            spec.name.clone(),
            Fake {
                id,
                spec: spec.clone(),
                state: RunState::Created,
                exit_code: None,
                host_port: None,
            },
        );
    }

    /// The container disappears, as after `docker rm -f` or a prune.
    pub fn lose(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Names of the containers that exist, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The spec a container was created with.
    pub fn spec(&self, name: &str) -> Option<ContainerSpec> {
        self.lock().get(name).map(|c| c.spec.clone())
    }

    /// Whether a running server publishes `port` and accepts `password`.
    pub fn accepts(&self, port: u16, password: &str) -> bool {
        let datadir = self
            .lock()
            .values()
            .find(|c| c.state == RunState::Running && c.host_port == Some(port))
            .and_then(|c| c.spec.binds.first().map(|b| b.host.clone()));
        let Some(datadir) = datadir else {
            return false;
        };
        let passwords = self.passwords.lock().unwrap_or_else(|p| p.into_inner());
        passwords.get(&datadir).is_some_and(|p| p == password)
    }

    /// The "server" starts: it reads the init file of its datadir.
    fn boot(&self, spec: &ContainerSpec) {
        let Some(bind) = spec.binds.first() else {
            return;
        };
        let Ok(sql) = std::fs::read_to_string(bind.host.join(INIT_FILE)) else {
            return;
        };
        if let Some(pw) = sql
            .split("IDENTIFIED BY '")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
        {
            self.passwords
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(bind.host.clone(), pw.to_owned());
        }
    }

    fn info(c: &Fake) -> ContainerInfo {
        let status = match c.state {
            RunState::Running => "Up".to_owned(),
            RunState::Exited => format!("Exited ({})", c.exit_code.unwrap_or(0)),
            other => format!("{other:?}"),
        };
        ContainerInfo {
            id: c.id.clone(),
            name: c.spec.name.clone(),
            labels: c.spec.labels.clone(),
            state: c.state,
            status,
            created: 0,
            host_port: c.host_port,
            exit_code: c.exit_code,
        }
    }
}

#[async_trait]
impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.check()
    }

    async fn ensure_image(&self, image: &str) -> Result<String, EngineError> {
        self.check()?;
        Ok(format!("sha256:fake-{image}"))
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        self.check()?;
        let mut containers = self.lock();
        if containers.contains_key(&spec.name) {
            return Err(EngineError::Conflict(format!("{} is in use", spec.name)));
        }
        let host_port = match spec.publish {
            None => None,
            Some(p) => {
                let taken = |port: u16| {
                    containers
                        .values()
                        .any(|c| c.state == RunState::Running && c.host_port == Some(port))
                };
                match p.host_port {
                    Some(port) if taken(port) => {
                        return Err(EngineError::Rejected {
                            status: 500,
                            message: format!("port {port} is already allocated"),
                        })
                    }
                    Some(port) => Some(port),
                    None => (40000..u16::MAX).find(|port| !taken(*port)),
                }
            }
        };
        let id = format!("fake{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        let broken = self.broken.load(Ordering::SeqCst);
        containers.insert(
            spec.name.clone(),
            Fake {
                id: id.clone(),
                spec: spec.clone(),
                state: if broken {
                    RunState::Exited
                } else {
                    RunState::Running
                },
                exit_code: broken.then_some(1),
                host_port,
            },
        );
        drop(containers);
        if !broken {
            self.boot(spec);
        }
        Ok(id)
    }

    async fn inspect(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        self.check()?;
        let containers = self.lock();
        Ok(containers
            .values()
            .find(|c| c.spec.name == name || c.id == name)
            .map(Self::info))
    }

    async fn inspect_raw(&self, name: &str) -> Result<Option<serde_json::Value>, EngineError> {
        Ok(self.inspect(name).await?.map(|i| {
            serde_json::json!({"Id": i.id, "Name": format!("/{}", i.name), "State": {"Status": format!("{:?}", i.state)}})
        }))
    }

    async fn list(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        self.check()?;
        Ok(self
            .lock()
            .values()
            .filter(|c| labels.iter().all(|(k, v)| c.spec.labels.get(k) == Some(v)))
            .map(Self::info)
            .collect())
    }

    async fn stop(&self, name: &str, _timeout_secs: u32) -> Result<(), EngineError> {
        self.check()?;
        match self.lock().get_mut(name) {
            Some(c) => {
                if c.state == RunState::Running {
                    c.state = RunState::Exited;
                    c.exit_code = Some(0);
                }
                Ok(())
            }
            None => Err(EngineError::NotFound(name.to_owned())),
        }
    }

    async fn rename(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        self.check()?;
        let mut containers = self.lock();
        if containers.contains_key(new_name) {
            return Err(EngineError::Conflict(format!("{new_name} is in use")));
        }
        let mut c = containers
            .remove(name)
            .ok_or_else(|| EngineError::NotFound(name.to_owned()))?;
        c.spec.name = new_name.to_owned();
        containers.insert(new_name.to_owned(), c);
        Ok(())
    }

    async fn start(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        let spec = {
            let mut containers = self.lock();
            let c = containers
                .get_mut(name)
                .ok_or_else(|| EngineError::NotFound(name.to_owned()))?;
            c.state = RunState::Running;
            c.exit_code = None;
            c.spec.clone()
        };
        self.boot(&spec);
        Ok(())
    }

    async fn remove(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        self.lock()
            .retain(|_, c| c.spec.name != name && c.id != name);
        Ok(())
    }

    async fn kill(&self, name: &str) -> Result<(), EngineError> {
        self.check()?;
        if let Some(c) = self.lock().get_mut(name) {
            if c.state == RunState::Running {
                c.state = RunState::Exited;
                c.exit_code = Some(137);
            }
        }
        Ok(())
    }

    async fn memory_usage(&self, name: &str) -> Result<Option<u64>, EngineError> {
        self.check()?;
        Ok(self
            .lock()
            .get(name)
            .filter(|c| c.state == RunState::Running)
            .map(|_| 8 << 20))
    }

    async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        self.check()?;
        self.lock()
            .get(name)
            .map(|c| c.exit_code.unwrap_or(0))
            .ok_or_else(|| EngineError::NotFound(name.to_owned()))
    }

    async fn logs_tail(&self, name: &str, _lines: usize) -> Result<String, EngineError> {
        self.check()?;
        Ok(format!("fake server log of {name}\n"))
    }

    async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        _user: Option<String>,
        stdin: Option<Stdin>,
    ) -> Result<ExecOutput, EngineError> {
        self.check()?;
        if !self.lock().contains_key(name) {
            return Err(EngineError::NotFound(name.to_owned()));
        }
        let recording = self
            .recording
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (Some(rec), Some(mut stdin)) = (recording, stdin) else {
            return Ok(ExecOutput::default());
        };
        use tokio::io::AsyncReadExt;
        let began = Instant::now();
        let mut input = Vec::new();
        stdin
            .read_to_end(&mut input)
            .await
            .map_err(|e| EngineError::Protocol(format!("fake exec input: {e}")))?;
        tokio::time::sleep(rec.delay).await;
        let stdout = (rec.respond)(&input);
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ExecRecord {
                container: name.to_owned(),
                cmd,
                input,
                began,
                ended: Instant::now(),
            });
        Ok(ExecOutput {
            stdout,
            ..ExecOutput::default()
        })
    }
}
