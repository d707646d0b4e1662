// The admin views of a consumer group through kafkajs's admin client, driven by
// crates/quill/tests/group_clients.rs.
//
//   node admin.js <bootstrap> <topic> <group> <partition:offset,...>
//
// Joins <group> with one member (clientId quill-admin-js), commits the given offsets, then
// prints GROUP/STATE/ASSIGNOR/MEMBER/COMMITTED/LAG lines from listGroups, describeGroups (assignments decoded),
// fetchOffsets and lag from fetchTopicOffsets, and disconnects. Every wait is bounded.
'use strict'
const path = require('path')
const { Kafka, logLevel, AssignerProtocol } = require(path.join(__dirname, '..', 'node', 'node_modules', 'kafkajs'))

const [bootstrap, topic, groupId, spec] = process.argv.slice(2)
const commits = spec.split(',').map(item => item.split(':').map(Number))

async function main () {
  const bound = setTimeout(() => { console.log('ERROR timed out'); process.exit(1) }, 60000)
  const kafka = new Kafka({ clientId: 'quill-admin-js', brokers: [bootstrap], logLevel: logLevel.WARN })
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 })
  let joined
  const join = new Promise(resolve => { joined = resolve })
  consumer.on(consumer.events.GROUP_JOIN, () => joined())
  await consumer.connect()
  await consumer.subscribe({ topics: [topic] })
  await consumer.run({ autoCommit: false, eachMessage: async () => {} })
  await join
  await consumer.commitOffsets(commits.map(([partition, offset]) => ({ topic, partition, offset: String(offset) })))

  const admin = kafka.admin()
  await admin.connect()
  const listed = await admin.listGroups()
  const described = (await admin.describeGroups([groupId])).groups[0]
  const offsets = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions
  const highs = await admin.fetchTopicOffsets(topic)
  const high = partition => Number(highs.find(h => h.partition === partition).high)
  for (const g of listed.groups.slice().sort((a, b) => a.groupId.localeCompare(b.groupId))) console.log(`GROUP ${g.groupId} ${g.protocolType}`)
  console.log(`STATE ${described.state}`)
  console.log(`ASSIGNOR ${described.protocol}`)
  for (const m of described.members) {
    const partitions = (AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment[topic] || []).slice().sort((a, b) => a - b)
    console.log(`MEMBER ${m.clientId} ${m.memberId} ${m.clientHost} ${partitions.join(',') || '-'}`)
  }
  for (const p of offsets) {
    console.log(`COMMITTED ${p.partition} ${p.offset}`)
    console.log(`LAG ${p.partition} ${high(p.partition) - Number(p.offset)}`)
  }
  await admin.disconnect()
  await consumer.disconnect()
  clearTimeout(bound)
  process.exit(0)
}

main().catch(error => { console.log(`ERROR ${error.stack || error}`); process.exit(1) })
