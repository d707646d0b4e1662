// Scenario 8: the broker is restarted mid-stream (first SIGTERM, then SIGKILL) by the runner.
// Protocol with the runner: print "RESTART-BROKER <n>" and keep producing; the runner restarts
// the broker on the same port and data dir and writes "restarted" to stdin. A producer with
// retries rides through; afterwards every acknowledged message must be readable.
'use strict'
const readline = require('readline')
const { kafka, step, topicName, assert, main, sleep, consumeFromBeginning, createTopics } = require('./common')

const PER_PHASE = 40

main(async () => {
  let restarts = 0
  readline.createInterface({ input: process.stdin }).on('line', line => {
    if (line.trim() === 'restarted') restarts += 1
  })
  const client = kafka('compat-restart', {
    retry: { initialRetryTime: 200, maxRetryTime: 1000, retries: 30 }
  })
  const topic = topicName('restart')
  step('create')
  await createTopics(client, [{ topic, numPartitions: 2 }])

  const producer = client.producer({ retry: { initialRetryTime: 200, maxRetryTime: 1000, retries: 30 } })
  await producer.connect()
  const acked = new Set()
  let next = 0
  const produceOne = async () => {
    const value = `m${next++}`
    try {
      await producer.send({ topic, messages: [{ key: value, value }] })
      acked.add(value)
    } catch (error) {
      console.log(`not acknowledged ${value}: ${error.message}`)
    }
  }
  try {
    for (let phase = 1; phase <= 2; phase++) {
      step(`produce-${phase}`)
      const target = acked.size + PER_PHASE
      while (acked.size < target) await produceOne()
      console.log(`RESTART-BROKER ${phase}`)
      const deadline = Date.now() + 60000
      while (restarts < phase) {
        assert(Date.now() < deadline, `runner did not restart the broker (${phase})`)
        await produceOne()
        await sleep(20)
      }
    }
    step('produce-after')
    const target = acked.size + PER_PHASE
    while (acked.size < target) await produceOne()
  } finally {
    await producer.disconnect()
  }
  console.log(`${acked.size} acknowledged of ${next} sent`)

  step('consume')
  const seen = new Set()
  let consumed = 0
  await consumeFromBeginning(client, topic, messages => {
    for (; consumed < messages.length; consumed++) seen.add(messages[consumed].value.toString())
    return [...acked].every(v => seen.has(v))
  }, 45000)
  const lost = [...acked].filter(v => !seen.has(v))
  assert(lost.length === 0, `acknowledged messages lost: ${lost.join(' ')}`)
})
