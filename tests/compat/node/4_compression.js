// Scenario 4: compressed batches (gzip built in; snappy and lz4 through the kafkajs-snappy and
// kafkajs-lz4 plugins), each its own batch, all mixed with an uncompressed one in one partition.
// zstd: kafkajs has no pure-JS zstd codec (@kafkajs/zstd needs a native zstd build), not run.
'use strict'
const { kafka, step, topicName, assertEq, main, consumeFromBeginning, createTopics, CompressionTypes } = require('./common')

const CODECS = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4]]
const PER_CODEC = 25

main(async () => {
  const client = kafka('compat-compression')
  const topic = topicName('compression')
  step('create')
  await createTopics(client, [{ topic, numPartitions: 1 }])

  const producer = client.producer()
  await producer.connect()
  const expected = []
  try {
    for (const [name, compression] of CODECS) {
      step(`produce-${name}`)
      const messages = []
      for (let i = 0; i < PER_CODEC; i++) {
        const value = JSON.stringify({ codec: name, i, text: 'compressible '.repeat(20) })
        messages.push({ key: `${name}-${i}`, value })
        expected.push(value)
      }
      await producer.send({ topic, compression, messages })
    }
  } finally {
    await producer.disconnect()
  }

  step('consume')
  const messages = await consumeFromBeginning(client, topic, seen => seen.length >= expected.length)
  assertEq(messages.map(m => m.value.toString()), expected, 'values in order')
  assertEq(messages.map(m => m.offset), expected.map((_, i) => i), 'offsets')
  console.log(`consumed ${messages.length} messages from ${CODECS.length} codecs`)
})
