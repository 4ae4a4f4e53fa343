import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiServer, http, type TestServer } from './support/server.js';

/** What operators point a load balancer and Prometheus at (issue 16): readiness and metrics. */
describe('operations endpoints', () => {
  let t: TestServer;
  let base: string;

  before(async () => {
    ({ t, base } = await apiServer());
  });
  after(async () => t.close());

  test('ready: the database and blob store answer; a lone server holds every single-writer role', async () => {
    const r = await http(base, 'GET', '/api/v1/ready');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ready: true, roles: ['publisher', 'reaper', 'collector'] });
  });

  test('metrics in the Prometheus text format: queue, lease latency, ledger, leadership, errors by code', async () => {
    assert.equal((await http(base, 'GET', '/api/v1/builds/999999')).status, 404);
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const sample = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(name));
      assert.ok(line, `no sample ${name} in:\n${text}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.ok(sample('lenix_ledger_entries') >= 0);
    assert.equal(sample('lenix_leader{role="publisher"}'), 1);
    assert.ok(sample('lenix_errors_total{code="BUILD_NOT_FOUND"}') >= 1);
    assert.match(text, /^# TYPE lenix_lease_seconds histogram$/m);
    assert.match(text, /^# TYPE lenix_publish_seconds histogram$/m);
    assert.match(text, /^# TYPE lenix_queue_tasks gauge$/m);
  });
});
