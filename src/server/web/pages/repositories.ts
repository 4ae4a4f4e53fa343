import { z } from 'zod';
import { SBOM_FORMATS } from '../../../attest/sbom.js';
import type { App } from '../../types.js';
import { html } from '../html.js';
import { iso, stateOf } from '../format.js';
import { IdParam, type WebKit } from '../session.js';

/** Repositories, their snapshots and releases; approving a release. */
export function registerRepositoriesPages(app: App, kit: WebKit): void {
  const { deps, s, releases, send, guard, requireForm } = kit;

  app.get(
    '/repositories',
    guard(async (req, reply) => {
      const repos = await releases.listRepos();
      return send(req, reply, {
        title: 'Repositories',
        json: '/api/v1/repos',
        body: () =>
          html`<table><thead><tr><th scope="col">Name</th><th scope="col">Arches</th><th scope="col">Current snapshot</th><th scope="col">Keys</th></tr></thead><tbody>${repos.map(
            (r) =>
              html`<tr><td><a href="/repositories/${r.name}">${r.name}</a></td><td>${r.arches.join(', ')}</td><td>${r.currentSnapshotId ?? html`<span class="muted">none</span>`}</td><td class="mono">${r.keys
                .filter((k) => !k.retiredAt)
                .map((k) => k.fingerprint.slice(-16))
                .join(', ')}</td></tr>`,
          )}</tbody></table>`,
      });
    }),
  );

  app.get(
    '/repositories/:name',
    guard(async (req, reply) => {
      const { name } = z.object({ name: z.string().max(64) }).parse(req.params);
      const repo = await s.releases.requireRepo(name);
      const [snapshots, rels] = await Promise.all([
        releases.listSnapshots(repo.id),
        releases.listReleases(repo.id, 30),
      ]);
      const base = deps.config.publicUrl;
      return send(req, reply, {
        title: `Repository ${repo.name}`,
        json: `/api/v1/repos/${encodeURIComponent(repo.name)}`,
        body: (v) => html`
<h2>How to install</h2>
<pre>sudo curl -o /etc/yum.repos.d/${repo.name}.repo ${base}/repos/${repo.name}.repo
sudo dnf install PACKAGE</pre>
<p><a href="/repos/${repo.name}.repo">${repo.name}.repo</a> (gpgcheck=1, repo_gpgcheck=1) · current snapshot: ${repo.currentSnapshotId ?? 'none'}${repo.currentSnapshotId ? html` · SBOM of the current snapshot: ${SBOM_FORMATS.map((f) => html`<a href="/api/v1/repos/${repo.name}/snapshots/current/sbom?format=${f}" download>${f}</a> `)}` : ''}</p>
<h2>Snapshots</h2>
<table><thead><tr><th scope="col">Snapshot</th><th scope="col">State</th><th scope="col">Packages</th><th scope="col">Advisories</th><th scope="col">Published</th></tr></thead><tbody>${snapshots.map((x) => html`<tr><td>${x.id}${x.id === repo.currentSnapshotId ? html` <span class="badge">current</span>` : ''}</td><td>${stateOf(x.state)}</td><td>${x.packages.length}</td><td>${x.advisories.map((a) => html`<a href="/errata/${a}">${a}</a> `)}</td><td>${iso(x.publishedAt)}</td></tr>`)}</tbody></table>
<h2>Releases</h2>
<table><thead><tr><th scope="col">Release</th><th scope="col">State</th><th scope="col">Builds</th><th scope="col">Created</th><th scope="col">Action</th></tr></thead><tbody>${rels.map((r) => html`<tr><td>${r.id}</td><td>${stateOf(r.state)}${r.reason ? html`<br><span class="muted">${r.reasonCode}: ${r.reason}</span>` : ''}</td><td>${r.builds.map((b) => html`<a href="/builds/${b}">${b}</a> `)}</td><td>${r.createdBy}, ${iso(r.createdAt)}</td><td>${v.maintainer && r.state === 'planned' ? html`<form class="inline" method="post" action="/releases/${r.id}/approve"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Approve</button></form>` : ''}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  app.get(
    '/mirrors',
    guard(async (req, reply) => {
      const mirrors = await s.mirrors.status();
      const rows = mirrors.flatMap((m) =>
        (m.checks.length > 0 ? m.checks : [null]).map(
          (c) =>
            html`<tr><td class="mono">${m.url}</td><td>${m.country ?? ''}</td><td>${c ? `${c.repo}/${c.arch}` : ''}</td><td>${c ? html`${stateOf(c.state)}${c.state === 'behind' ? ` by ${c.behind} (serves snapshot ${c.snapshotId})` : ''}${c.state === 'bad' || c.state === 'unreachable' ? html`<br><span class="bad">${c.detail}</span>` : ''}` : html`<span class="muted">not checked</span>`}</td><td>${iso(c?.checkedAt ?? null)}</td></tr>`,
        ),
      );
      return send(req, reply, {
        title: 'Mirrors',
        json: '/api/v1/mirrors',
        body: () =>
          html`<p>Mirrors copy the published trees with rsync. The checker fetches each one's <code>repomd.xml</code> per repository and arch: only mirrors found current enter the metalinks; a <span class="bad">bad</span> mirror serves metadata Lenix never published.</p>
${mirrors.length === 0 ? html`<p class="muted">No mirrors registered: the metalinks name this server.</p>` : html`<table><thead><tr><th scope="col">Mirror</th><th scope="col">Country</th><th scope="col">Repository</th><th scope="col">Status</th><th scope="col">Last check</th></tr></thead><tbody>${rows}</tbody></table>`}`,
      });
    }),
  );

  app.post(
    '/releases/:id/approve',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      const r = await s.releases.approve(id, caller.name);
      const repo = await releases.getRepo(r.repoId);
      return reply.redirect(`/repositories/${repo?.name ?? ''}`, 303);
    }),
  );
}
