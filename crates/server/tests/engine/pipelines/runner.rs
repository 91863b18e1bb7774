//! Just enough of a GitHub Actions runner and of a GitLab CI runner to run
//! this repository's action, template and README workflow as they are
//! written: their scripts run in bash (GitHub) or sh (GitLab) with the
//! files and variables the real runners give. An expression or a feature
//! they use that this runner does not know fails the test, so what runs
//! here is what the files say.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_norway::Value as Yaml;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

pub fn yaml(text: &str) -> Yaml {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

fn str_of(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn map_of(v: Option<&Yaml>) -> Vec<(String, String)> {
    match v {
        Some(Yaml::Mapping(m)) => m.iter().map(|(k, v)| (str_of(k), str_of(v))).collect(),
        None | Some(Yaml::Null) => Vec::new(),
        Some(other) => panic!("not a mapping: {other:?}"),
    }
}

/// What a script run did.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

async fn run_script(
    program: &str,
    args: &[&str],
    script: &str,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Ran {
    let dir = tempfile::tempdir().expect("script dir");
    let file = dir.path().join("script.sh");
    std::fs::write(&file, script).expect("write script");
    let out = tokio::process::Command::new(program)
        .args(args)
        .arg(&file)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), out)
        .await
        .expect("a step ran over 300 s")
        .expect("run the script");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `NAME=value` and `NAME<<DELIMITER` ... `DELIMITER`, as the runner reads
/// `$GITHUB_ENV` and `$GITHUB_OUTPUT`.
pub fn parse_github_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((k, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            loop {
                let l = lines
                    .next()
                    .unwrap_or_else(|| panic!("{k}: no closing {delimiter}"));
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(k.to_owned(), value.join("\n"));
        } else {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {line:?}"));
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    out
}

/// A GitHub Actions job on this machine.
pub struct GitHub {
    /// The job's variables: the runner's own and those steps set.
    pub env: BTreeMap<String, String>,
    /// Expression contexts: `github.*`, `secrets.*`, `vars.*`.
    pub github: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub vars: BTreeMap<String, String>,
    pub workspace: PathBuf,
    pub temp: PathBuf,
    /// Folders steps added to PATH.
    path: Vec<String>,
    /// Everything the job's steps printed, in order.
    pub log: String,
    /// Values `::add-mask::` hid.
    pub masks: Vec<String>,
    failed: bool,
    _dir: tempfile::TempDir,
}

/// One scope of `steps.ID.outputs.NAME` and `inputs.NAME`.
#[derive(Default)]
struct Scope {
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
    action_path: Option<PathBuf>,
}

impl GitHub {
    /// A job with `env` (GITHUB_REF, GITHUB_EVENT_NAME... as the test
    /// simulates them).
    pub fn new(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("job dir");
        let workspace = dir.path().join("workspace");
        let temp = dir.path().join("temp");
        std::fs::create_dir_all(&workspace).expect("workspace");
        std::fs::create_dir_all(&temp).expect("temp");
        let mut vars: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true"),
            ("CI", "true"),
            (
                "HOME",
                &std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            ),
            ("LANG", "C.UTF-8"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        vars.insert("GITHUB_WORKSPACE".into(), workspace.display().to_string());
        vars.insert("RUNNER_TEMP".into(), temp.display().to_string());
        vars.insert(
            "GITHUB_STEP_SUMMARY".into(),
            temp.join("step_summary.md").display().to_string(),
        );
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let github = BTreeMap::from([
            ("token".to_owned(), "fake-github-token".to_owned()),
            (
                "event_name".to_owned(),
                vars.get("GITHUB_EVENT_NAME").cloned().unwrap_or_default(),
            ),
        ]);
        GitHub {
            env: vars,
            github,
            secrets: BTreeMap::new(),
            vars: BTreeMap::new(),
            workspace,
            temp,
            path: Vec::new(),
            log: String::new(),
            masks: Vec::new(),
            failed: false,
            _dir: dir,
        }
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.temp.join("step_summary.md")).unwrap_or_default()
    }

    /// Runs a workflow's job `job`: its steps in order, as the runner
    /// does (a failed step skips the rest but `if: always()` ones). The
    /// workflow steps' outputs, by step id; whether the job succeeded.
    pub async fn run_job(
        &mut self,
        workflow: &Yaml,
        job: &str,
    ) -> (BTreeMap<String, BTreeMap<String, String>>, bool) {
        let j = &workflow["jobs"][job];
        for (k, v) in map_of(workflow.get("env"))
            .into_iter()
            .chain(map_of(j.get("env")))
        {
            let v = self.eval(&v, &Scope::default());
            self.env.insert(k, v);
        }
        let steps = j["steps"].as_sequence().expect("steps").clone();
        let mut scope = Scope::default();
        self.failed = false;
        for step in &steps {
            self.step(step, &mut scope).await;
        }
        (scope.steps, !self.failed)
    }

    /// Runs one step (a `run:` or a `uses:`) in `scope`.
    fn step<'a>(
        &'a mut self,
        step: &'a Yaml,
        scope: &'a mut Scope,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
        Box::pin(async move {
            let condition = step.get("if").map(str_of).unwrap_or_default();
            if !self.condition(&condition, scope) {
                self.log.push_str(&format!("[skipped: if {condition}]\n"));
                return;
            }
            let id = step.get("id").map(str_of);
            let outputs = if let Some(uses) = step.get("uses").map(str_of) {
                self.uses(&uses, step, scope).await
            } else {
                let script = str_of(&step["run"]);
                let env: Vec<(String, String)> = map_of(step.get("env"))
                    .into_iter()
                    .map(|(k, v)| (k, self.eval(&v, scope)))
                    .collect();
                // GitHub leaves `${{ }}` in a script to the runner: evaluated
                // before bash sees it.
                let script = self.eval(&script, scope);
                self.run(&script, &env).await
            };
            if let (Some(id), Some(outputs)) = (id, outputs) {
                scope.steps.insert(id, outputs);
            }
        })
    }

    async fn uses(
        &mut self,
        uses: &str,
        step: &Yaml,
        scope: &Scope,
    ) -> Option<BTreeMap<String, String>> {
        if uses.starts_with("actions/checkout@") {
            return Some(BTreeMap::new());
        }
        assert!(
            uses == "./.github/actions/dolly" || uses.contains("/.github/actions/dolly@"),
            "this runner knows only checkout and dolly's action, not {uses}"
        );
        let path = repo().join(".github/actions/dolly");
        let action = yaml(&std::fs::read_to_string(path.join("action.yml")).expect("action.yml"));
        let given: BTreeMap<String, String> = map_of(step.get("with"))
            .into_iter()
            .map(|(k, v)| (k, self.eval(&v, scope)))
            .collect();
        let mut inner = Scope {
            action_path: Some(path),
            ..Scope::default()
        };
        let Yaml::Mapping(declared) = &action["inputs"] else {
            panic!("action inputs");
        };
        for (k, spec) in declared {
            let k = str_of(k);
            let value = match given.get(&k) {
                Some(v) => v.clone(),
                None => {
                    assert!(
                        spec.get("required").map(str_of).as_deref() != Some("true"),
                        "input {k} is required"
                    );
                    spec.get("default").map(str_of).unwrap_or_default()
                }
            };
            inner.inputs.insert(k, value);
        }
        for k in given.keys() {
            assert!(inner.inputs.contains_key(k), "the action has no input {k}");
        }
        assert_eq!(str_of(&action["runs"]["using"]), "composite");
        let failed_before = self.failed;
        self.failed = false;
        for s in action["runs"]["steps"].as_sequence().expect("steps") {
            self.step(s, &mut inner).await;
        }
        let failed_inside = self.failed;
        self.failed = failed_before || failed_inside;
        // `outputs: {NAME: {value: EXPR}}`, evaluated in the action's scope.
        let mut outputs = BTreeMap::new();
        if let Some(Yaml::Mapping(m)) = action.get("outputs") {
            for (k, v) in m {
                outputs.insert(str_of(k), self.eval(&str_of(&v["value"]), &inner));
            }
        }
        Some(outputs)
    }

    /// Runs a script as `shell: bash` does, then reads the files the step
    /// wrote.
    async fn run(
        &mut self,
        script: &str,
        step_env: &[(String, String)],
    ) -> Option<BTreeMap<String, String>> {
        let files = tempfile::tempdir_in(&self.temp).expect("step files");
        let (env_file, output_file, path_file) = (
            files.path().join("env"),
            files.path().join("output"),
            files.path().join("path"),
        );
        for f in [&env_file, &output_file, &path_file] {
            std::fs::write(f, "").expect("step file");
        }
        let mut env = self.env.clone();
        let base_path = self
            .env
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| std::env::var("PATH").unwrap_or_default());
        let mut path = self.path.clone();
        path.push(base_path);
        env.insert("PATH".into(), path.join(":"));
        env.insert("GITHUB_ENV".into(), env_file.display().to_string());
        env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        env.insert("GITHUB_PATH".into(), path_file.display().to_string());
        env.extend(step_env.iter().cloned());
        let ran = run_script(
            "bash",
            &["--noprofile", "--norc", "-eo", "pipefail"],
            script,
            &env,
            &self.workspace,
        )
        .await;
        for line in ran.stdout.lines() {
            if let Some(m) = line.strip_prefix("::add-mask::") {
                self.masks.push(
                    m.replace("%0A", "\n")
                        .replace("%0D", "\r")
                        .replace("%25", "%"),
                );
            }
        }
        self.log.push_str(&ran.stdout);
        self.log.push_str(&ran.stderr);
        self.log.push_str(&format!("[exit {}]\n", ran.code));
        if ran.code != 0 {
            self.failed = true;
        }
        let read = |f: &Path| std::fs::read_to_string(f).unwrap_or_default();
        self.env.extend(parse_github_file(&read(&env_file)));
        for p in read(&path_file).lines().rev() {
            self.path.insert(0, p.to_owned());
        }
        Some(parse_github_file(&read(&output_file)))
    }

    fn condition(&self, expr: &str, scope: &Scope) -> bool {
        let e = expr.trim();
        let e = e
            .strip_prefix("${{")
            .and_then(|x| x.strip_suffix("}}"))
            .unwrap_or(e)
            .trim();
        match e {
            "" | "success()" => !self.failed,
            "always()" => true,
            "failure()" => self.failed,
            _ => {
                let (a, b, equal) = if let Some((a, b)) = e.split_once("==") {
                    (a, b, true)
                } else if let Some((a, b)) = e.split_once("!=") {
                    (a, b, false)
                } else {
                    panic!("this runner does not know the condition {e:?}")
                };
                !self.failed && ((self.value(a, scope) == self.value(b, scope)) == equal)
            }
        }
    }

    /// Replaces each `${{ EXPR }}` in `text`.
    fn eval(&self, text: &str, scope: &Scope) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed expression in {text:?}"));
            out.push_str(&self.value(&rest[start + 3..start + end], scope));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// One expression: a literal or a context's property.
    fn value(&self, expr: &str, scope: &Scope) -> String {
        let e = expr.trim();
        if let Some(s) = e.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            return s.to_owned();
        }
        let parts: Vec<&str> = e.split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => scope
                .inputs
                .get(*name)
                .unwrap_or_else(|| panic!("no input {name}"))
                .clone(),
            ["steps", id, "outputs", name] => scope
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            ["github", "action_path"] => scope
                .action_path
                .as_ref()
                .expect("github.action_path outside an action")
                .display()
                .to_string(),
            ["github", "event", "pull_request", "number"] => self
                .env
                .get("GITHUB_REF")
                .and_then(|r| r.strip_prefix("refs/pull/"))
                .and_then(|r| r.split('/').next())
                .unwrap_or_default()
                .to_owned(),
            ["github", name] => self
                .github
                .get(*name)
                .unwrap_or_else(|| panic!("no github.{name} here"))
                .clone(),
            ["secrets", name] => self.secrets.get(*name).cloned().unwrap_or_default(),
            ["vars", name] => self.vars.get(*name).cloned().unwrap_or_default(),
            ["env", name] => self.env.get(*name).cloned().unwrap_or_default(),
            ["runner", "temp"] => self.temp.display().to_string(),
            _ => panic!("this runner does not know the expression {e:?}"),
        }
    }
}

/// A GitLab CI pipeline on this machine: jobs of an included template (and
/// of the project's own `.gitlab-ci.yml`), run one after the other.
pub struct GitLab {
    /// The pipeline's variables: predefined ones as the test simulates
    /// them, then the project's.
    pub variables: BTreeMap<String, String>,
    /// Variables later jobs inherit from dotenv reports.
    pub dotenv: BTreeMap<String, String>,
    pub project_dir: PathBuf,
    pub log: String,
    config: Yaml,
    _dir: tempfile::TempDir,
}

impl GitLab {
    /// A pipeline of the template at `template` (a repository path)
    /// included by the project's configuration `project` (YAML), with
    /// predefined variables `predefined`.
    pub fn new(template: &str, project: &str, predefined: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("pipeline dir");
        let project_dir = dir.path().join("project");
        std::fs::create_dir_all(&project_dir).expect("project dir");
        let included = yaml(&std::fs::read_to_string(repo().join(template)).expect("template"));
        let own = yaml(project);
        // `include:` merges the project's keys over the template's.
        let mut config = included;
        let (Yaml::Mapping(base), Yaml::Mapping(over)) = (&mut config, own) else {
            panic!("configurations are mappings");
        };
        for (k, v) in over {
            if k.as_str() == Some("include") {
                continue;
            }
            match (base.get_mut(&k), v) {
                (Some(Yaml::Mapping(b)), Yaml::Mapping(o)) if k.as_str() == Some("variables") => {
                    b.extend(o);
                }
                (_, v) => {
                    base.insert(k, v);
                }
            }
        }
        let mut variables: BTreeMap<String, String> = [
            ("GITLAB_CI", "true"),
            ("CI", "true"),
            (
                "HOME",
                &std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            ),
            ("LANG", "C.UTF-8"),
            ("PATH", &std::env::var("PATH").unwrap_or_default()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        variables.insert("CI_PROJECT_DIR".into(), project_dir.display().to_string());
        for (k, v) in predefined {
            variables.insert((*k).to_owned(), (*v).to_owned());
        }
        for (k, v) in map_of(config.get("variables")) {
            variables.entry(k).or_insert(v);
        }
        GitLab {
            variables,
            dotenv: BTreeMap::new(),
            project_dir,
            log: String::new(),
            config,
            _dir: dir,
        }
    }

    /// Sets a pipeline variable (as a project's CI/CD variable would).
    pub fn set(&mut self, k: &str, v: &str) {
        self.variables.insert(k.to_owned(), v.to_owned());
    }

    /// A job's key, with `extends` resolved (one level, as the template
    /// uses it).
    fn job_key(&self, job: &str, key: &str) -> Option<Yaml> {
        let j = &self.config[job];
        if let Some(v) = j.get(key) {
            return Some(v.clone());
        }
        let parent = j.get("extends").map(str_of)?;
        self.config[parent.as_str()].get(key).cloned()
    }

    /// Whether `rules:` let the job run (`if: $VAR == "x"` and `when:`).
    fn included(&self, job: &str) -> bool {
        let Some(Yaml::Sequence(rules)) = self.job_key(job, "rules") else {
            return true;
        };
        for rule in rules {
            let matches = match rule.get("if").map(str_of) {
                None => true,
                Some(cond) => {
                    let (var, value) = cond
                        .split_once("==")
                        .unwrap_or_else(|| panic!("this runner knows only $VAR == \"x\": {cond}"));
                    let var = var.trim().trim_start_matches('$');
                    let value = value.trim().trim_matches('"');
                    self.vars().get(var).map(String::as_str).unwrap_or("") == value
                }
            };
            if matches {
                return rule.get("when").map(str_of).as_deref() != Some("never");
            }
        }
        false
    }

    fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.variables.clone();
        v.extend(self.dotenv.clone());
        v
    }

    /// Runs `job` (its `before_script` and `script` as one sh script with
    /// `set -e`, as the runner does), reads its dotenv report. `None` when
    /// its rules leave it out.
    pub async fn run_job(&mut self, job: &str) -> Option<Ran> {
        assert!(
            self.config.get(job).is_some(),
            "no job {job} in the pipeline"
        );
        if !self.included(job) {
            self.log
                .push_str(&format!("[{job}: not in this pipeline]\n"));
            return None;
        }
        let mut env = self.vars();
        for (k, v) in map_of(self.job_key(job, "variables").as_ref()) {
            env.insert(k, v);
        }
        let lines = |key: &str| -> Vec<String> {
            match self.job_key(job, key) {
                Some(Yaml::Sequence(s)) => s.iter().map(str_of).collect(),
                None => Vec::new(),
                Some(other) => panic!("{job}.{key}: {other:?}"),
            }
        };
        let mut script = String::from("set -e\n");
        for l in lines("before_script").into_iter().chain(lines("script")) {
            script.push_str(&l);
            script.push('\n');
        }
        let ran = run_script("sh", &[], &script, &env, &self.project_dir).await;
        self.log.push_str(&format!(
            "[{job}]\n{}{}[exit {}]\n",
            ran.stdout, ran.stderr, ran.code
        ));
        if ran.code == 0 {
            if let Some(report) = self
                .job_key(job, "artifacts")
                .and_then(|a| a.get("reports").and_then(|r| r.get("dotenv")).map(str_of))
            {
                let text = std::fs::read_to_string(self.project_dir.join(&report))
                    .unwrap_or_else(|e| panic!("{job}: no dotenv report {report}: {e}"));
                for line in text.lines() {
                    let (k, v) = line
                        .split_once('=')
                        .unwrap_or_else(|| panic!("not a dotenv line: {line:?}"));
                    self.dotenv.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Some(ran)
    }

    /// The job's stage.
    pub fn stage(&self, job: &str) -> String {
        self.job_key(job, "stage")
            .map(|s| str_of(&s))
            .unwrap_or_default()
    }
}
