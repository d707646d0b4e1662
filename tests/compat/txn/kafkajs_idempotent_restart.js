// An idempotent kafkajs producer keeps sending while the test harness kills (SIGKILL) and
// restarts the broker: retries of batches the broker had already written must not duplicate
// them. Prints READY when it starts sending; the harness kills and restarts the broker
// meanwhile and then writes "restarted" on stdin. Sending goes on until that line has come (and
// at least QUILL_TXN_MESSAGES records were sent), so the kill always lands while records are in
// flight, however fast the machine is; only then does the check consume.
//
//     node kafkajs_idempotent_restart.js <bootstrap> <topic-prefix>
'use strict'
const path = require('path')
const { kafka, step, topicName, assertEq, main, createTopics, withTimeout, sleep, restarts } =
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
  restarts() // listen for the harness's "restarted" line from now on
  console.log('READY')
  let sent = 0
  try {
    // One send at a time: kafkajs rolls a partition's sequence back when a request fails, so
    // concurrent send() calls could reuse a sequence number for different records after a
    // connection loss (a client bug, not what this test is about). Each send carries records
    // for both partitions, so a kill is likely to land between an append and its answer.
    // Bounded by the scenario timeout of `main` if the harness never restarts the broker.
    while (sent < MESSAGES || restarts() < 1) {
      const messages = []
      for (let j = sent; j < sent + 4; j++) {
        messages.push({ key: `k${j % 7}`, value: `v-${j}` })
      }
      await producer.send({ topic, acks: -1, messages })
      sent += 4
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
        if (seen.length >= sent) done()
      }
    })
    await withTimeout(enough, 60000, `reading ${sent} values`)
    await sleep(1500)
  } finally {
    await consumer.disconnect()
  }
  const counts = new Map()
  for (const value of seen) counts.set(value, (counts.get(value) || 0) + 1)
  const duplicates = [...counts].filter(([, count]) => count > 1).map(([value]) => value)
  const positions = where.filter(w => duplicates.includes(w.split('@')[0]))
  assertEq(duplicates, [], `duplicated values (at ${positions.join(', ')})`)
  const expected = Array.from({ length: sent }, (_, i) => `v-${i}`).sort()
  assertEq([...counts.keys()].sort(), expected, 'every value exactly once')
})
