// Shared helpers of the kafkajs scenarios: arguments, bounded waits, steps, Java's murmur2.
// Every scenario is `node <file> <bootstrap> <topic-prefix>` (or QUILL_BOOTSTRAP /
// QUILL_TOPIC_PREFIX), prints what it does, exits 0 on success and 1 with the client's error.
'use strict'

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')

// kafkajs ships only gzip; snappy and lz4 are the documented plugin codecs (pure JS here).
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec

const bootstrap = process.argv[2] || process.env.QUILL_BOOTSTRAP || 'localhost:9092'
const prefix = process.argv[3] || process.env.QUILL_TOPIC_PREFIX || `compat-${Date.now()}`
const SCENARIO_TIMEOUT_MS = Number(process.env.QUILL_SCENARIO_TIMEOUT_MS || 90000)

function step (name) {
  console.log(`STEP ${name}`)
}

function topicName (suffix) {
  return `${prefix}-${suffix}`
}

function kafka (clientId, extra = {}) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 8 },
    ...extra
  })
}

function assert (condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`)
}

function assertEq (actual, expected, what) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`assertion failed: ${what}: expected ${e}, got ${a}`)
}

function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Java's Utils.murmur2, the default partitioner's hash (kafkajs DefaultPartitioner, librdkafka
// murmur2_random, kafka-python): computed independently here as the oracle.
function murmur2 (data) {
  const m = 0x5bd1e995
  const length = data.length
  let h = (0x9747b28c ^ length) | 0
  const blocks = length >> 2
  for (let i = 0; i < blocks; i++) {
    const o = i * 4
    let k = (data[o] | (data[o + 1] << 8) | (data[o + 2] << 16) | (data[o + 3] << 24)) | 0
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  const tail = blocks * 4
  switch (length & 3) {
    case 3: h ^= data[tail + 2] << 16 // falls through
    case 2: h ^= data[tail + 1] << 8 // falls through
    case 1:
      h ^= data[tail]
      h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

function javaPartition (key, partitions) {
  return (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions
}

// Known values of org.apache.kafka.common.utils.Utils.murmur2 (from Kafka's UtilsTest).
for (const [input, expected] of [['21', -973932308], ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536], ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107]]) {
  assertEq(murmur2(Buffer.from(input)), expected, `murmur2(${input}) self-check`)
}

// Consumes `topic` from the beginning in a fresh group until `done(messages)` is true, the
// consumer crashes (its error is thrown) or `timeoutMs` passes. Returns the messages seen,
// each { partition, offset (number), key, value, headers, timestamp }.
async function consumeFromBeginning (client, topic, done, timeoutMs = 30000, groupId) {
  const consumer = client.consumer({
    groupId: groupId || `${topic}-reader-${Date.now()}`,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 5 },
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 500
  })
  const messages = []
  let finish
  let fail
  const finished = new Promise((resolve, reject) => { finish = resolve; fail = reject })
  finished.catch(() => {}) // handled where awaited; a crash before that must not be fatal
  consumer.on(consumer.events.CRASH, event => fail(event.payload.error))
  try {
    await withTimeout(consumer.connect(), timeoutMs, 'consumer.connect')
    await withTimeout(consumer.subscribe({ topics: [topic], fromBeginning: true }), timeoutMs, 'consumer.subscribe')
    await withTimeout(consumer.run({
      eachMessage: async ({ partition, message }) => {
        messages.push({
          partition,
          offset: Number(message.offset),
          key: message.key,
          value: message.value,
          headers: message.headers,
          timestamp: Number(message.timestamp)
        })
        if (done(messages)) finish()
      }
    }), timeoutMs, 'consumer.run')
    await withTimeout(finished, timeoutMs, `consuming ${topic} (${messages.length} messages so far)`)
  } finally {
    await withTimeout(consumer.disconnect(), 10000, 'consumer.disconnect').catch(error => console.log(`disconnect: ${error.message}`))
  }
  return messages
}

async function createTopics (client, topics) {
  const admin = client.admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({ topics, waitForLeaders: true, timeout: 10000 })
    assert(created === true, `createTopics(${topics.map(t => t.topic)}) returned ${created}`)
  } finally {
    await admin.disconnect()
  }
}

// The runner's restart protocol (scenarios 5 and 8): print "RESTART-BROKER <n>"; the runner
// restarts the broker (SIGTERM for 1, SIGKILL for 2) and writes "restarted" on our stdin.
let restartCount = null
function restarts () {
  if (restartCount === null) {
    restartCount = 0
    require('readline').createInterface({ input: process.stdin }).on('line', line => {
      if (line.trim() === 'restarted') restartCount += 1
    })
  }
  return restartCount
}

async function restartBroker (phase, timeoutMs = 60000) {
  restarts()
  console.log(`RESTART-BROKER ${phase}`)
  const deadline = Date.now() + timeoutMs
  while (restarts() < phase) {
    if (Date.now() > deadline) throw new Error(`the runner did not restart the broker (${phase})`)
    await sleep(50)
  }
}

function main (scenario) {
  const timer = setTimeout(() => {
    console.error(`scenario timed out after ${SCENARIO_TIMEOUT_MS} ms`)
    process.exit(3)
  }, SCENARIO_TIMEOUT_MS)
  scenario()
    .then(() => {
      clearTimeout(timer)
      console.log('OK')
      process.exit(0)
    })
    .catch(error => {
      console.error('FAILED:', error && error.stack ? error.stack : error)
      if (error && error.cause) console.error('caused by:', error.cause)
      process.exit(1)
    })
}

module.exports = {
  restarts,
  bootstrap,
  prefix,
  step,
  topicName,
  kafka,
  assert,
  assertEq,
  withTimeout,
  sleep,
  murmur2,
  javaPartition,
  consumeFromBeginning,
  createTopics,
  restarts,
  restartBroker,
  main,
  CompressionTypes
}
