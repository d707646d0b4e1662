// An idempotent kafkajs producer keeps sending while the test harness kills (SIGKILL) and
// restarts the broker: retries of batches the broker had already written must not duplicate
// them. Prints READY when it starts sending; the harness restarts the broker meanwhile.
//
//     node kafkajs_idempotent_restart.js <bootstrap> <topic-prefix>
'use strict'
const path = require('path')
const { kafka, step, topicName, assertEq, main, createTopics, withTimeout, sleep } =
  require(path.join(__dirname, '..', 'node', 'common'))

const MESSAGES = Number(process.env.QUILL_TXN_MESSAGES || 400)
const PARTITIONS = 2

main(async () => {
  const client = kafka('txn-idempotent', { retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 30 } })
  const topic = topicName('idem')
  step('create')
  await createTopics(client, [{ topic, numPartitions: PARTITIONS }])
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  step('produce')
  console.log('READY')
  try {
    // Several sends in flight at once (one request per partition at a time), so a kill is
    // likely to land between an append and its acknowledgement.
    for (let i = 0; i < MESSAGES; i += 4) {
      const batch = []
      for (let j = i; j < Math.min(i + 4, MESSAGES); j++) {
        batch.push(producer.send({ topic, acks: -1, messages: [{ key: `k${j % 7}`, value: `v-${j}` }] }))
      }
      await Promise.all(batch)
      await sleep(10)
    }
  } finally {
    await producer.disconnect()
  }

  step('consume')
  const consumer = client.consumer({ groupId: `${topic}-check`, maxWaitTimeInMs: 100 })
  const seen = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let done
    const enough = new Promise(resolve => { done = resolve })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString())
        if (seen.length >= MESSAGES) done()
      }
    })
    await withTimeout(enough, 60000, `reading ${MESSAGES} values`)
    await sleep(1500)
  } finally {
    await consumer.disconnect()
  }
  const counts = new Map()
  for (const value of seen) counts.set(value, (counts.get(value) || 0) + 1)
  const duplicates = [...counts].filter(([, count]) => count > 1).map(([value]) => value)
  assertEq(duplicates, [], 'duplicated values')
  const expected = Array.from({ length: MESSAGES }, (_, i) => `v-${i}`).sort()
  assertEq([...counts.keys()].sort(), expected, 'every value exactly once')
})
