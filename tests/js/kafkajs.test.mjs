// kafkajs 2.2 (pure JavaScript, its own protocol code: ApiVersions v0-2, Produce <= 7,
// Fetch <= 11, Metadata <= 6, older group API versions) against a real broker process.
// Run: TRIBUTARY_BIN=path/to/tributary node --test tests/js/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';

const { Kafka, logLevel, CompressionTypes } = kafkajs;
const BIN = process.env.TRIBUTARY_BIN ?? `${process.env.HOME}/.cache/tributary/target/debug/tributary`;
let broker;
let kafka;
let logPath;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-js-'));
  const portFile = join(dir, 'port');
  logPath = join(dir, 'broker.log');
  const log = openSync(logPath, 'a');
  broker = spawn(BIN, ['broker', '--standalone', '--listen', '127.0.0.1:0',
    '--data-dir', join(dir, 'data'), '--port-file', portFile, '--default-partitions', '3'],
  { stdio: ['ignore', 'ignore', log] });
  const deadline = Date.now() + 30_000;
  while (!existsSync(portFile) || readFileSync(portFile, 'utf8').length === 0) {
    assert.ok(Date.now() < deadline, 'broker did not start');
    await sleep(20);
  }
  kafka = new Kafka({
    clientId: 'kafkajs-test',
    brokers: [readFileSync(portFile, 'utf8').trim()],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100 },
  });
});

after(() => {
  broker?.kill('SIGTERM');
});

function brokerLogTail() {
  return readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n');
}

test('admin: create, describe, list and delete topics', async () => {
  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.equal(await admin.createTopics({ topics: [{ topic: 'js-admin', numPartitions: 4 }] }), true);
    assert.equal(await admin.createTopics({ topics: [{ topic: 'js-admin', numPartitions: 4 }] }), false,
      'creating an existing topic reports false');
    const md = await admin.fetchTopicMetadata({ topics: ['js-admin'] });
    assert.equal(md.topics[0].partitions.length, 4);
    assert.ok((await admin.listTopics()).includes('js-admin'));
    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.length, 1);
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: 'js-bad', configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] }),
      (e) => /config/i.test(String(e.message) + JSON.stringify(e.errors ?? '')),
    );
    await admin.deleteTopics({ topics: ['js-admin'] });
    assert.ok(!(await admin.listTopics()).includes('js-admin'));
  } finally {
    await admin.disconnect();
  }
});

test('produce with keys, headers and gzip; consume as a group; offsets committed', async () => {
  const topic = 'js-orders';
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const producer = kafka.producer({ idempotent: false });
  await producer.connect();
  const N = 3000;
  for (let start = 0; start < N; start += 500) {
    const messages = [];
    for (let i = start; i < start + 500; i++) {
      messages.push({ key: `k${i}`, value: `v${i}`, partition: i % 3, headers: { seq: String(i) } });
    }
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  }
  await producer.disconnect();

  const offsets = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(offsets.map((o) => Number(o.high)).sort(), [1000, 1000, 1000]);

  const consumer = kafka.consumer({ groupId: 'js-group', sessionTimeout: 10_000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Map();
  const done = new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        const i = Number(message.headers.seq.toString());
        assert.equal(message.key.toString(), `k${i}`);
        assert.equal(message.value.toString(), `v${i}`);
        assert.equal(i % 3, partition);
        seen.set(i, (seen.get(i) ?? 0) + 1);
        if (seen.size === N) resolve();
      },
    });
  });
  const guard = new AbortController();
  const timeout = sleep(60_000, null, { signal: guard.signal }).then(() => {
    throw new Error(`consumed ${seen.size} of ${N}\n${brokerLogTail()}`);
  });
  timeout.catch(() => {}); // aborted once the consumer is done
  await Promise.race([done, timeout]);
  guard.abort();
  assert.equal(seen.size, N);
  assert.ok([...seen.values()].every((n) => n === 1), 'no duplicates');
  await consumer.disconnect();

  // The group's committed offsets reach the end of every partition.
  const deadline = Date.now() + 15_000;
  let committed;
  do {
    committed = (await admin.fetchOffsets({ groupId: 'js-group', topics: [topic] }))[0].partitions;
    if (committed.every((p) => Number(p.offset) === 1000)) break;
    await sleep(200);
  } while (Date.now() < deadline);
  assert.deepEqual(committed.map((p) => Number(p.offset)), [1000, 1000, 1000]);
  const groups = await admin.listGroups();
  assert.ok(groups.groups.some((g) => g.groupId === 'js-group'));
  await admin.disconnect();
});

test('offsets by timestamp', async () => {
  const topic = 'js-times';
  const producer = kafka.producer();
  await producer.connect();
  const base = 1_700_000_000_000;
  await producer.send({
    topic,
    messages: Array.from({ length: 50 }, (_, i) => ({ value: `t${i}`, partition: 0, timestamp: String(base + i * 1000) })),
  });
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, base + 20_500);
  const p0 = byTime.find((p) => p.partition === 0);
  assert.equal(Number(p0.offset), 21);
  await admin.disconnect();
});
