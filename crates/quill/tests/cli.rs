//! The `quill` command line: settings precedence, rejection of bad settings, clean shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::BrokerProcess;

fn run_quill(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_quill"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg("127.0.0.1:0");
    for (name, value) in envs {
        command.env(name, value);
    }
    // Bad settings must fail before the broker starts serving, so this returns promptly.
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[test]
fn unknown_setting_in_config_file_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quill.toml");
    std::fs::write(&config, "\"num.partitons\" = 3\n").unwrap();
    let (ok, stderr) = run_quill(&["broker", "--config", config.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(stderr.contains("num.partitons"), "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one clear sentence: {stderr}"
    );
}

#[test]
fn invalid_values_are_rejected_by_name() {
    let (ok, stderr) = run_quill(&["--set", "message.max.bytes=lots"], &[]);
    assert!(!ok);
    assert!(stderr.contains("message.max.bytes"), "{stderr}");
    let (ok, stderr) = run_quill(&[], &[("QUILL_NODE_ID", "-5")]);
    assert!(!ok);
    assert!(stderr.contains("node.id"), "{stderr}");
}

#[test]
fn flag_beats_env_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quill.toml");
    std::fs::write(
        &config,
        "\"node.id\" = 7\n\"advertised.listeners\" = \"file:1\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    // env overrides the file's node.id; the flag overrides env's advertise.
    let broker = BrokerProcess::start_with_env(
        data.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--advertise",
            "flag:3",
        ],
        &[("QUILL_NODE_ID", "8"), ("QUILL_ADVERTISE", "env:2")],
    );
    let log = broker.log_text();
    assert!(log.contains("quill broker 8 listening"), "{log}");
    assert!(log.contains("advertised as flag:3"), "{log}");
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for signal in ["TERM", "INT"] {
        let data = tempfile::tempdir().unwrap();
        let mut broker = BrokerProcess::start(data.path(), &[]);
        let _client = broker.connect();
        assert_eq!(broker.stop_with(signal), Some(0), "SIG{signal}");
    }
}
