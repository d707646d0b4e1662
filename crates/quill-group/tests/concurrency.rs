//! A thousand members joining one group at once, on a real multi-threaded runtime, while
//! another group carries on: groups do not share a lock, and group.max.size holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use quill_group::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_members_join_one_group_without_stalling_another() {
    let config = GroupConfig {
        initial_rebalance_delay_ms: 1000,
        group_max_size: 1000,
        ..GroupConfig::for_tests()
    };
    let h = harness(config).await;
    let c = &h.coordinator;
    let (small, small_generation) = stable_group(c, "small", 1).await;

    let joins: Vec<_> = (0..1000)
        .map(|i| {
            let mut request = join_request("big", "");
            request.require_known_member_id = false;
            request.client_id = format!("client-{i}");
            request.protocols = protocols(&[("range", &[7u8; 64])]);
            spawn_join(c, request)
        })
        .collect();

    // While the storm is on (its join phase lasts at least the 1 s initial delay), the other
    // group answers promptly: a shared lock would make it wait for the whole join phase.
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        let started = Instant::now();
        assert_eq!(
            c.heartbeat(heartbeat("small", &small[0], small_generation)),
            Ok(())
        );
        let committed = c
            .commit_offsets(commit(
                "small",
                &small[0],
                small_generation,
                &[("t", 0, round)],
            ))
            .await;
        assert!(all_ok(&committed));
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest small-group round trip {slowest:?}"
    );

    let mut responses = Vec::new();
    for join in joins {
        responses.push(join.await.unwrap());
    }
    assert!(responses
        .iter()
        .all(|r| r.error.is_none() && r.generation_id == 1));
    let leaders: Vec<&JoinGroupResponse> =
        responses.iter().filter(|r| !r.members.is_empty()).collect();
    assert_eq!(leaders.len(), 1);
    assert_eq!(leaders[0].members.len(), 1000);

    // group.max.size: the 1001st member is refused.
    let mut extra = join_request("big", "");
    extra.require_known_member_id = false;
    assert_eq!(
        c.join_group(extra).await.error,
        Some(GroupError::GroupMaxSizeReached(1000))
    );
    let (_, generation) = complete_sync(c, "big", responses).await;
    assert_eq!(generation, 1);
    assert_eq!(c.describe_group("big").members.len(), 1000);
}
