//! The coordinator through its public API, with in-memory seams and paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quill_txn::*;

struct Harness {
    store: MemoryTxnStore,
    markers: MemoryMarkers,
    ids: MemoryProducerIds,
    coordinator: TransactionCoordinator,
}

async fn harness() -> Harness {
    let store = MemoryTxnStore::default();
    let markers = MemoryMarkers::default();
    let ids = MemoryProducerIds::new(1000, 10);
    let coordinator = start(&store, &markers, &ids).await;
    Harness {
        store,
        markers,
        ids,
        coordinator,
    }
}

async fn start(
    store: &MemoryTxnStore,
    markers: &MemoryMarkers,
    ids: &MemoryProducerIds,
) -> TransactionCoordinator {
    let coordinator = TransactionCoordinator::new(
        TxnConfig::default(),
        Arc::new(store.clone()),
        Arc::new(markers.clone()),
        Arc::new(ids.clone()),
    );
    coordinator.load_all_partitions().await.unwrap();
    coordinator
}

fn init(id: &str) -> InitProducerIdRequest {
    InitProducerIdRequest {
        transactional_id: Some(id.to_string()),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    }
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

/// Lets spawned completion tasks run (paused time auto-advances when idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn idempotent_producers_get_fresh_ids_from_blocks() {
    let h = harness().await;
    let mut seen = Vec::new();
    for _ in 0..25 {
        let ids = h
            .coordinator
            .init_producer_id(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 0,
                producer_id: -1,
                producer_epoch: -1,
            })
            .await
            .unwrap();
        assert_eq!(ids.producer_epoch, 0);
        seen.push(ids.producer_id);
    }
    let expected: Vec<i64> = (1000..1025).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(start_paused = true)]
async fn commit_writes_markers_then_complete_and_bumps_on_reinit() {
    let h = harness().await;
    let c = &h.coordinator;
    let first = c.init_producer_id(init("tx")).await.unwrap();
    assert_eq!(first.producer_epoch, 0);
    let pid = first.producer_id;
    c.add_partitions("tx", pid, 0, &[tp("out", 0), tp("out", 1)])
        .await
        .unwrap();
    c.add_offsets("tx", pid, 0, "group").await.unwrap();
    c.verify_partitions("tx", pid, 0, &[tp("out", 1)]).unwrap();
    assert!(matches!(
        c.verify_partitions("tx", pid, 0, &[tp("out", 2)]),
        Err(TxnError::InvalidTxnState(_))
    ));
    assert_eq!(c.describe("tx").unwrap().state, TxnState::Ongoing);
    c.end_txn("tx", pid, 0, true).await.unwrap();
    settle().await;
    let written = h.markers.written();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].result, TxnResult::Commit);
    assert_eq!(written[0].partitions.len(), 3);
    assert!(written[0]
        .partitions
        .iter()
        .any(|(topic, _)| topic == CONSUMER_OFFSETS_TOPIC));
    let described = c.describe("tx").unwrap();
    assert_eq!(described.state, TxnState::CompleteCommit);
    assert!(described.partitions.is_empty());
    // A retried EndTxn(commit) succeeds; an abort now is invalid.
    c.end_txn("tx", pid, 0, true).await.unwrap();
    assert!(matches!(
        c.end_txn("tx", pid, 0, false).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    // A new producer instance: same id, next epoch; the old one is fenced.
    let second = c.init_producer_id(init("tx")).await.unwrap();
    assert_eq!((second.producer_id, second.producer_epoch), (pid, 1));
    assert_eq!(
        c.add_partitions("tx", pid, 0, &[tp("out", 0)]).await,
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        c.add_partitions("tx", pid + 1, 1, &[tp("out", 0)]).await,
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[tokio::test(start_paused = true)]
async fn abort_and_bad_input() {
    let h = harness().await;
    let c = &h.coordinator;
    assert_eq!(
        c.end_txn("nobody", 1, 0, true).await,
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert!(matches!(
        c.init_producer_id(InitProducerIdRequest {
            transaction_timeout_ms: 900_001,
            ..init("tx")
        })
        .await,
        Err(TxnError::InvalidTransactionTimeout { .. })
    ));
    assert!(matches!(
        c.init_producer_id(init(&"x".repeat(2000))).await,
        Err(TxnError::InvalidRequest(_))
    ));
    assert!(matches!(
        c.init_producer_id(init("")).await,
        Err(TxnError::InvalidRequest(_))
    ));
    let ids = c.init_producer_id(init("tx")).await.unwrap();
    assert!(matches!(
        c.end_txn("tx", ids.producer_id, 0, true).await,
        Err(TxnError::InvalidTxnState(_))
    ));
    c.add_partitions("tx", ids.producer_id, 0, &[tp("out", 0)])
        .await
        .unwrap();
    c.end_txn("tx", ids.producer_id, 0, false).await.unwrap();
    settle().await;
    assert_eq!(h.markers.written()[0].result, TxnResult::Abort);
    assert_eq!(c.describe("tx").unwrap().state, TxnState::CompleteAbort);
    assert_eq!(c.describe("other"), Err(TxnError::TransactionalIdNotFound));
}

#[tokio::test(start_paused = true)]
async fn init_during_ongoing_transaction_fences_and_aborts_it() {
    let h = harness().await;
    let c = &h.coordinator;
    let zombie = c.init_producer_id(init("tx")).await.unwrap();
    c.add_partitions("tx", zombie.producer_id, 0, &[tp("out", 0)])
        .await
        .unwrap();
    assert_eq!(
        c.init_producer_id(init("tx")).await,
        Err(TxnError::ConcurrentTransactions)
    );
    settle().await;
    let markers = h.markers.written();
    assert_eq!(markers[0].result, TxnResult::Abort);
    assert_eq!(markers[0].producer_epoch, 1);
    let fresh = c.init_producer_id(init("tx")).await.unwrap();
    assert_eq!(fresh.producer_epoch, 2);
    assert_eq!(
        c.end_txn("tx", zombie.producer_id, 0, true).await,
        Err(TxnError::ProducerFenced)
    );
}

#[tokio::test(start_paused = true)]
async fn kip360_retry_of_a_bump_gets_the_same_answer() {
    let h = harness().await;
    let c = &h.coordinator;
    let first = c.init_producer_id(init("tx")).await.unwrap();
    let request = InitProducerIdRequest {
        producer_id: first.producer_id,
        producer_epoch: first.producer_epoch,
        ..init("tx")
    };
    let bumped = c.init_producer_id(request.clone()).await.unwrap();
    assert_eq!(bumped.producer_epoch, 1);
    assert_eq!(c.init_producer_id(request).await.unwrap(), bumped);
    let stale = InitProducerIdRequest {
        producer_id: first.producer_id + 5,
        producer_epoch: 0,
        ..init("tx")
    };
    assert_eq!(
        c.init_producer_id(stale).await,
        Err(TxnError::ProducerFenced)
    );
}

/// Kafka's `prepareIncrementProducerEpoch`: an InitProducerId without a producer id (a new
/// instance) forgets the previous epoch, so the instance it replaced cannot pass its KIP-360
/// bump off as a retry and receive the new instance's epoch.
#[tokio::test(start_paused = true)]
async fn a_fenced_instance_cannot_take_over_the_new_epoch() {
    let h = harness().await;
    let c = &h.coordinator;
    let zombie = c.init_producer_id(init("tx")).await.unwrap();
    let fresh = c.init_producer_id(init("tx")).await.unwrap();
    assert_eq!(fresh.producer_epoch, zombie.producer_epoch + 1);
    let zombie_bump = InitProducerIdRequest {
        producer_id: zombie.producer_id,
        producer_epoch: zombie.producer_epoch,
        ..init("tx")
    };
    assert_eq!(
        c.init_producer_id(zombie_bump).await,
        Err(TxnError::ProducerFenced)
    );
    c.add_partitions(
        "tx",
        fresh.producer_id,
        fresh.producer_epoch,
        &[tp("out", 0)],
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn timed_out_transactions_are_aborted_with_a_fencing_bump() {
    let h = harness().await;
    let c = &h.coordinator;
    let timers = c.spawn_timers();
    let ids = c
        .init_producer_id(InitProducerIdRequest {
            transaction_timeout_ms: 5_000,
            ..init("tx")
        })
        .await
        .unwrap();
    c.add_partitions("tx", ids.producer_id, 0, &[tp("out", 0)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert_eq!(c.describe("tx").unwrap().state, TxnState::Ongoing);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let described = c.describe("tx").unwrap();
    assert_eq!(described.state, TxnState::CompleteAbort);
    assert_eq!(described.producer_epoch, 1);
    assert_eq!(h.markers.written()[0].result, TxnResult::Abort);
    assert_eq!(
        c.end_txn("tx", ids.producer_id, 0, true).await,
        Err(TxnError::ProducerFenced)
    );
    timers.abort();
}

#[tokio::test(start_paused = true)]
async fn failing_markers_are_retried_and_block_the_next_transaction() {
    let h = harness().await;
    let c = &h.coordinator;
    let ids = c.init_producer_id(init("tx")).await.unwrap();
    let pid = ids.producer_id;
    c.add_partitions("tx", pid, 0, &[tp("out", 0), tp("out", 1)])
        .await
        .unwrap();
    h.markers.fail_partitions(vec![tp("out", 1)]);
    c.end_txn("tx", pid, 0, true).await.unwrap();
    settle().await;
    assert_eq!(c.describe("tx").unwrap().state, TxnState::PrepareCommit);
    assert_eq!(
        c.add_partitions("tx", pid, 0, &[tp("out", 0)]).await,
        Err(TxnError::ConcurrentTransactions)
    );
    assert_eq!(
        c.end_txn("tx", pid, 0, true).await,
        Err(TxnError::ConcurrentTransactions)
    );
    h.markers.fail_partitions(vec![]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.describe("tx").unwrap().state, TxnState::CompleteCommit);
    let written = h.markers.written();
    assert_eq!(written.last().unwrap().partitions, vec![tp("out", 1)]);
}

#[tokio::test(start_paused = true)]
async fn restart_reloads_state_and_resumes_prepared_transactions() {
    let h = harness().await;
    let c = &h.coordinator;
    let ids = c.init_producer_id(init("tx")).await.unwrap();
    let pid = ids.producer_id;
    c.add_partitions("tx", pid, 0, &[tp("out", 0)])
        .await
        .unwrap();
    h.markers.fail_partitions(vec![tp("out", 0)]);
    c.end_txn("tx", pid, 0, false).await.unwrap();
    settle().await;
    c.unload_all();
    let ongoing_ids = {
        let other = c.init_producer_id(init("other")).await;
        assert_eq!(other, Err(TxnError::NotCoordinator));
        other
    };
    drop(ongoing_ids);
    // A new coordinator over the same store ("restart"); markers now succeed.
    h.markers.fail_partitions(vec![]);
    let restarted = start(&h.store, &h.markers, &h.ids).await;
    settle().await;
    let described = restarted.describe("tx").unwrap();
    assert_eq!(described.state, TxnState::CompleteAbort);
    assert_eq!(described.producer_id, pid);
    let next = restarted.init_producer_id(init("tx")).await.unwrap();
    assert_eq!((next.producer_id, next.producer_epoch), (pid, 1));
    // The stored records are Kafka's: the last value for "tx" decodes to Empty, epoch 1.
    let partition = restarted.partition_for("tx");
    let last = h.store.records(partition).last().cloned().unwrap();
    assert_eq!(records::decode_key(&last.key).unwrap(), "tx");
    let value = records::decode_value(&last.value.unwrap()).unwrap();
    assert_eq!(value.state, TxnState::Empty);
    assert_eq!(value.producer_epoch, 1);
}

#[tokio::test(start_paused = true)]
async fn store_failures_leave_state_unchanged() {
    let h = harness().await;
    let c = &h.coordinator;
    h.store
        .fail_appends(Some(StoreError::Unavailable("full".into())));
    assert_eq!(
        c.init_producer_id(init("tx")).await,
        Err(TxnError::CoordinatorNotAvailable)
    );
    assert_eq!(c.describe("tx"), Err(TxnError::TransactionalIdNotFound));
    h.store.fail_appends(None);
    let ids = c.init_producer_id(init("tx")).await.unwrap();
    h.store
        .fail_appends(Some(StoreError::Failed("disk".into())));
    assert!(c
        .add_partitions("tx", ids.producer_id, 0, &[tp("out", 0)])
        .await
        .is_err());
    assert_eq!(c.describe("tx").unwrap().state, TxnState::Empty);
}

#[tokio::test(start_paused = true)]
async fn list_filters_and_expiry() {
    let h = harness().await;
    let c = &h.coordinator;
    let a = c.init_producer_id(init("a")).await.unwrap();
    c.init_producer_id(init("b")).await.unwrap();
    c.add_partitions("a", a.producer_id, 0, &[tp("out", 0)])
        .await
        .unwrap();
    assert_eq!(c.list(&[], &[], -1).len(), 2);
    let ongoing = c.list(&[TxnState::Ongoing], &[], -1);
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0].transactional_id, "a");
    assert_eq!(c.list(&[], &[a.producer_id], -1).len(), 1);
    tokio::time::sleep(Duration::from_millis(8 * 24 * 3600 * 1000)).await;
    assert_eq!(c.expire_transactional_ids().await, 1);
    assert_eq!(c.describe("b"), Err(TxnError::TransactionalIdNotFound));
    let partition = c.partition_for("b");
    let records = h.store.records(partition);
    assert!(records.last().unwrap().value.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_resumes_prepared_transactions_with_its_leader_epoch_as_coordinator_epoch() {
    let h = harness().await;
    let c = &h.coordinator;
    let ids = c.init_producer_id(init("tx")).await.unwrap();
    let pid = ids.producer_id;
    c.add_partitions("tx", pid, 0, &[tp("out", 0)])
        .await
        .unwrap();
    h.markers.fail_partitions(vec![tp("out", 0)]);
    c.end_txn("tx", pid, 0, true).await.unwrap();
    settle().await;
    assert!(h.markers.written().is_empty(), "the marker keeps failing");
    // Leadership of the id's partition moves away: only that partition stops answering.
    let partition = c.partition_for("tx");
    c.unload_partition(partition);
    assert_eq!(c.describe("tx"), Err(TxnError::NotCoordinator));
    let elsewhere = (0..)
        .map(|n| format!("other-{n}"))
        .find(|id| c.partition_for(id) != partition)
        .unwrap();
    c.init_producer_id(init(&elsewhere)).await.unwrap();
    // Another broker becomes leader at epoch 7 and loads the partition from the same log: its
    // markers carry coordinator epoch 7, so leaders fence the old coordinator's.
    h.markers.fail_partitions(vec![]);
    let new_leader = TransactionCoordinator::new(
        TxnConfig::default(),
        Arc::new(h.store.clone()),
        Arc::new(h.markers.clone()),
        Arc::new(h.ids.clone()),
    );
    new_leader.load_partition(partition, 7).await.unwrap();
    settle().await;
    assert_eq!(
        new_leader.describe("tx").unwrap().state,
        TxnState::CompleteCommit
    );
    let last = h.markers.written().last().cloned().unwrap();
    assert_eq!((last.producer_id, last.coordinator_epoch), (pid, 7));
    // The old coordinator's stale ownership writes nothing more.
    let count = h.markers.written().len();
    // A fixed wait on purpose (virtual time: the test's clock is paused, so this only lets every
    // retry timer of the old coordinator fire): what is tested is that nothing is written.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(h.markers.written().len(), count);
}
