// Scenario 2: keyed JSON events, consumed from the beginning. Same key -> same partition, equal
// to Java's murmur2 partitioner for kafkajs's DefaultPartitioner (and stable for the
// LegacyPartitioner the tutorials use); an explicit partition is honoured; per-partition order.
'use strict'
const { Partitioners } = require('kafkajs')
const { kafka, step, topicName, assert, assertEq, main, sleep, javaPartition, consumeFromBeginning, createTopics } = require('./common')

const PARTITIONS = 3
const USERS = 10
const ROUNDS = 3

main(async () => {
  const client = kafka('compat-keyed')
  const topic = topicName('keyed')
  step('create')
  await createTopics(client, [{ topic, numPartitions: PARTITIONS }])

  step('produce')
  const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  const legacy = client.producer({ createPartitioner: Partitioners.LegacyPartitioner })
  await producer.connect()
  await legacy.connect()
  // One message per send, so that each acknowledgement names the partition it went to: the
  // partitioner is checked here already, before (and independently of) consuming.
  const sendOne = async (p, message) => {
    const [ack] = await p.send({ topic, messages: [message] })
    assertEq(ack.errorCode, 0, `ack of ${message.key}`)
    return ack.partition
  }
  let expected = 0
  const legacyAcked = {}
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (let user = 0; user < USERS; user++) {
        const key = `user-${user}`
        const value = JSON.stringify({ user, round, action: 'upload' })
        assertEq(await sendOne(producer, { key, value }), javaPartition(key, PARTITIONS), `acked partition of ${key} (Java murmur2)`)
        const legacyKey = `legacy-${key}`
        const partition = await sendOne(legacy, { key: legacyKey, value })
        legacyAcked[legacyKey] = legacyAcked[legacyKey] ?? partition
        assertEq(partition, legacyAcked[legacyKey], `LegacyPartitioner keeps ${legacyKey} in one partition`)
        expected += 2
      }
    }
    // Explicit partitions win over the key's hash.
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const acked = await sendOne(producer, { key: 'explicit', partition, value: JSON.stringify({ explicit: partition }) })
      assertEq(acked, partition, 'explicit partition')
      expected += 1
    }
  } finally {
    await producer.disconnect()
    await legacy.disconnect()
  }

  step('acks-0')
  // Fire and forget: nothing comes back, so watch the partition's end offset instead.
  const fireAndForget = topicName('acks0')
  await createTopics(client, [{ topic: fireAndForget, numPartitions: 1 }])
  const quick = client.producer()
  await quick.connect()
  await quick.send({ topic: fireAndForget, acks: 0, messages: [0, 1, 2, 3, 4].map(i => ({ value: `acks0-${i}` })) })
  const admin = client.admin()
  await admin.connect()
  let high = '0'
  try {
    for (let i = 0; i < 40 && high !== '5'; i++) {
      if (i > 0) await sleep(250)
      high = (await admin.fetchTopicOffsets(fireAndForget))[0].high
    }
  } finally {
    await admin.disconnect()
    await quick.disconnect()
  }
  assertEq(high, '5', 'end offset after 5 messages sent with acks=0')

  step('auto-create')
  // The tutorials' `allowAutoTopicCreation: true`: the first send creates the topic.
  const autoTopic = topicName('auto')
  const auto = client.producer({ allowAutoTopicCreation: true })
  await auto.connect()
  try {
    const [ack] = await auto.send({ topic: autoTopic, messages: [{ key: 'k', value: 'created on first send' }] })
    assertEq([ack.errorCode, ack.baseOffset], [0, '0'], 'ack of the first record of an auto-created topic')
  } finally {
    await auto.disconnect()
  }

  step('consume')
  const messages = await consumeFromBeginning(client, topic, seen => seen.length >= expected)
  assertEq(messages.length, expected, 'messages consumed')

  step('verify')
  const legacyPartition = {}
  const lastOffset = {}
  const lastRound = {}
  for (const m of messages) {
    assert(m.offset > (lastOffset[m.partition] ?? -1), `offsets increase in partition ${m.partition}`)
    lastOffset[m.partition] = m.offset
    const key = m.key.toString()
    const value = JSON.parse(m.value.toString())
    if (key === 'explicit') {
      assertEq(m.partition, value.explicit, 'explicit partition')
    } else if (key.startsWith('legacy-')) {
      legacyPartition[key] = legacyPartition[key] ?? m.partition
      assertEq(m.partition, legacyPartition[key], `legacy partitioner keeps ${key} in one partition`)
    } else {
      assertEq(m.partition, javaPartition(key, PARTITIONS), `partition of ${key} (Java murmur2)`)
      assert(value.round > (lastRound[key] ?? -1), `order of ${key}`)
      lastRound[key] = value.round
    }
  }
  console.log(`verified ${messages.length} messages`)
})
