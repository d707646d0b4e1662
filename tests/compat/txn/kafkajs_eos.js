// Transactions with kafkajs: a consume-transform-produce step whose output records and input
// offsets (sendOffsets) become visible together on commit, and an aborted step after which a
// read_committed consumer sees no output, the group's offsets do not move, and a
// read_uncommitted consumer does see the aborted records.
//
//     node kafkajs_eos.js <bootstrap> <topic-prefix>
'use strict'
const path = require('path')
const { kafka, step, topicName, assertEq, main, createTopics, withTimeout, sleep } =
  require(path.join(__dirname, '..', 'node', 'common'))

const PARTITIONS = 2

async function readAll (client, topic, readUncommitted, expectedCount) {
  const consumer = client.consumer({
    groupId: `${topic}-reader-${readUncommitted ? 'uncommitted' : 'committed'}-${Date.now()}`,
    readUncommitted,
    maxWaitTimeInMs: 100
  })
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
    await withTimeout(enough, 30000, `reading ${expectedCount} values of ${topic}`)
    await sleep(1000) // anything beyond the expected values would arrive now
  } finally {
    await consumer.disconnect()
  }
  return values.sort()
}

async function groupOffsets (admin, groupId, topic) {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return entry.partitions
    .sort((a, b) => a.partition - b.partition)
    .map(p => Number(p.offset))
}

main(async () => {
  const client = kafka('txn-eos')
  const source = topicName('in')
  const sink = topicName('out')
  const groupId = topicName('processor')
  step('create')
  await createTopics(client, [{ topic: source, numPartitions: PARTITIONS }, { topic: sink, numPartitions: PARTITIONS }])
  const admin = client.admin()
  await admin.connect()

  const producer = client.producer({ transactionalId: topicName('txn'), idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    step('commit')
    const committed = await producer.transaction()
    await committed.send({ topic: sink, messages: [0, 1, 2, 3].map(i => ({ key: `k${i}`, value: `out-${i}` })) })
    await committed.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic: source, partitions: [{ partition: 0, offset: '4' }, { partition: 1, offset: '6' }] }]
    })
    await committed.commit()
    assertEq(await groupOffsets(admin, groupId, source), [4, 6], 'offsets after commit')

    step('abort')
    const aborted = await producer.transaction()
    await aborted.send({ topic: sink, messages: [0, 1, 2].map(i => ({ key: `k${i}`, value: `aborted-${i}` })) })
    await aborted.sendOffsets({
      consumerGroupId: groupId,
      topics: [{ topic: source, partitions: [{ partition: 0, offset: '9' }, { partition: 1, offset: '9' }] }]
    })
    await aborted.abort()
    assertEq(await groupOffsets(admin, groupId, source), [4, 6], 'offsets after abort')

    step('read')
    const committedValues = [0, 1, 2, 3].map(i => `out-${i}`)
    assertEq(await readAll(client, sink, false, committedValues.length), committedValues, 'read_committed')
    const everything = committedValues.concat([0, 1, 2].map(i => `aborted-${i}`)).sort()
    assertEq(await readAll(client, sink, true, everything.length), everything, 'read_uncommitted')

    step('next-transaction')
    const next = await producer.transaction()
    await next.send({ topic: sink, messages: [{ key: 'k9', value: 'after-abort' }] })
    await next.commit()
    assertEq(await readAll(client, sink, false, 5), committedValues.concat(['after-abort']).sort(), 'read_committed after another commit')
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})
