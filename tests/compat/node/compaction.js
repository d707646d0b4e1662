// Log compaction with kafkajs, driven by crates/quill/tests/compaction.rs.
// usage: node compaction.js <bootstrap> <topic> produce|verify <keys> <rounds>
// produce: <rounds> updates of key-0..key-<keys-1> (value "v-<key>-<round>"); in the last round
// every fifth key gets a tombstone (null value) instead. verify: a consumer from the beginning
// sees, for each of those keys, only the latest record (the tombstone for deleted keys), and
// fewer records than were written (the cleaner ran). Exits 0 on success, 1 with the error.
'use strict'

const { kafka, assert, withTimeout, consumeFromBeginning, main } = require('./common')

const [, topic, command, keysArg, roundsArg] = process.argv.slice(2)
const keys = Number(keysArg)
const rounds = Number(roundsArg)

function expectedLatest () {
  const latest = new Map()
  for (let key = 0; key < keys; key++) {
    latest.set(`key-${key}`, key % 5 === 0 ? null : `v-${key}-${rounds - 1}`)
  }
  return latest
}

async function produce () {
  const producer = kafka('compaction-producer').producer({ idempotent: true })
  await withTimeout(producer.connect(), 30000, 'producer.connect')
  try {
    for (let round = 0; round < rounds; round++) {
      const messages = []
      for (let key = 0; key < keys; key++) {
        const tombstone = round === rounds - 1 && key % 5 === 0
        messages.push({ key: `key-${key}`, value: tombstone ? null : `v-${key}-${round}`, partition: 0 })
      }
      await withTimeout(producer.send({ topic, messages }), 30000, `send round ${round}`)
    }
  } finally {
    await producer.disconnect()
  }
  console.log(`produced ${keys * rounds} records`)
}

async function verify () {
  const client = kafka('compaction-verifier')
  const admin = client.admin()
  await admin.connect()
  let high
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    high = Number(offsets.find(o => o.partition === 0).high)
  } finally {
    await admin.disconnect()
  }
  const messages = await consumeFromBeginning(client, topic,
    seen => seen.length > 0 && seen[seen.length - 1].offset >= high - 1, 60000)
  const latest = expectedLatest()
  const seen = new Map()
  let previous = -1
  for (const message of messages) {
    assert(message.offset > previous, `offsets in order (${message.offset} after ${previous})`)
    previous = message.offset
    const key = message.key.toString()
    if (!latest.has(key)) continue // records the test harness added to roll segments
    assert(!seen.has(key), `${key} appears twice (offsets ${seen.has(key) && seen.get(key).offset} and ${message.offset}): not compacted`)
    seen.set(key, { offset: message.offset, value: message.value === null ? null : message.value.toString() })
  }
  for (const [key, value] of latest) {
    assert(seen.has(key), `${key} is missing`)
    assert(seen.get(key).value === value, `${key}: ${seen.get(key).value}, expected ${value}`)
  }
  assert(messages.length < keys * rounds, `${messages.length} records: nothing was cleaned`)
  console.log(`verified ${seen.size} keys in ${messages.length} records`)
}

main(command === 'produce' ? produce : verify)
