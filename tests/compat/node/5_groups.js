// Scenario 5: consumer groups as a black box. Two members of one group split the partitions,
// a second group gets everything too (fan-out), committed offsets survive the members leaving,
// when a member leaves the other one takes over its partitions (rebalance), and committed
// offsets survive broker restarts (SIGTERM, then SIGKILL; the runner restarts the broker).
'use strict'
const { kafka, step, topicName, assert, assertEq, main, sleep, createTopics, restartBroker } = require('./common')

const PARTITIONS = 4
const COUNT = 40

function memberOf (client, groupId, topic, label, log) {
  const consumer = client.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 15000, maxWaitTimeInMs: 300, retry: { retries: 5 } })
  const state = { consumer, seen: [], assigned: [], crashed: null }
  consumer.on(consumer.events.GROUP_JOIN, event => {
    state.assigned = (event.payload.memberAssignment[topic] || []).slice().sort()
    log(`${label} joined, assigned ${JSON.stringify(state.assigned)}`)
  })
  consumer.on(consumer.events.CRASH, event => { state.crashed = event.payload.error })
  state.start = async () => {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        state.seen.push({ partition, value: message.value.toString() })
      }
    })
  }
  return state
}

async function until (condition, what, members) {
  const deadline = Date.now() + 40000
  while (!condition()) {
    for (const m of members) if (m.crashed) throw m.crashed
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

main(async () => {
  const client = kafka('compat-groups')
  const topic = topicName('groups')
  const log = line => console.log(line)
  step('create')
  await createTopics(client, [{ topic, numPartitions: PARTITIONS }])
  const producer = client.producer()
  await producer.connect()
  const produce = async (from, to) => {
    const messages = []
    for (let i = from; i < to; i++) messages.push({ value: String(i), partition: i % PARTITIONS })
    await producer.send({ topic, messages })
  }
  await produce(0, COUNT)

  step('same-group-splits')
  const groupA = `${topic}-a`
  const a1 = memberOf(client, groupA, topic, 'a1', log)
  const a2 = memberOf(client, groupA, topic, 'a2', log)
  await a1.start()
  await a2.start()
  await until(() => a1.assigned.length + a2.assigned.length === PARTITIONS && a1.assigned.length > 0 && a2.assigned.length > 0,
    'two members sharing the partitions', [a1, a2])
  await until(() => a1.seen.length + a2.seen.length >= COUNT, `${COUNT} messages across group A`, [a1, a2])
  const overlap = a1.assigned.filter(p => a2.assigned.includes(p))
  assertEq(overlap, [], 'partitions assigned to both members')
  assertEq([...a1.seen, ...a2.seen].map(m => Number(m.value)).sort((x, y) => x - y), [...Array(COUNT).keys()], 'group A saw each message once')

  step('fan-out')
  const b = memberOf(client, `${topic}-b`, topic, 'b', log)
  await b.start()
  await until(() => b.seen.length >= COUNT, 'group B to see every message', [b])
  await b.consumer.disconnect()

  step('rebalance-on-leave')
  await a2.consumer.disconnect()
  await until(() => a1.assigned.length === PARTITIONS, 'a1 to take over every partition', [a1])

  step('commits-survive')
  await a1.consumer.disconnect()
  await produce(COUNT, COUNT + 8)
  const a3 = memberOf(client, groupA, topic, 'a3', log)
  await a3.start()
  await until(() => a3.seen.length >= 8, 'the 8 messages produced after the group left', [a3])
  await sleep(1000)
  assertEq(a3.seen.map(m => Number(m.value)).sort((x, y) => x - y), [...Array(8).keys()].map(i => COUNT + i), 'resumed from the committed offsets')
  await a3.consumer.disconnect()
  await producer.disconnect()

  let next = COUNT + 8
  for (const phase of [1, 2]) {
    step(`commits-survive-restart-${phase}`)
    await restartBroker(phase)
    const fresh = client.producer()
    await fresh.connect()
    const messages = []
    for (let i = next; i < next + 4; i++) messages.push({ value: String(i), partition: i % PARTITIONS })
    await fresh.send({ topic, messages })
    await fresh.disconnect()
    const m = memberOf(client, groupA, topic, `after-restart-${phase}`, log)
    await m.start()
    await until(() => m.seen.length >= 4, `the 4 messages produced after restart ${phase}`, [m])
    await sleep(1000)
    assertEq(m.seen.map(x => Number(x.value)).sort((x, y) => x - y), [next, next + 1, next + 2, next + 3],
      `group ${groupA} resumed from its committed offsets after restart ${phase}`)
    await m.consumer.disconnect()
    next += 4
  }
  assert(true, 'done')
})
