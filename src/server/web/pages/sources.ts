import { z } from 'zod';
import type { App } from '../../types.js';
import { html } from '../html.js';
import { iso, repoUrl, stateOf } from '../format.js';
import type { WebKit } from '../session.js';

/** Sources and their commits. */
export function registerSourcesPages(app: App, kit: WebKit): void {
  const { s, store, send, guard } = kit;

  app.get(
    '/sources',
    guard(async (req, reply) => {
      const sources = await store.sources.list();
      return send(req, reply, {
        title: 'Sources',
        json: '/api/v1/sources',
        body: () =>
          html`<table><thead><tr><th scope="col">Name</th><th scope="col">Repository</th><th scope="col">Branch</th><th scope="col">Watched</th><th scope="col">Last fetched</th></tr></thead><tbody>${sources.map((x) => html`<tr><td><a href="/sources/${x.name}">${x.name}</a></td><td class="mono">${repoUrl(x.url)}</td><td>${x.branch}</td><td>${x.watch ? 'yes' : 'no'}</td><td>${iso(x.lastFetchedAt)}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  app.get(
    '/sources/:name',
    guard(async (req, reply) => {
      const { name } = z.object({ name: z.string().max(100) }).parse(req.params);
      const source = await s.sources.require(name);
      const [commits, builds] = await Promise.all([
        store.sources.listCommits(source.id, 30),
        store.builds.list({ sourceId: source.id, limit: 100 }),
      ]);
      return send(req, reply, {
        title: `Source ${source.name}`,
        json: `/api/v1/sources/${encodeURIComponent(source.name)}`,
        body: () => html`
<p class="mono">${repoUrl(source.url)} @ ${source.branch}${source.watch ? ' (watched)' : ''}</p>
<h2>Recent commits</h2>
<table><thead><tr><th scope="col">Commit</th><th scope="col">Subject</th><th scope="col">Committed</th><th scope="col">Builds</th></tr></thead><tbody>${commits.map((c) => html`<tr><td class="mono">${c.sha.slice(0, 12)}</td><td>${c.subject}</td><td>${iso(c.committedAt * 1000)}</td><td>${builds.filter((b) => b.commit.sha === c.sha).map((b) => html`<a href="/builds/${b.id}">${b.id}</a> ${stateOf(b.state)} `)}</td></tr>`)}</tbody></table>`,
      });
    }),
  );
}
