// Scenario 6: replay. Offsets by time (ListOffsets with a timestamp) and earliest/latest through
// the admin client; seek a consumer to an offset and to the offset found by time; reset a
// group's offsets to earliest and re-consume.
'use strict'
const { kafka, step, topicName, assert, assertEq, main, withTimeout, createTopics } = require('./common')

const COUNT = 20
const T0 = 1700000000000

// Runs a group consumer on `topic`, seeking to `seekTo` (if given) once it is running, and
// collects `count` messages.
async function readFrom (client, topic, groupId, count, seekTo) {
  const consumer = client.consumer({ groupId, retry: { retries: 5 }, maxWaitTimeInMs: 500 })
  const seen = []
  let finish, fail
  const finished = new Promise((resolve, reject) => { finish = resolve; fail = reject })
  finished.catch(() => {}) // handled where awaited
  consumer.on(consumer.events.CRASH, event => fail(event.payload.error))
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ message }) => {
        seen.push({ offset: Number(message.offset), value: JSON.parse(message.value.toString()) })
        if (seen.length >= count) finish()
      }
    })
    if (seekTo !== undefined) consumer.seek({ topic, partition: 0, offset: String(seekTo) })
    await withTimeout(finished, 30000, `reading ${count} messages of ${topic} (group ${groupId})`)
  } finally {
    await consumer.disconnect()
  }
  return seen
}

main(async () => {
  const client = kafka('compat-replay')
  const topic = topicName('replay')
  step('create')
  await createTopics(client, [{ topic, numPartitions: 1 }])

  step('produce')
  const producer = client.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < COUNT; i++) messages.push({ value: JSON.stringify({ i }), timestamp: String(T0 + i * 1000) })
  await producer.send({ topic, messages })
  await producer.disconnect()

  const admin = client.admin()
  await admin.connect()
  let byTime
  try {
    step('list-offsets')
    const [offsets] = await admin.fetchTopicOffsets(topic)
    console.log('offsets', JSON.stringify(offsets))
    assertEq([offsets.low, offsets.high], ['0', String(COUNT)], 'earliest/latest offsets')

    step('offsets-by-time')
    const [found] = await admin.fetchTopicOffsetsByTimestamp(topic, T0 + 10500)
    assertEq(found.offset, '11', 'offset of the first message at or after T0+10.5s')
    const [past] = await admin.fetchTopicOffsetsByTimestamp(topic, T0 + COUNT * 1000 + 1)
    console.log('after the last timestamp', JSON.stringify(past))
    byTime = Number(found.offset)
  } finally {
    await admin.disconnect()
  }

  step('seek')
  const fromSeven = await readFrom(client, topic, `${topic}-seek`, 3, 7)
  assertEq(fromSeven.map(m => m.value.i), [7, 8, 9], 'after seek to offset 7')
  const fromTime = await readFrom(client, topic, `${topic}-seek-time`, 2, byTime)
  assertEq(fromTime.map(m => m.value.i), [11, 12], 'after seek to the offset found by time')

  step('group-reset')
  const group = `${topic}-group`
  const first = await readFrom(client, topic, group, COUNT)
  assertEq(first.length, COUNT, 'first pass')
  const resetAdmin = client.admin()
  await resetAdmin.connect()
  try {
    const committed = await resetAdmin.fetchOffsets({ groupId: group, topics: [topic] })
    console.log('committed', JSON.stringify(committed))
    await resetAdmin.resetOffsets({ groupId: group, topic, earliest: true })
  } finally {
    await resetAdmin.disconnect()
  }
  const again = await readFrom(client, topic, group, COUNT)
  assertEq(again.map(m => m.value.i), [...Array(COUNT).keys()], 're-consumed after reset to earliest')
  assert(again[0].offset === 0, 'starts at offset 0')
})
