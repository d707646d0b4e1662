// The tutorial loop with kafkajs: a consumer group reads a batch, a transactional producer
// writes the transformed records and the group's next offset (sendOffsets) and commits; the
// next run resumes exactly there. Then a batch is processed and aborted: the group's offset
// does not move, read_committed sees none of its output, read_uncommitted does.
//
//     node kafkajs_consume_transform_produce.js <bootstrap> <topic-prefix>
'use strict'
const path = require('path')
const { kafka, step, topicName, assert, assertEq, main, createTopics, withTimeout, sleep } =
  require(path.join(__dirname, '..', 'node', 'common'))

/// Runs the group's consumer until one batch was handled by `handle`; returns its result.
async function processOneBatch (client, groupId, topic, handle) {
  const consumer = client.consumer({ groupId, maxWaitTimeInMs: 100, readUncommitted: false })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let finished
    const done = new Promise(resolve => { finished = resolve })
    let handled = false
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (handled || batch.messages.length === 0) return
        handled = true
        finished(await handle(batch))
      }
    })
    return await withTimeout(done, 30000, `a batch of ${topic}`)
  } finally {
    await consumer.disconnect()
  }
}

async function readAll (client, topic, readUncommitted, expectedCount) {
  const consumer = client.consumer({ groupId: `${topic}-reader-${readUncommitted}-${Date.now()}`, readUncommitted, maxWaitTimeInMs: 100 })
  const values = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    let reached
    const enough = new Promise(resolve => { reached = resolve })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (values.length >= expectedCount) reached()
      }
    })
    if (expectedCount > 0) await withTimeout(enough, 30000, `reading ${expectedCount} values of ${topic}`)
    await sleep(1000)
  } finally {
    await consumer.disconnect()
  }
  return values.sort()
}

main(async () => {
  const client = kafka('txn-ctp')
  const source = topicName('ctp-in')
  const sink = topicName('ctp-out')
  const groupId = topicName('ctp-group')
  step('create')
  await createTopics(client, [{ topic: source, numPartitions: 1 }, { topic: sink, numPartitions: 1 }])
  const plain = client.producer({ idempotent: true, maxInFlightRequests: 1 })
  await plain.connect()
  await plain.send({ topic: source, messages: Array.from({ length: 10 }, (_, i) => ({ value: `in-${i}` })) })
  const admin = client.admin()
  await admin.connect()
  const producer = client.producer({ transactionalId: topicName('ctp-txn'), idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const transform = (batch, prefix) => batch.messages.map(m => ({ value: `${prefix}-${m.value.toString()}` }))
    const nextOffset = batch => String(Number(batch.messages[batch.messages.length - 1].offset) + 1)

    step('commit')
    const committed = await processOneBatch(client, groupId, source, async batch => {
      const transaction = await producer.transaction()
      const outputs = transform(batch, 'out')
      await transaction.send({ topic: sink, messages: outputs })
      await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: source, partitions: [{ partition: batch.partition, offset: nextOffset(batch) }] }] })
      await transaction.commit()
      return { outputs: outputs.map(o => o.value), next: Number(nextOffset(batch)) }
    })
    const [afterCommit] = await admin.fetchOffsets({ groupId, topics: [source] })
    assertEq(Number(afterCommit.partitions[0].offset), committed.next, 'group offset after commit')

    step('abort')
    await plain.send({ topic: source, messages: [10, 11, 12].map(i => ({ value: `in-${i}` })) })
    const aborted = await processOneBatch(client, groupId, source, async batch => {
      assertEq(Number(batch.messages[0].offset), committed.next, 'the group resumed where the transaction committed')
      const transaction = await producer.transaction()
      const outputs = transform(batch, 'aborted')
      await transaction.send({ topic: sink, messages: outputs })
      await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: source, partitions: [{ partition: batch.partition, offset: nextOffset(batch) }] }] })
      await transaction.abort()
      return { outputs: outputs.map(o => o.value) }
    })
    const [afterAbort] = await admin.fetchOffsets({ groupId, topics: [source] })
    assertEq(Number(afterAbort.partitions[0].offset), committed.next, 'group offset after abort')
    assert(aborted.outputs.length > 0, 'something was aborted')

    step('read')
    assertEq(await readAll(client, sink, false, committed.outputs.length), committed.outputs.slice().sort(), 'read_committed')
    const everything = committed.outputs.concat(aborted.outputs).sort()
    assertEq(await readAll(client, sink, true, everything.length), everything, 'read_uncommitted')
  } finally {
    await producer.disconnect()
    await plain.disconnect()
    await admin.disconnect()
  }
})
