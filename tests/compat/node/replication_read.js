// kafkajs reads a replicated topic end to end (crates/quill/tests/replication.rs).
// usage: node replication_read.js <bootstrap> <topic> <count>
// Partition 0 must hold exactly <count> records, value "<n>" at offset n. Its consumer group
// lives in the replicated __consumer_offsets. Exits 0 on success, 1 with the client's error.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const DEADLINE_MS = 60000

async function main () {
  const [bootstrap, topic, countText] = process.argv.slice(2)
  const count = Number(countText)
  const kafka = new Kafka({
    clientId: 'replication-reader',
    brokers: bootstrap.split(','),
    logLevel: logLevel.WARN,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 8 }
  })
  const consumer = kafka.consumer({ groupId: `replication-${topic}` })
  await consumer.connect()
  try {
    const records = []
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out with ${records.length}/${count} records`)), DEADLINE_MS)
      consumer.on(consumer.events.CRASH, event => { clearTimeout(timer); reject(event.payload.error) })
      consumer.run({
        eachMessage: async ({ message }) => {
          records.push([Number(message.offset), message.value.toString()])
          if (records.length >= count) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
    records.sort((a, b) => a[0] - b[0])
    for (let i = 0; i < count; i++) {
      const [offset, value] = records[i] || []
      if (offset !== i || value !== `${i}`) {
        throw new Error(`record ${i} is ${JSON.stringify(records[i])}`)
      }
    }
    console.log(`kafkajs read ${topic}: ${records.length} records at offsets 0..${count - 1}`)
  } finally {
    await consumer.disconnect()
  }
}

main().catch(error => { console.error(error); process.exit(1) })
