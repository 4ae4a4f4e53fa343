import { z } from 'zod';
import { LenixError } from '../../../core/errors.js';
import { cves, nevraOf, ADVISORY_TYPES, SEVERITIES } from '../../../errata/advisory.js';
import { osvId } from '../../../errata/osv.js';
import { ADVISORY_ID } from '../../api/params.js';
import type { App } from '../../types.js';
import { html } from '../html.js';
import { iso, stateOf } from '../format.js';
import type { WebKit } from '../session.js';

/** Advisories; approving one. */
export function registerErrataPages(app: App, kit: WebKit): void {
  const { s, viewerOf, send, guard, requireForm } = kit;

  app.get(
    '/errata',
    guard(async (req, reply) => {
      const q = z
        .object({ type: z.enum(['', ...ADVISORY_TYPES]).optional(), severity: z.enum(['', ...SEVERITIES]).optional() })
        .parse(req.query);
      const { viewer } = await viewerOf(req);
      const list = (
        await s.errata.store.list({
          ...(q.type ? { type: q.type } : {}),
          ...(q.severity ? { severity: q.severity } : {}),
        })
      ).filter((a) => a.status === 'released' || viewer.maintainer);
      return send(req, reply, {
        title: 'Errata',
        json: '/api/v1/errata',
        body: () => html`
<form class="filters" method="get" action="/errata" role="search" aria-label="Filter advisories">
<label for="e-type">Type<select id="e-type" name="type"><option value="">any</option>${ADVISORY_TYPES.map((t) => html`<option${t === q.type ? html` selected` : ''}>${t}</option>`)}</select></label>
<label for="e-sev">Severity<select id="e-sev" name="severity"><option value="">any</option>${SEVERITIES.map((t) => html`<option${t === q.severity ? html` selected` : ''}>${t}</option>`)}</select></label>
<button type="submit">Filter</button>
</form>
<p><a href="/errata/feed.atom">Atom feed</a></p>
${list.length === 0 ? html`<p class="muted">No advisories.</p>` : html`<table><thead><tr><th scope="col">Advisory</th><th scope="col">Type</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Repository</th><th scope="col">Title</th><th scope="col">Updated</th></tr></thead><tbody>${list.map((a) => html`<tr><td><a href="/errata/${a.id}">${a.id}</a></td><td>${a.type}</td><td>${a.severity ?? ''}</td><td>${stateOf(a.status)}</td><td>${a.repo}</td><td>${a.title}</td><td>${iso(a.updated)}</td></tr>`)}</tbody></table>`}`,
      });
    }),
  );

  app.get(
    '/errata/:id',
    guard(async (req, reply) => {
      const { id } = z.object({ id: ADVISORY_ID }).parse(req.params);
      const { viewer } = await viewerOf(req);
      const a = await s.errata.require(id);
      if (a.status !== 'released' && !viewer.maintainer) throw new LenixError('ERRATA_NOT_FOUND', `no advisory ${id}`);
      const list = cves(a);
      const osv = a.status === 'released' && (await s.releases.requireRepo(a.repo)).osvEcosystem !== null;
      return send(req, reply, {
        title: `${a.id}: ${a.title}`,
        json: `/api/v1/errata/${encodeURIComponent(a.id)}`,
        body: (v) => html`
<p>${a.type}${a.severity ? html` · <strong>${a.severity}</strong>` : ''} · ${stateOf(a.status)} · version ${a.version} · repository <a href="/repositories/${a.repo}">${a.repo}</a></p>
${a.synopsis ? html`<p>${a.synopsis}</p>` : ''}
<table><tbody><tr><th scope="row">Issued</th><td>${iso(a.issued)}</td></tr><tr><th scope="row">Updated</th><td>${iso(a.updated)}</td></tr>${a.upstreamId ? html`<tr><th scope="row">Rebuild of</th><td>${a.upstreamId}</td></tr>` : ''}<tr><th scope="row">Reboot suggested</th><td>${a.rebootSuggested ? 'yes' : 'no'}</td></tr></tbody></table>
<h2>Description</h2>
<pre>${a.description || a.title}</pre>
<h2>CVEs</h2>
${list.length === 0 ? html`<p class="muted">None.</p>` : html`<ul class="cves">${a.references.filter((r) => r.type === 'cve').map((r) => html`<li><a href="${r.href}">${r.id}</a></li>`)}</ul>`}
${a.references.some((r) => r.type !== 'cve') ? html`<h2>Other references</h2><ul>${a.references.filter((r) => r.type !== 'cve').map((r) => html`<li>${r.type}: <a href="${r.href}">${r.title}</a></li>`)}</ul>` : ''}
<h2>Packages</h2>
<table><thead><tr><th scope="col">Package</th><th scope="col">File</th><th scope="col">SHA-256</th></tr></thead><tbody>${a.packages.map((p) => html`<tr><td>${nevraOf(p)}</td><td>${p.filename}</td><td class="mono">${p.sha256 ?? ''}</td></tr>`)}</tbody></table>
<p>Exports: ${osv ? html`<a href="/errata/osv/${osvId(a.id)}.json">OSV</a> · ` : ''}<a href="/errata/oval/${a.repo}.xml">OVAL for ${a.repo}</a> · <code>dnf update --advisory ${a.id}</code></p>
${v.maintainer && a.status === 'draft' ? html`<form method="post" action="/errata/${a.id}/approve"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Approve</button></form>` : ''}`,
      });
    }),
  );

  app.post(
    '/errata/:id/approve',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = z.object({ id: ADVISORY_ID }).parse(req.params);
      await s.errata.approve(id, caller.name);
      return reply.redirect(`/errata/${id}`, 303);
    }),
  );
}
