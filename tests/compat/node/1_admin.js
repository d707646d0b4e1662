// Scenario 1, admin: create a 3-partition topic, list it, describe it (partitions, leader),
// add partitions, create it again (already exists), delete it; describe and alter a topic's
// configs; delete records below an offset.
'use strict'
const { kafka, step, topicName, assert, assertEq, main, sleep } = require('./common')
const { ConfigResourceTypes } = require('kafkajs')

main(async () => {
  const client = kafka('compat-admin')
  const admin = client.admin()
  await admin.connect()
  const topic = topicName('admin')
  const configured = topicName('admin-configs')
  try {
    step('create')
    const created = await admin.createTopics({
      topics: [
        { topic, numPartitions: 3, replicationFactor: 1 },
        { topic: configured, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }
      ],
      waitForLeaders: true,
      timeout: 10000
    })
    assertEq(created, true, 'createTopics result')

    step('list')
    const topics = await admin.listTopics()
    assert(topics.includes(topic) && topics.includes(configured), `listTopics ${JSON.stringify(topics)}`)
    console.log(`listed ${topics.length} topics`)

    step('describe')
    const cluster = await admin.describeCluster()
    const brokerIds = cluster.brokers.map(b => b.nodeId)
    console.log('cluster', JSON.stringify(cluster))
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    const partitions = metadata.topics[0].partitions.sort((a, b) => a.partitionId - b.partitionId)
    console.log('partitions', JSON.stringify(partitions))
    assertEq(partitions.map(p => p.partitionId), [0, 1, 2], 'partition ids')
    for (const p of partitions) {
      assertEq(p.partitionErrorCode, 0, `partition ${p.partitionId} error`)
      assert(brokerIds.includes(p.leader), `partition ${p.partitionId} leader ${p.leader} in ${brokerIds}`)
      assert(p.replicas.includes(p.leader) && p.isr.includes(p.leader), `replicas/isr of ${p.partitionId}`)
    }

    step('create-partitions')
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }], timeout: 10000 })
    let count = 0
    for (let i = 0; i < 20 && count !== 5; i++) {
      if (i > 0) await sleep(250)
      count = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length
    }
    assertEq(count, 5, 'partitions after createPartitions(count: 5)')

    step('create-again')
    // kafkajs resolves createTopics to false when every topic already exists.
    const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], timeout: 10000 })
    assertEq(again, false, 'createTopics of an existing topic')

    step('delete')
    await admin.deleteTopics({ topics: [topic], timeout: 10000 })
    let remaining = await admin.listTopics()
    for (let i = 0; i < 20 && remaining.includes(topic); i++) {
      await sleep(250)
      remaining = await admin.listTopics()
    }
    assert(!remaining.includes(topic), `${topic} still listed after delete`)

    step('recreate')
    // The same name again, now with 2 partitions: a new topic, not the old one's leftovers.
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true, timeout: 10000 })
    let recreated = 0
    for (let i = 0; i < 20 && recreated !== 2; i++) {
      if (i > 0) await sleep(250)
      recreated = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length
    }
    assertEq(recreated, 2, 'partitions of the recreated topic')
    const [fresh] = await admin.fetchTopicOffsets(topic)
    assertEq([fresh.low, fresh.high], ['0', '0'], 'offsets of the recreated topic')
    await admin.deleteTopics({ topics: [topic], timeout: 10000 })

    step('describe-configs')
    const described = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: configured }],
      includeSynonyms: false
    })
    const entries = described.resources[0].configEntries
    const retention = entries.find(e => e.configName === 'retention.ms')
    assert(retention, `retention.ms among ${entries.map(e => e.configName)}`)
    assertEq(retention.configValue, '3600000', 'retention.ms')

    step('alter-configs')
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: configured, configEntries: [{ name: 'retention.ms', value: '7200000' }] }]
    })
    const altered = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: configured }], includeSynonyms: false })
    assertEq(altered.resources[0].configEntries.find(e => e.configName === 'retention.ms').configValue, '7200000', 'retention.ms after alterConfigs')

    step('delete-records')
    const producer = client.producer()
    await producer.connect()
    await producer.send({ topic: configured, messages: [...Array(10).keys()].map(i => ({ value: String(i) })) })
    await producer.disconnect()
    await admin.deleteTopicRecords({ topic: configured, partitions: [{ partition: 0, offset: '4' }] })
    const [offsets] = await admin.fetchTopicOffsets(configured)
    assertEq([offsets.low, offsets.high], ['4', '10'], 'earliest/latest after deleteTopicRecords(4)')
    await admin.deleteTopics({ topics: [configured], timeout: 10000 })
  } finally {
    await admin.disconnect()
  }
})
