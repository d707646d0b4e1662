// Scenario 3: headers, null keys, null and empty values, client CreateTime timestamps, a
// LogAppendTime topic, and a value just under / over the topic's max.message.bytes.
'use strict'
const { kafka, step, topicName, assert, assertEq, main, consumeFromBeginning, createTopics } = require('./common')

const MAX_MESSAGE_BYTES = 20000
const CLIENT_TIMESTAMP = 1600000000123

main(async () => {
  const client = kafka('compat-records')
  const topic = topicName('records')
  const appendTime = topicName('append-time')
  const limited = topicName('limited')
  step('create')
  await createTopics(client, [
    { topic, numPartitions: 1 },
    { topic: appendTime, numPartitions: 1, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] },
    { topic: limited, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) }] }
  ])

  step('produce')
  const producer = client.producer()
  await producer.connect()
  const before = Date.now()
  try {
    await producer.send({
      topic,
      messages: [
        { key: 'with-headers', value: 'h', headers: { source: 'my-app', version: '1.0', empty: '' } },
        { key: null, value: 'no key' },
        { key: 'tombstone', value: null },
        { key: 'empty', value: '' },
        { key: 'timestamped', value: 't', timestamp: String(CLIENT_TIMESTAMP) }
      ]
    })
    await producer.send({ topic: appendTime, messages: [{ key: 'a', value: 'x', timestamp: String(CLIENT_TIMESTAMP) }] })

    step('max-message-bytes')
    // A batch of one record carries ~80 bytes of framing around the value.
    await producer.send({ topic: limited, messages: [{ value: Buffer.alloc(MAX_MESSAGE_BYTES - 200, 'a') }] })
    let rejected = null
    try {
      await producer.send({ topic: limited, messages: [{ value: Buffer.alloc(MAX_MESSAGE_BYTES + 1000, 'b') }] })
    } catch (error) {
      rejected = error
    }
    assert(rejected, 'a value over max.message.bytes was accepted')
    console.log(`over-limit value rejected: ${rejected.name}: ${rejected.message}`)
    assert(/too large|MESSAGE_TOO_LARGE|larger than/i.test(`${rejected.message} ${rejected.type}`), `unclear error ${rejected.message}`)
  } finally {
    await producer.disconnect()
  }

  step('consume')
  const records = await consumeFromBeginning(client, topic, seen => seen.length >= 5)
  assertEq(records.length, 5, 'records consumed')
  const [headers, nullKey, tombstone, empty, timestamped] = records
  assertEq(headers.key.toString(), 'with-headers', 'key')
  assertEq(Object.fromEntries(Object.entries(headers.headers).map(([k, v]) => [k, v.toString()])),
    { source: 'my-app', version: '1.0', empty: '' }, 'headers')
  assertEq(nullKey.key, null, 'null key')
  assertEq(nullKey.value.toString(), 'no key', 'value of the null-key record')
  assertEq(tombstone.value, null, 'null value')
  assert(empty.value !== null && empty.value.length === 0, `empty value came back as ${empty.value}`)
  assertEq(timestamped.timestamp, CLIENT_TIMESTAMP, 'CreateTime timestamp given by the client')

  step('consume-append-time')
  const [stamped] = await consumeFromBeginning(client, appendTime, seen => seen.length >= 1)
  assert(stamped.timestamp >= before - 1000 && stamped.timestamp <= Date.now() + 1000,
    `LogAppendTime timestamp ${stamped.timestamp} is not the broker's clock (client sent ${CLIENT_TIMESTAMP})`)

  step('consume-limited')
  const [big] = await consumeFromBeginning(client, limited, seen => seen.length >= 1)
  assertEq(big.value.length, MAX_MESSAGE_BYTES - 200, 'size of the value just under the limit')
})
