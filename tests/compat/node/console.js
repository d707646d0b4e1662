// The broker's web console in a real browser (Debian's chromium, headless, driven by
// playwright-core), driven by crates/quill/tests/console.rs.
// usage: node console.js <console-base-url> <topic> <screenshot-dir> <messages-topic>
// Opens the overview, clicks <topic>'s link, then the "Consumer groups" link; then opens
// <messages-topic>'s page, clicks its partition 0 "Browse" link (the latest records), submits
// the browser's form for offset 1, at most 2 records, and follows its "Next records" link;
// produces a message with its form (and a keyless one to a compacted topic, refused); then
// creates a topic with the overview's form, and submits a name Kafka refuses.
// Reads every table as text and saves a screenshot of each page. Prints one JSON document of what it read (the
// Rust test checks it against the broker's state), including any dialog a page opened, any
// script error and the <img> elements inside the pages' main content (an XSS check: the test's
// group id is markup). Exits 1 with the error on any failure; every wait is bounded.
'use strict'

const path = require('path')
const { chromium } = require('playwright-core')

const [base, topic, screenshots, messagesTopic] = process.argv.slice(2)
const TIMEOUT_MS = 20000

// As this machine's browser probe starts it: no sandbox (root), and no background networking
// (there is no network but loopback).
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

async function tables (page) {
  return page.$$eval('table', (elements) => Object.fromEntries(elements.map((table) => [
    table.id,
    {
      headers: [...table.querySelectorAll('thead th')].map((th) => th.textContent),
      rows: [...table.querySelectorAll('tbody tr')].map((tr) =>
        [...tr.querySelectorAll('td')].map((td) => td.textContent))
    }
  ])))
}

async function read (page, name) {
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true })
  return {
    url: page.url(),
    title: await page.title(),
    heading: await page.textContent('h1'),
    tables: await tables(page),
    images: await page.$$eval('main img', (images) => images.length),
    scripts: await page.$$eval('script', (scripts) => scripts.length),
    sparklines: await page.$$eval('svg.spark polyline', (lines) =>
      lines.map((line) => line.getAttribute('points').split(' ').length))
  }
}

async function run () {
  const browser = await chromium.launch({
    executablePath: process.env.QUILL_CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: TIMEOUT_MS
  })
  const seen = { dialogs: [], errors: [] }
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } })
    page.setDefaultTimeout(TIMEOUT_MS)
    page.on('dialog', async (dialog) => {
      seen.dialogs.push(dialog.message())
      await dialog.dismiss()
    })
    page.on('pageerror', (error) => seen.errors.push(String(error)))

    const overviewResponse = await page.goto(`${base}/console`)
    seen.overviewStatus = overviewResponse.status()
    seen.csp = overviewResponse.headers()['content-security-policy'] || null
    seen.overview = await read(page, 'overview')

    await Promise.all([page.waitForURL(`**/console/topics/${topic}`), page.click(`#topics a:text-is("${topic}")`)])
    seen.topic = await read(page, 'topic')

    // Change a config of the topic, try one Quill refuses, then remove it again.
    await page.fill('#alter-name', 'retention.ms')
    await page.fill('#alter-value', '123456')
    await Promise.all([page.waitForURL(`**/console/topics/${topic}`), page.click('#alter-set')])
    seen.altered = await read(page, 'altered-config')
    await page.fill('#alter-name', 'preallocate')
    await page.fill('#alter-value', 'true')
    const [alterRefusal] = await Promise.all([
      page.waitForResponse((response) => response.request().method() === 'POST'),
      page.click('#alter-set')
    ])
    seen.alterRefusedStatus = alterRefusal.status()
    seen.alterRefused = await page.textContent('#error')
    await page.goto(`${base}/console/topics/${topic}`)
    await page.fill('#alter-name', 'retention.ms')
    await Promise.all([page.waitForURL(`**/console/topics/${topic}`), page.click('#alter-delete')])
    seen.restored = await read(page, 'restored-config')

    await Promise.all([page.waitForURL('**/console/groups'), page.click('nav a:text-is("Consumer groups")')])
    seen.groups = await read(page, 'groups')

    // Reset a group's offsets: dry run, then apply; a group with members is refused.
    const hostileGroup = seen.groups.tables.groups.rows[0][0]
    await page.selectOption('#reset-group', hostileGroup)
    await page.selectOption('#reset-topic', topic)
    await page.selectOption('#reset-to', 'earliest')
    await Promise.all([page.waitForURL('**/console/groups/reset?**'), page.click('#reset-preview')])
    seen.resetPlan = await read(page, 'reset-dry-run')
    seen.resetPlan.group = await page.textContent('#reset-group-name')
    await Promise.all([page.waitForURL('**/console/groups'), page.click('#reset-apply-button')])
    seen.afterReset = await read(page, 'after-reset')

    await page.selectOption('#reset-group', 'live')
    await page.selectOption('#reset-topic', topic)
    await page.selectOption('#reset-to', 'latest')
    await Promise.all([page.waitForURL('**/console/groups/reset?**'), page.click('#reset-preview')])
    seen.resetLive = {
      error: await page.textContent('#error'),
      applyButtons: await page.$$eval('#reset-apply-button', (buttons) => buttons.length)
    }

    await page.goto(`${base}/console/topics/${messagesTopic}`)
    await Promise.all([
      page.waitForURL(`**/console/topics/${messagesTopic}/messages?partition=0`),
      page.click('#partitions tbody tr:first-child a:text-is("Browse")')
    ])
    seen.latest = await read(page, 'messages-latest')

    await page.fill('#offset', '1')
    await page.fill('#limit', '2')
    await Promise.all([page.waitForURL(/offset=1&/), page.click('#show')])
    seen.fromOffset = await read(page, 'messages-from-offset')

    await Promise.all([page.waitForURL(/offset=3&/), page.click('#next')])
    seen.next = await read(page, 'messages-next')

    // Produce a message with the browser's form; then a keyless one to the compacted "users".
    await page.fill('#produce-key', 'from-browser')
    await page.fill('#produce-value', '{"hello":"world"}')
    await page.fill('#produce-headers', 'source=console')
    await Promise.all([page.waitForURL(/messages\?partition=0&offset=6$/), page.click('#produce-send')])
    seen.produced = await read(page, 'produced')

    await page.goto(`${base}/console/topics/users/messages`)
    await page.fill('#produce-value', 'no key')
    const [produceRefusal] = await Promise.all([
      page.waitForResponse((response) => response.request().method() === 'POST'),
      page.click('#produce-send')
    ])
    seen.produceRefusedStatus = produceRefusal.status()
    await page.waitForSelector('#error')
    seen.produceRefused = await page.textContent('#error')

    // Create a topic with the overview's form, then try a name Kafka refuses.
    await page.goto(`${base}/console`)
    await page.fill('#new-name', 'made-in-browser')
    await page.fill('#new-partitions', '2')
    await page.fill('#new-configs', 'retention.ms=60000\ncleanup.policy=compact')
    await Promise.all([page.waitForURL('**/console/topics/made-in-browser'), page.click('#create')])
    seen.created = await read(page, 'created-topic')

    // Delete it from its page: a wrong confirmation is refused, the right one deletes.
    await page.fill('#delete-confirm', 'made-in-browse')
    const [deleteRefusal] = await Promise.all([
      page.waitForResponse((response) => response.request().method() === 'POST'),
      page.click('#delete-button')
    ])
    seen.deleteRefusedStatus = deleteRefusal.status()
    seen.deleteRefused = await page.textContent('#error')
    await page.goto(`${base}/console/topics/made-in-browser`)
    await page.fill('#delete-confirm', 'made-in-browser')
    await Promise.all([page.waitForURL(`${base}/console`), page.click('#delete-button')])
    seen.afterDelete = await read(page, 'after-delete')

    await page.goto(`${base}/console`)
    await page.fill('#new-name', 'bad name!')
    const [refusal] = await Promise.all([
      page.waitForResponse((response) => response.url().endsWith('/console/topics')),
      page.click('#create')
    ])
    seen.refusedStatus = refusal.status()
    await page.waitForSelector('#error')
    seen.refused = { error: await page.textContent('#error'), ...(await read(page, 'refused-topic')) }

    const missing = await page.goto(`${base}/console/topics/no-such-topic`)
    seen.missingStatus = missing.status()
    seen.missing = await read(page, 'missing-topic')
  } finally {
    await browser.close()
  }
  process.stdout.write(JSON.stringify(seen) + '\n')
}

run().catch((error) => {
  console.error(error)
  process.exit(1)
})
