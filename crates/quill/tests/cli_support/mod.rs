//! Running `quill` client subcommands (and kcat) as processes with bounded waits, for the CLI
//! tests. Every run has a deadline; a command that overruns it is killed and the test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The outcome of one command.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the command's output unless it exited 0.
    pub fn ok(self) -> Run {
        assert!(
            self.success(),
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `program args` with `stdin`, waiting at most `timeout`.
pub fn run_with_timeout(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<&str>,
    timeout: Duration,
) -> Run {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("QUILL_BROKERS")
        .env_remove("QUILL_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output: Output = match receiver.recv_timeout(timeout) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!(
                "`{program} {}` did not finish within {timeout:?}",
                args.join(" ")
            );
        }
    };
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `quill ARGS -b BROKER` with optional stdin.
pub fn quill(broker: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-b", broker]);
    run_with_timeout(
        env!("CARGO_BIN_EXE_quill"),
        &all,
        &[],
        stdin,
        COMMAND_TIMEOUT,
    )
}

pub fn kcat(args: &[&str], stdin: Option<&str>) -> Run {
    run_with_timeout("kcat", args, &[], stdin, COMMAND_TIMEOUT)
}

/// Asserts a failed command printed exactly one line on stderr containing `needle`.
pub fn assert_one_line_error(run: &Run, needle: &str) {
    assert_eq!(
        run.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let lines: Vec<&str> = run.stderr.trim().lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one sentence expected, got:\n{}",
        run.stderr
    );
    assert!(lines[0].contains(needle), "`{needle}` not in: {}", lines[0]);
}
