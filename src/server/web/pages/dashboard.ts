import { LenixError } from '../../../core/errors.js';
import type { App } from '../../types.js';
import { ASSETS } from '../assets.js';
import { html } from '../html.js';
import { duration, stateOf, buildTable } from '../format.js';
import type { WebKit } from '../session.js';

/** The dashboard and the static assets pages load. */
export function registerDashboardPages(app: App, kit: WebKit): void {
  const { s, send, guard } = kit;

  app.get<{ Params: { hash: string; name: string } }>('/static/:hash/:name', async (req, reply) => {
    const a = ASSETS[req.params.name as keyof typeof ASSETS];
    if (!a) throw new LenixError('NOT_FOUND', 'no such file');
    return reply
      .type(a.type)
      .header('cache-control', a.hash === req.params.hash ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(a.body);
  });

  app.get(
    '/',
    guard(async (req, reply) =>
      send(req, reply, {
        title: 'Dashboard',
        json: '/api/v1/dashboard',
        scripts: ['dash.js'],
        body: async () => {
          const d = await s.dashboard.read();
          return s.dashboard.memo(
            d,
            'page',
            () => html`
<div class="cards">
<section class="card" aria-labelledby="q"><h2 id="q">Queue</h2><div id="queue" data-live>${Object.keys(d.queue).length === 0 ? html`<p class="muted">Nothing waiting.</p>` : html`<table><thead><tr><th scope="col">Architecture</th><th scope="col">Queued tasks</th><th scope="col">Build nodes online</th></tr></thead><tbody>${Object.entries(d.queue).map(([arch, n]) => html`<tr><td>${arch}</td><td>${n}</td><td>${(d.nodesFor[arch] ?? 0) > 0 ? String(d.nodesFor[arch]) : html`<strong>none: waiting for a ${arch} node</strong>`}</td></tr>`)}</tbody></table>`}</div></section>
<section class="card" aria-labelledby="ag"><h2 id="ag">Agents online</h2><div id="agents" data-live>${d.agentsOnline.length === 0 ? html`<p class="muted">None.</p>` : html`<ul>${d.agentsOnline.map(({ agent: a, task: t }) => html`<li><strong>${a.name}</strong> <span class="muted">${a.role}, ${a.arches.join(', ')}</span>${t ? html` — task <a href="/builds/${t.buildId}/tasks/${t.id}/log">${t.id}</a>` : html` <span class="muted">idle</span>`}</li>`)}</ul>`}</div></section>
</div>
<section aria-labelledby="run"><h2 id="run">Running now</h2><div id="running" data-live>${d.running.length === 0 ? html`<p class="muted">No task is running.</p>` : html`<table><thead><tr><th scope="col">Task</th><th scope="col">Build</th><th scope="col">Kind</th><th scope="col">Node</th><th scope="col">Elapsed</th></tr></thead><tbody>${d.running.map(({ task: t, build: b, agent }) => html`<tr><td><a href="/builds/${t.buildId}/tasks/${t.id}/log">${t.id}</a></td><td><a href="/builds/${t.buildId}">${t.buildId}</a> ${b ? `${b.packageName}-${b.packageEvr}` : ''}</td><td>${t.kind === 'binary' ? `build ${t.arch}` : t.kind}</td><td>${agent ?? ''}</td><td>${duration(t.startedAt, null, d.now)}</td></tr>`)}</tbody></table>`}</div></section>
<section aria-labelledby="lb"><h2 id="lb">Latest builds</h2><div id="latest" data-live>${buildTable(d.builds, d.now)}</div><p><a href="/builds">All builds</a></p></section>
<div class="cards">
<section class="card" aria-labelledby="lr"><h2 id="lr">Latest releases</h2>${d.releases.length === 0 ? html`<p class="muted">None yet.</p>` : html`<ul>${d.releases.map((r) => html`<li>release ${r.id}: ${stateOf(r.state)} <span class="muted">builds ${r.builds.join(', ')}</span></li>`)}</ul>`}</section>
<section class="card" aria-labelledby="la"><h2 id="la">Latest advisories</h2>${d.advisories.length === 0 ? html`<p class="muted">None yet.</p>` : html`<ul>${d.advisories.map((a) => html`<li><a href="/errata/${a.id}">${a.id}</a> ${a.severity ?? a.type}: ${a.title}</li>`)}</ul>`}</section>
</div>`,
          );
        },
      }),
    ),
  );
}
