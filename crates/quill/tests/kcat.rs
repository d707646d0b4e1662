//! A real client: Debian's kcat (librdkafka 2.0.2) lists metadata, produces and consumes from
//! the beginning against the real broker binary. `scripts/test.sh` installs kcat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::BrokerProcess;

const KCAT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs kcat with a bounded wait; panics with its output if it does not finish in time.
fn kcat(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is not installed (scripts/test.sh installs it: apt-get install kcat)");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + KCAT_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "kcat {args:?} timed out; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn kcat_lists_produces_and_consumes_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let address = broker.address();

    let metadata = stdout(&kcat(&["-b", &address, "-L"], None));
    assert!(
        metadata.contains(&format!("broker 1 at {address}")),
        "{metadata}"
    );

    let produced = kcat(
        &[
            "-b",
            &address,
            "-P",
            "-t",
            "greetings",
            "-K",
            ":",
            "-X",
            "acks=all",
        ],
        Some("k1:hello\nk2:world\nk3:third line\n"),
    );
    stdout(&produced);

    let consumed = stdout(&kcat(
        &[
            "-b",
            &address,
            "-C",
            "-t",
            "greetings",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o %k %s\n",
        ],
        None,
    ));
    assert_eq!(consumed, "0 k1 hello\n1 k2 world\n2 k3 third line\n");

    let listed = stdout(&kcat(&["-b", &address, "-L", "-t", "greetings"], None));
    assert!(
        listed.contains("topic \"greetings\" with 1 partitions"),
        "{listed}"
    );
}

#[test]
fn kcat_compressed_batches_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let address = broker.address();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("compressed-{codec}");
        let input: String = (0..50)
            .map(|index| format!("{codec} message {index}\n"))
            .collect();
        let produce_args = ["-b", &address, "-P", "-t", &topic, "-z", codec];
        stdout(&kcat(&produce_args, Some(&input)));
        let consumed = stdout(&kcat(
            &[
                "-b",
                &address,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-f",
                "%s\n",
            ],
            None,
        ));
        assert_eq!(consumed, input, "codec {codec}");
    }
}
