// kafkajs reads topics end to end, for the record-validation poison suite
// (crates/quill/tests/record_validation.rs).
// usage: node validation_read_all.js <bootstrap> <topic>=<count> ...
// Each topic's partition 0 must hold exactly <count> records at offsets 0..count-1 with values
// "v-<offset>". Exits 0 on success, 1 with the client's error.
'use strict'

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec

const DEADLINE_MS = 60000

async function readTopic (kafka, topic, count) {
  const consumer = kafka.consumer({ groupId: `validation-${topic}` })
  await consumer.connect()
  try {
    const records = []
    let failed = null
    await consumer.subscribe({ topic, fromBeginning: true })
    const done = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${topic}: timed out with ${records.length}/${count} records`)), DEADLINE_MS)
      consumer.on(consumer.events.CRASH, event => { failed = event.payload.error; clearTimeout(timer); reject(failed) })
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          records.push([Number(message.offset), message.value.toString()])
          if (records.length >= count) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
    await done
    records.sort((a, b) => a[0] - b[0])
    for (let i = 0; i < count; i++) {
      const [offset, value] = records[i] || []
      if (offset !== i || value !== `v-${i}`) {
        throw new Error(`${topic}: record ${i} is ${JSON.stringify(records[i])}`)
      }
    }
    console.log(`kafkajs read ${topic}: ${records.length} records at offsets 0..${count - 1}`)
  } finally {
    await consumer.disconnect()
  }
}

async function main () {
  const kafka = new Kafka({
    clientId: 'validation-reader',
    brokers: [process.argv[2]],
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 8 }
  })
  for (const spec of process.argv.slice(3)) {
    const at = spec.lastIndexOf('=')
    await readTopic(kafka, spec.slice(0, at), Number(spec.slice(at + 1)))
  }
}

main().then(() => process.exit(0), error => { console.error(error); process.exit(1) })
