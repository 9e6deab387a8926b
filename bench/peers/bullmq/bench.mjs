// BullMQ's side of Shoal's throughput benchmark: one role per process, driven by
// bench/throughput.py. Same roles, flags and JSON-lines output as bench/shoal_bench.py.
// Clock: process.hrtime.bigint() is CLOCK_MONOTONIC on Linux, like Python's monotonic_ns.
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

// The latency handshake: a worker LPUSHes "<seq> <start ns>" here when a probe job starts.
const STARTED_KEY = 'shoal-bench:started';
// Untimed calls before the timed ones (script loading, JIT warm-up), as in shoal_bench.py.
const WARMUP_SINGLE = 100;
const WARMUP_BULK = 1000;
// Shoal keeps the newest 1000 completed records by default; BullMQ is set to the same.
const REMOVE_ON_COMPLETE = { count: 1000 };

const ROLES = [
  'fill', 'drain-worker', 'latency-worker', 'enqueue-single', 'enqueue-bulk',
  'latency-producer',
];

function parse() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'redis-url': { type: 'string' },
      queue: { type: 'string', default: 'bench' },
      jobs: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '50' },
      samples: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '10' },
      'gap-ms': { type: 'string', default: '20' },
    },
  });
  const role = positionals[0];
  if (!ROLES.includes(role)) throw new Error(`role must be one of ${ROLES.join(', ')}; got ${role}`);
  if (!values['redis-url']) throw new Error('--redis-url is required');
  const url = new URL(values['redis-url']);
  return {
    role,
    redisUrl: values['redis-url'],
    connection: {
      host: url.hostname,
      port: Number(url.port || 6379),
      db: Number(url.pathname.slice(1) || 0),
      maxRetriesPerRequest: null,
    },
    queue: values.queue,
    jobs: Number(values.jobs),
    concurrency: Number(values.concurrency),
    samples: Number(values.samples),
    warmup: Number(values.warmup),
    gapMs: Number(values['gap-ms']),
  };
}

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

const now = () => process.hrtime.bigint();
const seconds = (from, to) => Number(to - from) / 1e9;

function untilTerminated() {
  return new Promise((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

async function drainWorker(o) {
  let firstNs = 0n;
  let completed = 0;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker(o.queue, async () => {
    if (firstNs === 0n) firstNs = now();
  }, { connection: o.connection, concurrency: o.concurrency, removeOnComplete: REMOVE_ON_COMPLETE });
  // 'completed' fires after the job's move to completed returned from Redis.
  worker.on('completed', () => {
    completed += 1;
    if (completed === o.jobs) finish(now());
  });
  const lastNs = await done;
  emit('result', { jobs: o.jobs, seconds: seconds(firstNs, lastNs) });
  await untilTerminated();
  await worker.close();
}

async function latencyWorker(o) {
  const signal = new IORedis(o.connection);
  const worker = new Worker(o.queue, async (job) => {
    const started = now();
    await signal.lpush(STARTED_KEY, `${job.data.i} ${started}`);
  }, { connection: o.connection, concurrency: o.concurrency, removeOnComplete: REMOVE_ON_COMPLETE });
  await worker.waitUntilReady();
  emit('ready');
  await untilTerminated();
  await worker.close();
  signal.disconnect();
}

async function withQueues(o, body) {
  const queue = new Queue(o.queue, { connection: o.connection });
  const warm = new Queue(`${o.queue}-warmup`, { connection: o.connection });
  try {
    await body(queue, warm);
  } finally {
    await queue.close();
    await warm.close();
  }
}

async function fill(o) {
  await withQueues(o, async (queue) => {
    for (let start = 0; start < o.jobs; start += 1000) {
      const batch = [];
      for (let i = start; i < Math.min(o.jobs, start + 1000); i += 1) batch.push({ name: 'noop', data: { i } });
      await queue.addBulk(batch);
    }
  });
  emit('result', { jobs: o.jobs });
}

async function enqueueSingle(o) {
  let elapsed = 0;
  await withQueues(o, async (queue, warm) => {
    for (let i = 0; i < WARMUP_SINGLE; i += 1) await warm.add('noop', { i });
    const payloads = Array.from({ length: o.jobs }, (_, i) => ({ i }));
    const started = now();
    for (const data of payloads) await queue.add('noop', data);
    elapsed = seconds(started, now());
  });
  emit('result', { jobs: o.jobs, seconds: elapsed });
}

async function enqueueBulk(o) {
  let elapsed = 0;
  await withQueues(o, async (queue, warm) => {
    await warm.addBulk(Array.from({ length: WARMUP_BULK }, (_, i) => ({ name: 'noop', data: { i } })));
    const jobs = Array.from({ length: o.jobs }, (_, i) => ({ name: 'noop', data: { i } }));
    const started = now();
    await queue.addBulk(jobs);
    elapsed = seconds(started, now());
  });
  emit('result', { jobs: o.jobs, seconds: elapsed });
}

async function latencyProducer(o) {
  const latenciesMs = [];
  const client = new IORedis(o.connection);
  await withQueues(o, async (queue) => {
    for (let seq = 0; seq < o.warmup + o.samples; seq += 1) {
      const sent = now();
      await queue.add('probe', { i: seq });
      const reply = await client.blpop(STARTED_KEY, 30);
      if (reply === null) throw new Error(`probe job ${seq} did not start within 30 s`);
      const [gotSeq, started] = reply[1].split(' ');
      if (Number(gotSeq) !== seq) throw new Error(`probe ${seq}: the worker reported job ${gotSeq}`);
      if (seq >= o.warmup) latenciesMs.push(Number(BigInt(started) - sent) / 1e6);
      // Pacing, not synchronisation: lets the worker go idle again (jittered, as in Shoal's).
      await new Promise((resolve) => { setTimeout(resolve, o.gapMs * (0.5 + Math.random())); });
    }
  });
  client.disconnect();
  emit('result', { latencies_ms: latenciesMs });
}

const HANDLERS = {
  fill,
  'drain-worker': drainWorker,
  'latency-worker': latencyWorker,
  'enqueue-single': enqueueSingle,
  'enqueue-bulk': enqueueBulk,
  'latency-producer': latencyProducer,
};

async function main() {
  const o = parse();
  await HANDLERS[o.role](o);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`bullmq bench: ${err.message}\n`);
  process.exit(1);
});
