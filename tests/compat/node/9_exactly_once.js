// Scenario 9 (from the tutorials): an idempotent producer (`idempotent: true`), transactions
// committed and aborted (`producer.transaction()`), a read_committed consumer that sees only
// committed data, and `transaction.sendOffsets` for a consume-transform-produce loop.
'use strict'
const { kafka, step, topicName, assertEq, main, consumeFromBeginning, createTopics } = require('./common')

main(async () => {
  const client = kafka('compat-eos')
  const topic = topicName('eos')
  step('create')
  await createTopics(client, [{ topic, numPartitions: 1 }])

  step('idempotent')
  const idempotent = client.producer({ idempotent: true, maxInFlightRequests: 1 })
  await idempotent.connect()
  try {
    await idempotent.send({ topic, acks: -1, messages: [0, 1, 2, 3, 4].map(i => ({ value: `idempotent-${i}` })) })
  } finally {
    await idempotent.disconnect()
  }

  step('transactional')
  const producer = client.producer({ transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    const committed = await producer.transaction()
    await committed.send({ topic, messages: [0, 1, 2].map(i => ({ value: `committed-${i}` })) })
    await committed.commit()
    const aborted = await producer.transaction()
    await aborted.send({ topic, messages: [0, 1, 2].map(i => ({ value: `aborted-${i}` })) })
    await aborted.abort()

    step('consume')
    const expected = [0, 1, 2, 3, 4].map(i => `idempotent-${i}`).concat([0, 1, 2].map(i => `committed-${i}`))
    const seen = await consumeFromBeginning(client, topic, messages => messages.length >= expected.length)
    assertEq(seen.map(m => m.value.toString()), expected, 'read_committed sees committed data only')

    step('send-offsets')
    const transaction = await producer.transaction()
    await transaction.send({ topic, messages: [{ value: 'with-offsets' }] })
    await transaction.sendOffsets({ consumerGroupId: `${topic}-processor`, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] })
    await transaction.commit()
  } finally {
    await producer.disconnect()
  }
})
