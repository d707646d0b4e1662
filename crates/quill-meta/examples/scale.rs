//! Scale check: `cargo run --release -p quill-meta --example scale`.
//! Creates 5,000 topics of 10 partitions, then times appends, a snapshot and a reopen.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use quill_meta::{
    apply, plan_allocate_producer_ids, plan_create_topic, MetadataRecord, MetadataStore, Placement,
};

const BATCHES: usize = 50;
const TOPICS_PER_BATCH: usize = 100;

fn main() -> Result<(), Box<dyn Error>> {
    let temp = std::env::temp_dir().join(format!("quill-meta-scale-{}", std::process::id()));
    let mut store = MetadataStore::open(&temp)?;
    store.append(vec![MetadataRecord::RegisterBroker {
        node_id: 1,
        host: "localhost".into(),
        port: 9092,
        rack: None,
        incarnation_id: None,
    }])?;

    let start = Instant::now();
    for batch in 0..BATCHES {
        let mut image = store.image();
        let mut records = Vec::new();
        for topic in 0..TOPICS_PER_BATCH {
            let placement = Placement::Automatic {
                partition_count: 10,
                replication_factor: 1,
            };
            let name = format!("topic-{batch}-{topic}");
            let record = plan_create_topic(&image, &name, placement, BTreeMap::new())?;
            image = Arc::new(apply(&image, &record)?);
            records.push(record);
        }
        store.append(records)?;
    }
    let topics = BATCHES * TOPICS_PER_BATCH;
    println!(
        "planned and appended {topics} topics: {:?}",
        start.elapsed()
    );

    let start = Instant::now();
    for _ in 0..20 {
        let (record, _) = plan_allocate_producer_ids(&store.image(), 1)?;
        store.append(vec![record])?;
    }
    println!(
        "append (incl. fsync) with {topics} topics: {:?}",
        start.elapsed() / 20
    );

    let start = Instant::now();
    store.snapshot()?;
    let snapshot_bytes = std::fs::metadata(temp.join("metadata.snapshot"))?.len();
    println!("snapshot: {:?}, {snapshot_bytes} bytes", start.elapsed());
    drop(store);

    let start = Instant::now();
    let store = MetadataStore::open(&temp)?;
    println!(
        "reopen: {:?}, {} topics",
        start.elapsed(),
        store.image().topics.len()
    );
    std::fs::remove_dir_all(&temp)?;
    Ok(())
}
