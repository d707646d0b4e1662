// Scenario 7: kafkajs batch consumption (eachBatch with resolveOffset, heartbeat,
// commitOffsetsIfNecessary, eachBatchAutoResolve off) and pause/resume of a topic.
'use strict'
const { kafka, step, topicName, assert, assertEq, main, withTimeout, sleep, createTopics } = require('./common')

const COUNT = 60

main(async () => {
  const client = kafka('compat-batch')
  const topic = topicName('batch')
  const groupId = `${topic}-group`
  step('create')
  await createTopics(client, [{ topic, numPartitions: 2 }])

  step('produce')
  const producer = client.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < COUNT; i++) messages.push({ key: `k${i % 6}`, value: String(i) })
  await producer.send({ topic, messages })

  step('each-batch')
  const consumer = client.consumer({ groupId, retry: { retries: 5 }, maxWaitTimeInMs: 500 })
  let fail
  const crashed = new Promise((resolve, reject) => { fail = reject })
  crashed.catch(() => {}) // handled where raced
  consumer.on(consumer.events.CRASH, event => fail(event.payload.error))
  const seen = []
  let batches = 0
  let paused = false
  let seenWhilePaused = 0
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        batches += 1
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break
          if (paused) seenWhilePaused += 1
          seen.push(Number(message.value.toString()))
          resolveOffset(message.offset)
          await heartbeat()
        }
        await commitOffsetsIfNecessary()
      }
    })
    const waitFor = async (condition, what) => {
      const deadline = Date.now() + 30000
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${seen.length} seen)`)
        await Promise.race([sleep(100), crashed])
      }
    }
    await waitFor(() => seen.length >= COUNT, `${COUNT} messages`)
    assertEq([...seen].sort((a, b) => a - b), [...Array(COUNT).keys()], 'every message once')
    console.log(`${seen.length} messages in ${batches} batches`)

    step('commit')
    // The last commitOffsetsIfNecessary may still be in flight: poll the group's offsets.
    const admin = client.admin()
    await admin.connect()
    let committed
    let total = -1
    try {
      for (let attempt = 0; attempt < 50 && total !== COUNT; attempt++) {
        if (attempt > 0) await sleep(200)
        ;[committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
        total = committed.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0)
      }
    } finally {
      await admin.disconnect()
    }
    assertEq(total, COUNT, `committed offsets ${JSON.stringify(committed)}`)

    step('pause-resume')
    consumer.pause([{ topic }])
    await sleep(1500)
    paused = true
    await producer.send({ topic, messages: [{ key: 'k0', value: String(COUNT) }, { key: 'k1', value: String(COUNT + 1) }] })
    await Promise.race([sleep(2000), crashed])
    assertEq(seenWhilePaused, 0, 'messages delivered while paused')
    assert(consumer.paused().length === 1, `paused() = ${JSON.stringify(consumer.paused())}`)
    paused = false
    consumer.resume([{ topic }])
    await waitFor(() => seen.length >= COUNT + 2, 'the messages produced while paused')
  } finally {
    await withTimeout(consumer.disconnect(), 10000, 'consumer.disconnect').catch(() => {})
    await producer.disconnect()
  }
})
