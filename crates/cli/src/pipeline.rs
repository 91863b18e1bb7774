//! The CI pipeline `dolly ci` runs in, read from its environment: which
//! platform (GitHub Actions, GitLab CI, or any other shell), the instance
//! name the pipeline's own variables give, and the text each platform reads
//! variables from (`$GITHUB_ENV`, `$GITHUB_OUTPUT`, a dotenv file).

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

use dolly_types::InstanceName;

/// Reads a variable of the environment; an empty one counts as unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where `dolly ci` writes what the job needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// `GITHUB_ACTIONS=true`: the files the runner gives in `GITHUB_ENV`
    /// and `GITHUB_OUTPUT` (absent outside a step).
    GitHub {
        env_file: Option<PathBuf>,
        output_file: Option<PathBuf>,
    },
    /// `GITLAB_CI=true`: a dotenv file, for `artifacts:reports:dotenv`.
    GitLab,
    /// Anywhere else: shell `export` lines on stdout.
    Shell,
}

pub fn detect(get: Lookup) -> Platform {
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        Platform::GitHub {
            env_file: get("GITHUB_ENV").map(PathBuf::from),
            output_file: get("GITHUB_OUTPUT").map(PathBuf::from),
        }
    } else if get("GITLAB_CI").as_deref() == Some("true") {
        Platform::GitLab
    } else {
        Platform::Shell
    }
}

/// A name the pipeline gave, and the variable it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub name: InstanceName,
    pub from: &'static str,
}

/// The instance name for this pipeline: the pull or merge request (`pr-N`,
/// `mr-N`), else the branch (`branch-SLUG`), else the job (`job-...`).
/// `None` outside GitHub Actions and GitLab CI, or with none of their
/// variables.
pub fn derive_name(get: Lookup) -> Option<Derived> {
    let found =
        |name: Option<InstanceName>, from: &'static str| name.map(|name| Derived { name, from });
    match detect(get) {
        Platform::GitHub { .. } => {
            let pr = get("GITHUB_REF").and_then(|r| {
                let n = r.strip_prefix("refs/pull/")?.split('/').next()?.to_owned();
                n.chars().all(|c| c.is_ascii_digit()).then_some(n)
            });
            found(pr.and_then(|n| sanitize("pr-", &n)), "GITHUB_REF")
                .or_else(|| {
                    found(
                        get("GITHUB_HEAD_REF").and_then(|b| sanitize("branch-", &b)),
                        "GITHUB_HEAD_REF",
                    )
                })
                .or_else(|| {
                    found(
                        get("GITHUB_REF_NAME").and_then(|b| sanitize("branch-", &b)),
                        "GITHUB_REF_NAME",
                    )
                })
                .or_else(|| {
                    let (job, run) = (get("GITHUB_JOB")?, get("GITHUB_RUN_ID")?);
                    found(
                        sanitize_keeping_end("job-", &job, &format!("-{run}")),
                        "GITHUB_JOB and GITHUB_RUN_ID",
                    )
                })
        }
        Platform::GitLab => found(
            get("CI_MERGE_REQUEST_IID").and_then(|n| sanitize("mr-", &n)),
            "CI_MERGE_REQUEST_IID",
        )
        .or_else(|| {
            found(
                get("CI_COMMIT_REF_SLUG").and_then(|b| sanitize("branch-", &b)),
                "CI_COMMIT_REF_SLUG",
            )
        })
        .or_else(|| {
            found(
                get("CI_JOB_ID").and_then(|j| sanitize("job-", &j)),
                "CI_JOB_ID",
            )
        }),
        Platform::Shell => None,
    }
}

/// The longest instance name.
const MAX: usize = 63;

/// `prefix` and `raw` made a valid instance name: lower case, every other
/// character a `-`, no runs of `-`; too long, it is cut and ends with a
/// hash of `raw`, so two long branch names stay two names.
pub fn sanitize(prefix: &str, raw: &str) -> Option<InstanceName> {
    sanitize_keeping_end(prefix, raw, "")
}

/// As [`sanitize`], with `end` (already valid) kept whole at the end.
fn sanitize_keeping_end(prefix: &str, raw: &str, end: &str) -> Option<InstanceName> {
    let mut slug = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
            slug.push(c);
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        return None;
    }
    let mut name = format!("{prefix}{slug}");
    if name.len() + end.len() > MAX {
        let hash = format!("-{:08x}", fnv1a(raw));
        name.truncate(MAX - end.len() - hash.len());
        name = format!("{}{hash}", name.trim_end_matches('-'));
    }
    name.push_str(end);
    InstanceName::parse(&name).ok()
}

/// FNV-1a, 32 bits: stable across runs and machines (unlike std's hasher).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `NAME=value` lines for `$GITHUB_ENV` / `$GITHUB_OUTPUT`; a value with a
/// line break in the runner's heredoc form, with a delimiter it cannot
/// hold.
pub fn github_lines(vars: &[(&str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| {
            if v.contains('\n') || v.contains('\r') {
                let delimiter = loop {
                    let d = format!(
                        "ghadelimiter_{:016x}",
                        std::collections::hash_map::RandomState::new()
                            .build_hasher()
                            .finish()
                    );
                    if !v.contains(&d) {
                        break d;
                    }
                };
                format!("{k}<<{delimiter}\n{v}\n{delimiter}\n")
            } else {
                format!("{k}={v}\n")
            }
        })
        .collect()
}

/// `::add-mask::` lines: the runner hides these values in every later line
/// of the job's log.
pub fn mask_lines(secrets: &[&str]) -> String {
    secrets
        .iter()
        .map(|s| format!("::add-mask::{}\n", command_data(s)))
        .collect()
}

/// `::error::` line: an annotation on the run with `message`.
pub fn error_annotation(message: &str) -> String {
    format!("::error title=dolly ci::{}\n", command_data(message))
}

/// A workflow command's data, escaped as the runner unescapes it.
fn command_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A variable whose value a dotenv file cannot hold.
#[derive(Debug, thiserror::Error)]
#[error("the value of {0} cannot be written to a dotenv file (a line break or surrounding spaces)")]
pub struct Unwritable(pub String);

/// A dotenv file as GitLab reads it: `NAME=value` lines, taken as they are
/// (GitLab keeps quotes and allows no line break in a value).
pub fn dotenv(vars: &[(&str, String)]) -> Result<String, Unwritable> {
    let mut out = String::new();
    for (k, v) in vars {
        if v.contains(['\n', '\r']) || v.trim() != v {
            return Err(Unwritable((*k).to_owned()));
        }
        out.push_str(&format!("{k}={v}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).filter(|v| !v.is_empty()).cloned()
    }

    fn derived(pairs: &[(&str, &str)]) -> Option<(String, &'static str)> {
        derive_name(&env(pairs)).map(|d| (d.name.to_string(), d.from))
    }

    #[test]
    fn github_names_the_pull_request_then_the_branch_then_the_job() {
        let gh = ("GITHUB_ACTIONS", "true");
        assert_eq!(
            derived(&[
                gh,
                ("GITHUB_REF", "refs/pull/42/merge"),
                ("GITHUB_HEAD_REF", "feature/x")
            ]),
            Some(("pr-42".into(), "GITHUB_REF"))
        );
        assert_eq!(
            derived(&[
                gh,
                ("GITHUB_REF", "refs/heads/main"),
                ("GITHUB_HEAD_REF", "Feature/Login_Page"),
                ("GITHUB_REF_NAME", "main")
            ]),
            Some(("branch-feature-login_page".into(), "GITHUB_HEAD_REF"))
        );
        assert_eq!(
            derived(&[
                gh,
                ("GITHUB_REF", "refs/heads/main"),
                ("GITHUB_REF_NAME", "main")
            ]),
            Some(("branch-main".into(), "GITHUB_REF_NAME"))
        );
        assert_eq!(
            derived(&[gh, ("GITHUB_JOB", "Tests"), ("GITHUB_RUN_ID", "987654321")]),
            Some(("job-tests-987654321".into(), "GITHUB_JOB and GITHUB_RUN_ID"))
        );
        assert_eq!(derived(&[gh]), None);
    }

    #[test]
    fn gitlab_names_the_merge_request_then_the_branch_then_the_job() {
        let gl = ("GITLAB_CI", "true");
        assert_eq!(
            derived(&[
                gl,
                ("CI_MERGE_REQUEST_IID", "7"),
                ("CI_COMMIT_REF_SLUG", "feat-x")
            ]),
            Some(("mr-7".into(), "CI_MERGE_REQUEST_IID"))
        );
        assert_eq!(
            derived(&[gl, ("CI_COMMIT_REF_SLUG", "feat-x"), ("CI_JOB_ID", "55")]),
            Some(("branch-feat-x".into(), "CI_COMMIT_REF_SLUG"))
        );
        assert_eq!(
            derived(&[gl, ("CI_JOB_ID", "55")]),
            Some(("job-55".into(), "CI_JOB_ID"))
        );
        // Elsewhere, nothing is guessed.
        assert_eq!(
            derived(&[("CI_JOB_ID", "55"), ("GITHUB_REF_NAME", "x")]),
            None
        );
    }

    #[test]
    fn names_are_valid_and_long_ones_stay_distinct() {
        assert_eq!(
            sanitize("branch-", "--Ünïcode stuff!!").unwrap().as_str(),
            "branch-n-code-stuff"
        );
        assert_eq!(sanitize("branch-", "///"), None);
        let long_a = format!("feature/{}", "a".repeat(80));
        let long_b = format!("feature/{}b", "a".repeat(80));
        let a = sanitize("branch-", &long_a).unwrap();
        let b = sanitize("branch-", &long_b).unwrap();
        assert!(a.as_str().len() <= 63 && b.as_str().len() <= 63);
        assert_ne!(a, b);
        assert_eq!(a, sanitize("branch-", &long_a).unwrap(), "stable");
        let job = sanitize_keeping_end("job-", &"x".repeat(100), "-123456").unwrap();
        assert!(job.as_str().ends_with("-123456"), "{job}");
        assert!(job.as_str().len() <= 63);
    }

    #[test]
    fn github_files_take_values_and_heredocs() {
        let text = github_lines(&[("A", "1".into()), ("B", "x\ny".into())]);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("A=1"));
        let head = lines.next().unwrap();
        let delimiter = head.strip_prefix("B<<").unwrap();
        assert_eq!(lines.collect::<Vec<_>>(), ["x", "y", delimiter]);
        assert_eq!(mask_lines(&["p%w\nd"]), "::add-mask::p%25w%0Ad\n");
    }

    #[test]
    fn dotenv_refuses_what_gitlab_cannot_read() {
        assert_eq!(
            dotenv(&[("A", "mysql://u:p@h:1/d".into())]).unwrap(),
            "A=mysql://u:p@h:1/d\n"
        );
        assert!(dotenv(&[("A", "x\ny".into())]).is_err());
        assert!(dotenv(&[("A", " x".into())]).is_err());
    }

    #[test]
    fn the_platform_is_read_from_the_environment() {
        assert_eq!(detect(&env(&[])), Platform::Shell);
        assert_eq!(detect(&env(&[("GITLAB_CI", "true")])), Platform::GitLab);
        assert_eq!(
            detect(&env(&[("GITHUB_ACTIONS", "true"), ("GITHUB_ENV", "/e")])),
            Platform::GitHub {
                env_file: Some("/e".into()),
                output_file: None
            }
        );
    }
}
