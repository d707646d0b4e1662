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
  // Creates __consumer_offsets now, so the check after the restart does not wait for it.
  const admin = client.admin()
  await admin.connect()
  await admin.fetchOffsets({ groupId: `${topic}-check`, topics: [topic] })
  await admin.disconnect()
  const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  step('produce')
  console.log('READY')
  try {
    // One send at a time: kafkajs rolls a partition's sequence back when a request fails, so
    // concurrent send() calls could reuse a sequence number for different records after a
    // connection loss (a client bug, not what this test is about). Each send carries records
    // for both partitions, so a kill is likely to land between an append and its answer.
    for (let i = 0; i < MESSAGES; i += 4) {
      const messages = []
      for (let j = i; j < Math.min(i + 4, MESSAGES); j++) {
        messages.push({ key: `k${j % 7}`, value: `v-${j}` })
      }
      await producer.send({ topic, acks: -1, messages })
      await sleep(5)
    }
  } finally {
    await producer.disconnect()
  }

  step('consume')
  const consumer = client.consumer({ groupId: `${topic}-check`, maxWaitTimeInMs: 100 })
  const seen = []
  const where = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let done
    const enough = new Promise(resolve => { done = resolve })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push(message.value.toString())
        where.push(`${message.value.toString()}@${partition}:${message.offset}`)
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
  const positions = where.filter(w => duplicates.includes(w.split('@')[0]))
  assertEq(duplicates, [], `duplicated values (at ${positions.join(', ')})`)
  const expected = Array.from({ length: MESSAGES }, (_, i) => `v-${i}`).sort()
  assertEq([...counts.keys()].sort(), expected, 'every value exactly once')
})
