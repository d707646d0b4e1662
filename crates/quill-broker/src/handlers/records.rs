//! DeleteRecords: move a partition's log start offset forward (offset -1 = high watermark).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::state::BrokerState;

/// DeleteRecords offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn delete_records(
    state: &BrokerState,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for requested in topic.partitions {
            let index = requested.partition_index;
            let result = DeleteRecordsPartitionResult::default().with_partition_index(index);
            let Some(partition) = state.partitions.get(topic.name.0.as_str(), index) else {
                let code = super::unhosted_partition_error(
                    &state.image(),
                    state.config.node_id,
                    topic.name.0.as_str(),
                    index,
                );
                partitions.push(result.with_low_watermark(-1).with_error_code(code));
                continue;
            };
            let high_watermark = partition.offsets().high_watermark;
            let target = if requested.offset == HIGH_WATERMARK {
                high_watermark
            } else {
                requested.offset
            };
            if target < 0 || target > high_watermark {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::OffsetOutOfRange.code()),
                );
                continue;
            }
            partitions.push(match partition.delete_records_before(target).await {
                Ok(new_start) => result.with_low_watermark(new_start),
                Err(error) => result
                    .with_low_watermark(-1)
                    .with_error_code(error.kafka_error_code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
