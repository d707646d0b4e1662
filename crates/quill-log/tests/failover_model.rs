#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Two replicas of one partition at the log level, driven at random: the leader appends
//! (plain, idempotent and transactional batches, markers), the follower fetches with
//! `append_as_follower`, replicas crash and reopen, and leadership fails over to the follower
//! (when it has caught up to a consistent prefix, as an ISR member has) under a new leader
//! epoch. The deposed leader then finds its divergence point with the leader-epoch protocol
//! (KIP-279: OffsetsForLeaderEpoch answered by `end_offset_for_epoch`) and truncates there.
//! Checked: after reconciling, the follower's log is a byte prefix of the leader's; once caught
//! up, both hold the same bytes, producer state, transactions and epochs.

use proptest::prelude::*;
use quill_log::testing::{build_simple_batch, with_producer};
use quill_log::{AppendContext, ControlMarker, GroupCommitter, Log, LogConfig};

#[derive(Clone, Debug)]
enum Op {
    Append { records: usize, kind: Kind },
    Marker { commit: bool },
    Fetch { max_bytes: usize },
    Failover,
    Reopen { leader: bool, clean: bool },
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Plain,
    Idempotent,
    Transactional,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(Kind::Plain),
        Just(Kind::Idempotent),
        Just(Kind::Transactional)
    ];
    prop_oneof![
        8 => (1usize..5, kind).prop_map(|(records, kind)| Op::Append { records, kind }),
        1 => any::<bool>().prop_map(|commit| Op::Marker { commit }),
        6 => (1usize..1500).prop_map(|max_bytes| Op::Fetch { max_bytes }),
        2 => Just(Op::Failover),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(leader, clean)| Op::Reopen { leader, clean }),
    ]
}

const IDEMPOTENT_PRODUCER: i64 = 11;
const TRANSACTIONAL_PRODUCER: i64 = 12;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

struct Replica {
    dir: tempfile::TempDir,
    log: Option<Log>,
}

impl Replica {
    fn log(&self) -> &Log {
        self.log.as_ref().unwrap()
    }

    fn log_mut(&mut self) -> &mut Log {
        self.log.as_mut().unwrap()
    }

    fn reopen(&mut self, clean: bool, committer: &GroupCommitter) {
        let log = self.log.take().unwrap();
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        self.log = Some(Log::open(self.dir.path(), config(), committer.clone()).unwrap());
    }
}

struct Cluster {
    replicas: [Replica; 2],
    leader: usize,
    epoch: i32,
    /// The follower has not yet found its divergence point since the last failover.
    follower_diverged: bool,
    committer: GroupCommitter,
    now_ms: i64,
}

impl Cluster {
    fn new() -> Cluster {
        let committer = GroupCommitter::start().unwrap();
        let replicas = [(); 2].map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let log = Some(Log::open(dir.path(), config(), committer.clone()).unwrap());
            Replica { dir, log }
        });
        let mut cluster = Cluster {
            replicas,
            leader: 0,
            epoch: 0,
            follower_diverged: false,
            committer,
            now_ms: 1_000,
        };
        cluster.leader_log().start_leader_epoch(0).unwrap();
        cluster
    }

    fn leader_log(&mut self) -> &mut Log {
        self.replicas[self.leader].log_mut()
    }

    fn logs(&mut self) -> (&mut Log, &mut Log) {
        let [a, b] = &mut self.replicas;
        let (leader, follower) = if self.leader == 0 { (a, b) } else { (b, a) };
        (leader.log_mut(), follower.log_mut())
    }

    fn next_sequence(log: &Log, producer_id: i64) -> i32 {
        log.producers()
            .iter()
            .find(|p| p.producer_id == producer_id)
            .map_or(0, |p| p.last_sequence + 1)
    }

    fn run(&mut self, op: &Op) {
        self.now_ms += 1;
        let now_ms = self.now_ms;
        let epoch = self.epoch;
        match *op {
            Op::Append { records, kind } => {
                let log = self.leader_log();
                let batch = build_simple_batch(now_ms, records, 30);
                let batch = match kind {
                    Kind::Plain => batch,
                    Kind::Idempotent => {
                        let sequence = Self::next_sequence(log, IDEMPOTENT_PRODUCER);
                        with_producer(batch, IDEMPOTENT_PRODUCER, 0, sequence, false)
                    }
                    Kind::Transactional => {
                        let sequence = Self::next_sequence(log, TRANSACTIONAL_PRODUCER);
                        with_producer(batch, TRANSACTIONAL_PRODUCER, 0, sequence, true)
                    }
                };
                let context = AppendContext {
                    now_ms,
                    leader_epoch: epoch,
                };
                log.append(&batch, context).unwrap();
            }
            Op::Marker { commit } => {
                let marker = if commit {
                    ControlMarker::Commit
                } else {
                    ControlMarker::Abort
                };
                self.leader_log()
                    .append_control(TRANSACTIONAL_PRODUCER, 0, marker, 0, now_ms)
                    .unwrap();
            }
            Op::Fetch { max_bytes } => self.fetch(max_bytes),
            Op::Failover => {
                if self.follower_diverged {
                    return; // not in the ISR yet: it may hold data the leader never had
                }
                self.leader = 1 - self.leader;
                self.epoch += 1;
                let epoch = self.epoch;
                self.leader_log().start_leader_epoch(epoch).unwrap();
                self.follower_diverged = true;
            }
            Op::Reopen { leader, clean } => {
                let index = if leader { self.leader } else { 1 - self.leader };
                let committer = self.committer.clone();
                self.replicas[index].reopen(clean, &committer);
                if leader {
                    // A restarted leader is made leader again at its epoch.
                    let epoch = self.epoch;
                    self.leader_log().start_leader_epoch(epoch).unwrap();
                }
            }
        }
    }

    /// One fetch by the follower: first the divergence check after a failover (KIP-279, as
    /// Kafka's AbstractFetcherThread does it), then one read at its log end.
    fn fetch(&mut self, max_bytes: usize) {
        if self.follower_diverged {
            self.reconcile();
        }
        let now_ms = self.now_ms;
        let (leader, follower) = self.logs();
        let from = follower.log_end_offset();
        let read = leader
            .read(from, max_bytes, leader.log_end_offset())
            .unwrap();
        let info = follower.append_as_follower(&read.bytes, now_ms).unwrap();
        assert_eq!(info.log_end_offset, read.next_offset);
    }

    fn reconcile(&mut self) {
        for _ in 0..100 {
            let (leader, follower) = self.logs();
            let Some(follower_epoch) = follower.latest_epoch() else {
                follower.truncate_to(0).unwrap();
                break;
            };
            let (leader_epoch, leader_end) = leader
                .end_offset_for_epoch(follower_epoch)
                .expect("the leader knows an epoch at or below the follower's latest");
            let (own_epoch, own_end) = follower
                .end_offset_for_epoch(leader_epoch)
                .expect("the follower knows an epoch at or below the leader's answer");
            let follower_end = follower.log_end_offset();
            if own_epoch != leader_epoch {
                // The follower never had the leader's epoch: cut to where its own nearest one
                // ends and ask again.
                follower.truncate_to(own_end.min(follower_end)).unwrap();
                continue;
            }
            follower
                .truncate_to(leader_end.min(own_end).min(follower_end))
                .unwrap();
            break;
        }
        self.follower_diverged = false;
        let (leader, follower) = self.logs();
        let end = follower.log_end_offset();
        assert!(end <= leader.log_end_offset());
        assert_eq!(
            bytes_between(follower, follower.log_start_offset(), end),
            bytes_between(leader, follower.log_start_offset(), end),
            "after reconciling, the follower's log is a prefix of the leader's"
        );
    }

    /// Lets the follower catch up fully and checks that both replicas agree on everything.
    fn check_caught_up(&mut self) {
        for _ in 0..10_000 {
            let diverged = self.follower_diverged;
            let (leader, follower) = self.logs();
            if !diverged && follower.log_end_offset() == leader.log_end_offset() {
                break;
            }
            self.fetch(1 << 20);
        }
        let (leader, follower) = self.logs();
        let end = leader.log_end_offset();
        assert_eq!(follower.log_end_offset(), end);
        assert_eq!(
            bytes_between(follower, 0, end),
            bytes_between(leader, 0, end)
        );
        assert_eq!(follower.producers(), leader.producers());
        assert_eq!(
            follower.aborted_transactions(0, end),
            leader.aborted_transactions(0, end)
        );
        assert_eq!(
            follower.first_unstable_offset(),
            leader.first_unstable_offset()
        );
        let with_data = |log: &Log| {
            log.epoch_entries()
                .into_iter()
                .filter(|e| e.start_offset < end)
                .collect::<Vec<_>>()
        };
        assert_eq!(with_data(follower), with_data(leader));
    }
}

fn bytes_between(log: &Log, from: i64, to: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < to {
        let read = log.read(offset, 1 << 20, to).unwrap();
        if read.bytes.is_empty() {
            break;
        }
        out.extend_from_slice(&read.bytes);
        offset = read.next_offset;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn replicas_converge_through_failovers(ops in prop::collection::vec(op(), 1..80)) {
        let mut cluster = Cluster::new();
        for op in &ops {
            cluster.run(op);
        }
        cluster.check_caught_up();
        // And once more after both restart.
        let committer = cluster.committer.clone();
        for replica in &mut cluster.replicas {
            replica.reopen(false, &committer);
        }
        cluster.check_caught_up();
    }
}

#[test]
fn a_deposed_leader_cuts_what_it_wrote_after_the_new_leaders_epoch_began() {
    let mut cluster = Cluster::new();
    for _ in 0..3 {
        cluster.run(&Op::Append {
            records: 2,
            kind: Kind::Idempotent,
        });
    }
    cluster.run(&Op::Fetch { max_bytes: 1 << 20 });
    // Written by the old leader only: lost at the failover.
    cluster.run(&Op::Append {
        records: 3,
        kind: Kind::Plain,
    });
    let old_leader = cluster.leader;
    cluster.run(&Op::Failover);
    cluster.run(&Op::Append {
        records: 1,
        kind: Kind::Idempotent,
    });
    cluster.run(&Op::Fetch { max_bytes: 1 << 20 });
    let old = cluster.replicas[old_leader].log();
    assert_eq!(old.log_end_offset(), 7);
    assert_eq!(
        old.epoch_entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 6)]
    );
    cluster.check_caught_up();
}
