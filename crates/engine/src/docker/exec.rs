//! An exec in a running container: its standard input sent, its output
//! read as it comes, its exit status.
//!
//! Two ways an exec could wait forever on the engine's side are kept
//! from hanging the caller:
//! - The end of its input is sent only once the engine reports the
//!   process started. An end that reaches the engine while the process is
//!   still being created can be lost (containerd#4489, moby#37870), and
//!   the process then waits for input that never comes.
//! - Once the engine reports the process ended, its output gets
//!   [`OUTPUT_GRACE`] to end too; a stream that outlives it is left, and
//!   the exec returns what it had.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::warn;

use super::{map_err, DockerEngine};
use crate::{EngineError, ExecOutput, Stdin, StdoutWatch};

/// How much of an exec's standard error is kept.
const STDERR_KEEP: usize = 16 * 1024;
/// How much of an exec's standard output is kept.
const STDOUT_KEEP: usize = 1024 * 1024;
/// How long an exec's output may go on after the engine reports its
/// process ended (the engine itself gives its copies 2 s).
const OUTPUT_GRACE: Duration = Duration::from_secs(10);
/// The longest pause between two looks at a running exec while its
/// output goes on.
const OUTPUT_POLL_MAX: Duration = Duration::from_secs(5);
/// How long the end of an exec's input waits for the engine to report
/// the process started; then it is sent anyway.
const START_WAIT: Duration = Duration::from_secs(30);

/// What the engine says of an exec.
enum ExecState {
    /// Created, its process not started yet.
    Starting,
    Running,
    Ended,
}

impl DockerEngine {
    /// An exec, its standard output given to `watch` as it comes.
    pub(super) async fn exec_with(
        &self,
        name: &str,
        cmd: Vec<String>,
        user: Option<String>,
        stdin: Option<Stdin>,
        mut watch: Option<StdoutWatch>,
    ) -> Result<ExecOutput, EngineError> {
        let exec = self
            .docker
            .create_exec(
                name,
                CreateExecOptions {
                    cmd: Some(cmd),
                    user,
                    attach_stdin: Some(stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(map_err)?;
        let id = exec.id.as_str();
        let started = self.docker.start_exec(id, None).await.map_err(map_err)?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(EngineError::Protocol("exec started detached".to_owned()));
        };
        let feed = async move {
            if let Some(mut stdin) = stdin {
                let copied = tokio::io::copy(&mut stdin, &mut input).await;
                self.started(name, id).await;
                // Half-close so the process sees end of input, whatever happened.
                let _ = input.shutdown().await;
                copied.map(|_| ())
            } else {
                drop(input);
                Ok(())
            }
        };
        let mut out = ExecOutput::default();
        let drain = async {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(map_err)? {
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message));
                        keep_tail(&mut out.stderr, STDERR_KEEP);
                    }
                    other => {
                        let bytes = other.into_bytes();
                        if let Some(w) = watch.as_mut() {
                            w(&bytes);
                        }
                        out.stdout.push_str(&String::from_utf8_lossy(&bytes));
                        keep_tail(&mut out.stdout, STDOUT_KEEP);
                    }
                }
            }
            Ok::<_, EngineError>(())
        };
        let drained = async {
            tokio::select! {
                r = drain => r,
                () = self.output_outlives(id) => {
                    warn!(container = name, exec = id, "the exec's process ended but its output did not: left after {} s", OUTPUT_GRACE.as_secs());
                    Ok(())
                }
            }
        };
        let (fed, drained) = tokio::join!(feed, drained);
        drained?;
        // The process's output has ended.
        drop(watch);
        out.stdin_error = fed.err().map(|e| crate::StdinError::from_io(&e));
        loop {
            let inspect = self.docker.inspect_exec(id).await.map_err(map_err)?;
            if inspect.running != Some(true) {
                out.exit_code = inspect.exit_code.unwrap_or(-1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(out)
    }

    async fn exec_state(&self, id: &str) -> Option<ExecState> {
        let i = self.docker.inspect_exec(id).await.ok()?;
        Some(match (i.running, i.exit_code, i.pid) {
            (_, Some(_), _) if i.running != Some(true) => ExecState::Ended,
            (Some(true), _, Some(pid)) if pid > 0 => ExecState::Running,
            _ => ExecState::Starting,
        })
    }

    /// Returns once the engine reports exec `id`'s process started (or
    /// ended), or after [`START_WAIT`].
    async fn started(&self, name: &str, id: &str) {
        let t0 = Instant::now();
        let mut pause = Duration::from_millis(2);
        while t0.elapsed() < START_WAIT {
            match self.exec_state(id).await {
                Some(ExecState::Running | ExecState::Ended) => return,
                Some(ExecState::Starting) | None => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        warn!(
            container = name,
            exec = id,
            "the engine did not report the exec's process started; its input ends anyway"
        );
    }

    /// Returns [`OUTPUT_GRACE`] after the engine reports exec `id`'s
    /// process ended; never while it runs. It asks every second at first,
    /// then every [`OUTPUT_POLL_MAX`]: a long client costs one call per
    /// few seconds.
    async fn output_outlives(&self, id: &str) {
        let mut ended: Option<Instant> = None;
        let mut pause = Duration::from_secs(1);
        loop {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(OUTPUT_POLL_MAX);
            if let Some(ExecState::Ended) = self.exec_state(id).await {
                if ended.get_or_insert_with(Instant::now).elapsed() >= OUTPUT_GRACE {
                    return;
                }
            }
        }
    }
}

/// Keeps at most the last `keep` bytes of `s` (on a char boundary).
fn keep_tail(s: &mut String, keep: usize) {
    if s.len() > keep {
        let mut cut = s.len() - keep;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s.drain(..cut);
    }
}
