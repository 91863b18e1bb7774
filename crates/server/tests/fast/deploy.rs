//! The deployment files: deploy/docker-compose.yml and deploy/systemd/.
//! No engine needed. `docker-compose config` and `systemd-analyze verify` run
//! when those binaries exist; every other check runs everywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn compose_file() -> PathBuf {
    root().join("deploy/docker-compose.yml")
}

fn has_binary(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn compose() -> Value {
    let text = std::fs::read_to_string(compose_file()).expect("read deploy/docker-compose.yml");
    serde_norway::from_str(&text).expect("deploy/docker-compose.yml is YAML")
}

fn service<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn env_of(svc: &Value) -> BTreeMap<String, String> {
    svc.get("environment")
        .and_then(Value::as_mapping)
        .expect("environment is a mapping")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[test]
fn compose_service_serves_with_the_socket_a_port_a_healthcheck_and_restarts() {
    let doc = compose();
    let svc = service(&doc, "dollyd");
    assert!(
        svc.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.contains("dolly:latest")),
        "dollyd runs the dolly image"
    );
    let volumes = strings(svc.get("volumes"));
    assert!(
        volumes
            .iter()
            .any(|v| v == "/var/run/docker.sock:/var/run/docker.sock"),
        "the engine socket is mounted: {volumes:?}"
    );
    // The data folder is mounted at the same path inside and outside, and
    // DOLLY_DATA_DIR names that path.
    let env = env_of(svc);
    let data_dir = &env["DOLLY_DATA_DIR"];
    let same_path = format!("{data_dir}:{data_dir}");
    assert!(
        volumes.contains(&same_path),
        "data folder {same_path} mounted: {volumes:?}"
    );
    assert!(env["DOLLY_IMAGE"].contains("dolly-mariadb:10.11"));
    let ports = strings(svc.get("ports"));
    assert!(
        ports.iter().any(|p| p.ends_with("5001:5001")),
        "port 5001 published: {ports:?}"
    );
    let test = strings(svc.get("healthcheck").and_then(|h| h.get("test")));
    assert_eq!(test.first().map(String::as_str), Some("CMD"));
    assert!(
        test.iter().any(|t| t.contains("/readyz")),
        "the healthcheck asks /readyz: {test:?}"
    );
    assert_eq!(
        svc.get("restart").and_then(Value::as_str),
        Some("unless-stopped")
    );
}

#[test]
fn compose_update_job_is_a_one_shot_behind_a_profile() {
    let doc = compose();
    let svc = service(&doc, "update");
    assert_eq!(strings(svc.get("command")), ["update"]);
    assert_eq!(strings(svc.get("profiles")), ["update"]);
    assert_eq!(svc.get("restart").and_then(Value::as_str), Some("no"));
    assert_eq!(
        svc.get("image"),
        service(&doc, "dollyd").get("image"),
        "same image as the service"
    );
    let volumes = strings(svc.get("volumes"));
    assert!(volumes
        .iter()
        .any(|v| v.starts_with("/var/run/docker.sock:")));
    assert_eq!(
        env_of(svc)["DOLLY_DATA_DIR"],
        env_of(service(&doc, "dollyd"))["DOLLY_DATA_DIR"],
        "the update job imports into the service's data folder"
    );
    let text = std::fs::read_to_string(compose_file()).unwrap();
    assert!(
        text.contains("docker compose -f deploy/docker-compose.yml run --rm update"),
        "the cron line is documented"
    );
}

#[test]
fn compose_file_passes_docker_compose_config() {
    let Some(bin) = ["docker-compose"]
        .into_iter()
        .find(|b| has_binary(b))
        .map(|b| vec![b])
        .or_else(|| {
            Command::new("docker")
                .args(["compose", "version"])
                .output()
                .is_ok_and(|o| o.status.success())
                .then(|| vec!["docker", "compose"])
        })
    else {
        panic!("neither docker-compose nor `docker compose` is installed: scripts/install-deps.sh installs docker-compose");
    };
    let out = Command::new(bin[0])
        .args(&bin[1..])
        .arg("-f")
        .arg(compose_file())
        .arg("config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} config failed:\n{}",
        bin.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let resolved: Value = serde_norway::from_slice(&out.stdout).unwrap();
    assert!(resolved
        .get("services")
        .and_then(|s| s.get("dollyd"))
        .is_some());
}

/// A unit file as section -> key -> values (keys may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(path: &Path) -> Unit {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut unit = Unit::new();
    let mut section = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            unit.entry(name.to_owned()).or_default();
            section = Some(name.to_owned());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not key=value: {line}", path.display(), n + 1));
        let section = section
            .as_ref()
            .unwrap_or_else(|| panic!("{}:{}: key outside a section", path.display(), n + 1));
        unit.get_mut(section)
            .unwrap()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    unit
}

fn systemd_dir() -> PathBuf {
    root().join("deploy/systemd")
}

fn value<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    unit.get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.last())
        .unwrap_or_else(|| panic!("[{section}] {key}= missing"))
}

#[test]
fn systemd_units_have_the_required_keys() {
    let serve = parse_unit(&systemd_dir().join("dollyd.service"));
    assert_eq!(
        value(&serve, "Service", "ExecStart"),
        "/usr/local/bin/dollyd serve"
    );
    assert_eq!(
        value(&serve, "Service", "EnvironmentFile"),
        "-/etc/dolly/dolly.env"
    );
    assert_eq!(value(&serve, "Service", "Restart"), "on-failure");
    for (key, want) in [
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/dolly"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
        ("SupplementaryGroups", "docker"),
    ] {
        assert_eq!(value(&serve, "Service", key), want, "dollyd.service {key}");
    }
    let caps = value(&serve, "Service", "CapabilityBoundingSet");
    for cap in ["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"] {
        assert!(caps.contains(cap), "{cap} kept: {caps}");
    }
    assert!(!caps.contains("CAP_SYS_ADMIN"), "{caps}");
    assert!(value(&serve, "Unit", "After").contains("docker.service"));
    assert_eq!(value(&serve, "Install", "WantedBy"), "multi-user.target");

    let update = parse_unit(&systemd_dir().join("dolly-update.service"));
    assert_eq!(value(&update, "Service", "Type"), "oneshot");
    assert_eq!(
        value(&update, "Service", "ExecStart"),
        "/usr/local/bin/dollyd update"
    );
    assert_eq!(
        value(&update, "Service", "EnvironmentFile"),
        "-/etc/dolly/dolly.env"
    );
    assert_eq!(
        value(&update, "Service", "ReadWritePaths"),
        "/var/lib/dolly"
    );

    let timer = parse_unit(&systemd_dir().join("dolly-update.timer"));
    assert_eq!(value(&timer, "Timer", "OnCalendar"), "*-*-* 03:00:00");
    assert_eq!(value(&timer, "Timer", "Persistent"), "true");
    assert_eq!(value(&timer, "Timer", "Unit"), "dolly-update.service");
    assert_eq!(value(&timer, "Install", "WantedBy"), "timers.target");
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !has_binary("systemd-analyze") {
        panic!("systemd-analyze is not installed: scripts/install-deps.sh installs systemd");
    }
    // verify wants ExecStart's binary to exist: point it at the one cargo
    // built for this test.
    let dir = tempfile::tempdir().unwrap();
    let dollyd = env!("CARGO_BIN_EXE_dollyd");
    let mut files = Vec::new();
    for name in [
        "dollyd.service",
        "dolly-update.service",
        "dolly-update.timer",
    ] {
        let text = std::fs::read_to_string(systemd_dir().join(name)).unwrap();
        let to = dir.path().join(name);
        std::fs::write(&to, text.replace("/usr/local/bin/dollyd", dollyd)).unwrap();
        files.push(to);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Complaints about our units name their file; other lines concern the
    // machine's own units.
    let ours = stderr
        .lines()
        .any(|l| l.contains("dollyd.service") || l.contains("dolly-update."));
    assert!(
        out.status.success() && !ours,
        "systemd-analyze verify:\n{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
