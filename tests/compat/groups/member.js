// One consumer-group member with kafkajs, driven by crates/quill/tests/group_clients.rs.
//
//   node member.js <bootstrap> <topic> <group> [consumer options as JSON]
//
// Prints one event per line (stdout is a pipe: synchronous on Linux, so a line is written
// before eachMessage returns and kafkajs may commit the offset):
//   JOINED_MS <ms from subscribe to the first GROUP_JOIN>
//   ASSIGN <p,p|->            (the whole assignment of each generation; kafkajs is eager)
//   MSG <partition> <offset> <value>
// Stops on `leave` on stdin (disconnect: commit, LeaveGroup) or on a 120 s bound.
'use strict'
const path = require('path')
const { Kafka, logLevel } = require(path.join(__dirname, '..', 'node', 'node_modules', 'kafkajs'))

const [bootstrap, topic, groupId, optionsJson] = process.argv.slice(2)
const options = optionsJson ? JSON.parse(optionsJson) : {}
const fromBeginning = options.fromBeginning !== undefined ? options.fromBeginning : false
delete options.fromBeginning

const out = line => process.stdout.write(line + '\n')

async function main () {
  const kafka = new Kafka({ clientId: options.clientId || 'quill-group-member', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  delete options.clientId
  const consumer = kafka.consumer({ groupId, ...options })
  let started = null
  let joined = false
  consumer.on(consumer.events.GROUP_JOIN, event => {
    if (!joined) {
      joined = true
      out(`JOINED_MS ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)}`)
    }
    const partitions = (event.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    out(`ASSIGN ${partitions.join(',') || '-'}`)
  })
  consumer.on(consumer.events.CRASH, event => out(`ERROR ${event.payload.error}`))
  await consumer.connect()
  started = process.hrtime.bigint()
  await consumer.subscribe({ topics: [topic], fromBeginning })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out(`MSG ${partition} ${message.offset} ${message.value.toString()}`)
    }
  })
  let leave
  const left = new Promise(resolve => { leave = resolve })
  process.stdin.on('data', data => { if (data.toString().includes('leave')) leave() })
  process.stdin.on('end', leave)
  const bound = setTimeout(leave, 120000)
  await left
  clearTimeout(bound)
  await consumer.disconnect()
  out('CLOSED')
  process.exit(0)
}

main().catch(error => { out(`ERROR ${error.stack || error}`); process.exit(1) })
