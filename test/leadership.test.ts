import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { LEADER_ROLES, Leadership } from '../src/server/leadership.js';
import { storeSuite } from './support/store-suite.js';

const log = pino({ level: 'silent' });

storeSuite('leadership among servers', ({ fresh, clock }) => {
  test('the first server holds every role; a second waits; a clean stop hands them over at once', async () => {
    const store = await fresh();
    const a = new Leadership({ leaders: store.leaders, clock, log });
    const b = new Leadership({ leaders: store.leaders, clock, log });
    await a.renew();
    await b.renew();
    assert.deepEqual(
      LEADER_ROLES.map((r) => [a.holds(r), b.holds(r)]),
      LEADER_ROLES.map(() => [true, false]),
    );
    await a.stop();
    assert.equal(a.holds('publisher'), false);
    await b.renew();
    assert.ok(LEADER_ROLES.every((r) => b.holds(r)));
    await b.stop();
  });

  test('a server whose renewals stall stops acting before another may start', async () => {
    const store = await fresh();
    const a = new Leadership({ leaders: store.leaders, clock, log }, 15_000);
    const b = new Leadership({ leaders: store.leaders, clock, log }, 15_000);
    await a.renew();
    clock.advance(10_001); // a paused past two thirds of the lifetime: it no longer acts…
    assert.equal(a.holds('reaper'), false);
    await b.renew();
    assert.equal(b.holds('reaper'), false, '…but the role is still its in the database, so b waits');
    clock.advance(5_000); // past the expiry: b takes over, a's late renewal is refused
    await b.renew();
    await a.renew();
    assert.deepEqual([a.holds('reaper'), b.holds('reaper')], [false, true]);
    assert.equal((await store.leaders.get('reaper'))?.fencing, 2);
    // The fence its writes carry: none for the server that lost the role, the new number for the holder.
    assert.equal(a.fence('publisher'), null);
    assert.deepEqual(b.fence('publisher'), { role: 'publisher', holder: b.holder, fencing: 2 });
  });
});
