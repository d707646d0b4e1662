#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Power loss for the metadata store: random entries, snapshots (explicit and automatic), process
//! kills and power losses between steps and inside them (at any mutating file-system call of
//! `quill_fs::sim`). Every acknowledged entry (`append` returned the new image) must survive,
//! and the reopened image must be exactly the image after the last entry that survived.

use std::path::Path;

use proptest::prelude::*;
use quill_fs::sim::{CrashMode, SimDisk};
use quill_meta::{
    apply_entry, MetaError, MetadataImage, MetadataRecord, MetadataStore, StoreOptions,
};

const DIR: &str = "/data/__cluster_metadata";

#[derive(Clone, Debug)]
enum Step {
    Append { records: usize, node_id: i32 },
    Snapshot,
    Kill,
    PowerLoss(CrashMode),
    PowerLossWithin { calls: u64, mode: CrashMode },
    KillWithin { calls: u64 },
}

fn crash_mode() -> impl Strategy<Value = CrashMode> {
    prop_oneof![
        Just(CrashMode::LoseUnsynced),
        any::<u64>().prop_map(|seed| CrashMode::Partial { seed }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (1..4usize, 0..8i32).prop_map(|(records, node_id)| Step::Append { records, node_id }),
        1 => Just(Step::Snapshot),
        1 => Just(Step::Kill),
        2 => crash_mode().prop_map(Step::PowerLoss),
        3 => (0..12u64, crash_mode()).prop_map(|(calls, mode)| Step::PowerLossWithin { calls, mode }),
        1 => (0..12u64).prop_map(|calls| Step::KillWithin { calls }),
    ]
}

struct Harness {
    disk: SimDisk,
    options: StoreOptions,
    store: Option<MetadataStore>,
    /// The image after the last acknowledged entry.
    acked: MetadataImage,
    /// The image an append in flight would produce: it may or may not survive a crash.
    in_flight: Option<MetadataImage>,
    next_port: u16,
    /// `disk.crashes()` when the store was opened: more means the store's process is dead.
    crashes_at_open: u64,
}

impl Harness {
    fn new(snapshot_interval_entries: u64) -> Harness {
        let disk = SimDisk::new();
        let fs = disk.mount();
        fs.create_dir_all(Path::new("/data")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let options = StoreOptions {
            snapshot_interval_entries,
            ..StoreOptions::default()
        };
        let store = MetadataStore::open_in(&fs, Path::new(DIR), options.clone()).unwrap();
        let acked = (*store.image()).clone();
        Harness {
            disk,
            options,
            store: Some(store),
            acked,
            in_flight: None,
            next_port: 1,
            crashes_at_open: 0,
        }
    }

    fn run(&mut self, step: &Step) {
        match self.apply(step) {
            Ok(()) => {}
            Err(_) if self.disk.crashes() > self.crashes_at_open => {
                self.reopen_and_check("a crash inside a step");
            }
            Err(error) => panic!("{step:?} failed without a crash: {error}"),
        }
    }

    fn apply(&mut self, step: &Step) -> Result<(), MetaError> {
        match *step {
            Step::Append { records, node_id } => {
                let records: Vec<MetadataRecord> = (0..records as i32)
                    .map(|i| {
                        self.next_port += 1;
                        MetadataRecord::RegisterBroker {
                            node_id: node_id + i,
                            host: "localhost".to_string(),
                            port: self.next_port,
                            rack: None,
                            incarnation_id: None,
                        }
                    })
                    .collect();
                let index = self.acked.offset + 1;
                self.in_flight = Some(apply_entry(&self.acked, index, &records).unwrap());
                let store = self.store.as_mut().expect("open");
                let image = store.append(records)?;
                assert_eq!(Some(&*image), self.in_flight.as_ref());
                self.acked = (*image).clone();
                self.in_flight = None;
            }
            Step::Snapshot => self.store.as_mut().expect("open").snapshot()?,
            Step::Kill => {
                self.disk.kill_process();
                self.reopen_and_check("a kill");
            }
            Step::PowerLoss(mode) => {
                self.disk.power_loss(mode);
                self.reopen_and_check("a power loss");
            }
            Step::PowerLossWithin { calls, mode } => {
                self.disk.power_loss_after(calls, mode);
            }
            Step::KillWithin { calls } => self.disk.kill_process_after(calls),
        }
        Ok(())
    }

    fn reopen_and_check(&mut self, what: &str) {
        self.store = None;
        // Opening again if a scheduled crash stops the opening itself.
        let store = loop {
            let crashes = self.disk.crashes();
            let fs = self.disk.mount();
            match MetadataStore::open_in(&fs, Path::new(DIR), self.options.clone()) {
                Ok(store) => {
                    self.crashes_at_open = crashes;
                    break store;
                }
                Err(_) if self.disk.crashes() > crashes => {}
                Err(error) => panic!("the store does not reopen after {what}: {error}"),
            }
        };
        let image = store.image();
        if image.offset == self.acked.offset {
            assert_eq!(
                *image, self.acked,
                "after {what} the acknowledged image changed"
            );
        } else {
            assert_eq!(
                Some(&*image),
                self.in_flight.as_ref(),
                "after {what} the store is at entry {} but entry {} was acknowledged",
                image.offset,
                self.acked.offset
            );
        }
        self.acked = (*image).clone();
        self.in_flight = None;
        self.store = Some(store);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_acknowledged_entry_survives_a_power_loss(
        snapshot_interval_entries in 1..8u64,
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let mut harness = Harness::new(snapshot_interval_entries);
        for step in &steps {
            harness.run(step);
        }
        harness.disk.power_loss(CrashMode::LoseUnsynced);
        harness.reopen_and_check("the final power loss");
    }
}
