import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Notifier } from '../src/server/notifier.js';
import { PgNotifyRelay } from '../src/store/pg-notify.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

/** Two servers' notifiers over one PostgreSQL: what one emits wakes the other's waiters (LISTEN/NOTIFY). */
let pg: TestPostgres;
let url: string;
before(async () => {
  pg = await startPostgres();
  url = await pg.newDatabase('notify');
});
after(async () => {
  await pg?.stop();
});

const log = pino({ level: 'silent' });

async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a wake-up emitted on one server reaches waiters on another, not back to itself twice', async () => {
  const a = new Notifier();
  const b = new Notifier();
  const relayA = await PgNotifyRelay.start(url, (t) => a.receive(t), log);
  const relayB = await PgNotifyRelay.start(url, (t) => b.receive(t), log);
  a.attach(relayA);
  b.attach(relayB);
  try {
    // Long timers: only a notification can make these resolve true.
    const onB = b.wait('log:7', 60_000);
    const queueOnB = b.wait('queue', 60_000);
    a.emit('log:7');
    a.emit('queue');
    assert.deepEqual(await Promise.all([onB, queueOnB]), [true, true]);
    // Many topics in one turn go out together and all arrive.
    const many = Array.from({ length: 500 }, (_, i) => b.wait(`task:${i}`, 60_000));
    for (let i = 0; i < 500; i++) a.emit(`task:${i}`);
    assert.ok((await Promise.all(many)).every(Boolean));
    // A server does not hear its own messages back (its local emit already woke its waiters).
    const heardByC: string[] = [];
    const relayC = await PgNotifyRelay.start(url, (t) => heardByC.push(t), log);
    const selfOnB = b.wait('self', 60_000);
    relayC.publish('self');
    assert.equal(await selfOnB, true, 'the others hear it');
    a.emit('after'); // sent after C's message: by the time C hears it, an echo of its own would have arrived
    await until(() => heardByC.includes('after'));
    await relayC.close();
    assert.ok(!heardByC.includes('self'), `C heard: ${heardByC.join(',')}`);
  } finally {
    await relayA.close();
    await relayB.close();
  }
});

test('the wait timer still ends a wait that no one wakes', async () => {
  const n = new Notifier();
  assert.equal(await n.wait('nothing', 10), false);
});
