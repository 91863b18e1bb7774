//! What the machine and the kernel tell: process RSS and CPU, cgroup v1
//! memory of containers, CPU sampling of an import container.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dolly_engine::Engine;
use serde::Serialize;

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `(comm, utime + stime in seconds)` of a process, from `/proc/PID/stat`.
pub fn proc_cpu(pid: u32) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // Fields after the comm start at field 3 (state); utime is 14, stime 15.
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / clk_tck()))
}

/// CPU seconds this process used so far (all threads).
pub fn self_cpu() -> f64 {
    proc_cpu(std::process::id()).map(|(_, s)| s).unwrap_or(0.0)
}

/// `VmRSS` of a process in bytes.
pub fn vm_rss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The cgroup v1 folder of a container in `controller`, if there is one
/// (cgroupfs driver: `docker/ID`; systemd driver: `system.slice/docker-ID.scope`).
pub fn cgroup_dir(controller: &str, id: &str) -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup").join(controller);
    [
        root.join("docker").join(id),
        root.join("system.slice").join(format!("docker-{id}.scope")),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

pub fn cgroup_pids(id: &str) -> Vec<u32> {
    cgroup_dir("memory", id)
        .or_else(|| cgroup_dir("pids", id))
        .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// A container's memory, from its cgroup (v1) and its server's `/proc`.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct ContainerMemory {
    /// `memory.usage_in_bytes - total_inactive_file`: what `docker stats`
    /// shows on cgroup v1.
    pub stats_bytes: u64,
    /// `memory.stat` `total_rss`: anonymous resident memory.
    pub rss_bytes: u64,
    /// `memory.usage_in_bytes` (includes page cache).
    pub usage_bytes: u64,
    /// `VmRSS` of the server process (includes shared library pages).
    pub server_vmrss_bytes: u64,
}

pub fn container_memory(id: &str) -> Option<ContainerMemory> {
    let dir = cgroup_dir("memory", id)?;
    let usage: u64 = std::fs::read_to_string(dir.join("memory.usage_in_bytes"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
    let field = |name: &str| -> u64 {
        stat.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let server_vmrss_bytes = cgroup_pids(id)
        .into_iter()
        .filter(|p| proc_cpu(*p).is_some_and(|(c, _)| c == "mariadbd" || c == "mysqld"))
        .filter_map(vm_rss)
        .max()
        .unwrap_or(0);
    Some(ContainerMemory {
        stats_bytes: usage.saturating_sub(field("total_inactive_file")),
        rss_bytes: field("total_rss"),
        usage_bytes: usage,
        server_vmrss_bytes,
    })
}

/// One process seen in a container while sampling.
#[derive(Debug, Clone, Serialize)]
pub struct SeenProcess {
    pub comm: String,
    pub cpu_s: f64,
    pub first_seen_s: f64,
    pub last_seen_s: f64,
}

/// CPU time of every process in a container, sampled every 200 ms until
/// stopped; the container is found by name once it exists (and again when
/// the one followed has no process left).
pub struct CpuSampler {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<BTreeMap<u32, SeenProcess>>,
}

impl CpuSampler {
    pub fn start(engine: Arc<dyn Engine>, container: String) -> Self {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stop2 = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let seen = Arc::new(Mutex::new(BTreeMap::<u32, SeenProcess>::new()));
            let mut id: Option<String> = None;
            // Bounded: at most 24 h of samples.
            for _ in 0..(24 * 3600 * 5) {
                // A container of the same name may replace the first one
                // (a physical import's helper, then its server): found
                // again once the one followed has no process left.
                let pids = id.as_deref().map(cgroup_pids).unwrap_or_default();
                if pids.is_empty() {
                    if let Ok(Some(info)) = engine.inspect(&container).await {
                        id = Some(info.id);
                    }
                }
                if let Some(id) = &id {
                    let now = started.elapsed().as_secs_f64();
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    let pids = if pids.is_empty() {
                        cgroup_pids(id)
                    } else {
                        pids
                    };
                    for pid in pids {
                        if let Some((comm, cpu)) = proc_cpu(pid) {
                            let e = seen.entry(pid).or_insert(SeenProcess {
                                comm: comm.clone(),
                                cpu_s: 0.0,
                                first_seen_s: now,
                                last_seen_s: now,
                            });
                            // `sh -c '...; exec mariadbd'` changes its name.
                            e.comm = comm;
                            e.cpu_s = e.cpu_s.max(cpu);
                            e.last_seen_s = now;
                        }
                    }
                }
                tokio::select! {
                    _ = stop2.notified() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            let out = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            out
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> BTreeMap<u32, SeenProcess> {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

/// Where an import's CPU went, from a [`CpuSampler`].
#[derive(Debug, Clone, Serialize, Default)]
pub struct CpuSplit {
    /// The server process (`mariadbd`).
    pub server_cpu_s: f64,
    /// The client that read the dump (the longest-lived `mariadb`).
    pub client_cpu_s: f64,
    /// Seconds the loading client was alive.
    pub load_window_s: f64,
    /// When the loading client appeared, from the start of sampling.
    pub load_started_s: f64,
    /// Everything else in the container (initialisation, other execs).
    pub other_cpu_s: f64,
    /// Every process seen.
    pub processes: Vec<SeenProcess>,
}

pub fn split(seen: &BTreeMap<u32, SeenProcess>) -> CpuSplit {
    let mut s = CpuSplit::default();
    let load = seen
        .iter()
        .filter(|(_, p)| p.comm == "mariadb" || p.comm == "mysql")
        .max_by(|a, b| {
            (a.1.last_seen_s - a.1.first_seen_s).total_cmp(&(b.1.last_seen_s - b.1.first_seen_s))
        })
        .map(|(pid, _)| *pid);
    s.processes = seen.values().cloned().collect();
    for (pid, p) in seen {
        if Some(*pid) == load {
            s.client_cpu_s = p.cpu_s;
            s.load_window_s = p.last_seen_s - p.first_seen_s;
            s.load_started_s = p.first_seen_s;
        } else if p.comm == "mariadbd" || p.comm == "mysqld" {
            s.server_cpu_s += p.cpu_s;
        } else {
            s.other_cpu_s += p.cpu_s;
        }
    }
    s
}

/// `nproc`, memory, kernel.
pub fn machine() -> serde_json::Value {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    serde_json::json!({
        "nproc": nproc,
        "cpu": cpu,
        "mem_gib": (mem as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": kernel,
    })
}

/// The filesystem type of `path` (from `/proc/self/mounts`, longest
/// matching mount point) and its source.
pub fn filesystem(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.get(1)?, *f.get(2)?))
        })
        .filter(|(_, mp, _)| path.starts_with(mp))
        .max_by_key(|(_, mp, _)| mp.len())
        .map(|(src, mp, ty)| format!("{ty} at {mp} (from {src})"))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// CPU seconds used so far by the container engine's own processes
/// (`dockerd`, `containerd`, the shims, `fuse-overlayfs`): what streaming a
/// dump through the engine costs outside the container.
pub fn engine_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_cpu)
        .filter(|(comm, _)| {
            comm == "dockerd" || comm.starts_with("containerd") || comm == "fuse-overlayfs"
        })
        .map(|(_, cpu)| cpu)
        .sum()
}

/// `(busy, total)` jiffies of the whole machine, from `/proc/stat`.
pub fn machine_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Machine-wide busy cores between two [`machine_jiffies`] readings.
pub fn busy_cores(a: (u64, u64), b: (u64, u64)) -> f64 {
    let total = b.1.saturating_sub(a.1) as f64;
    let busy = b.0.saturating_sub(a.0) as f64;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    if total > 0.0 {
        busy / total * cores
    } else {
        0.0
    }
}
