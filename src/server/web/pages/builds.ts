import { z } from 'zod';
import { SBOM_FORMATS } from '../../../attest/sbom.js';
import { LenixError } from '../../../core/errors.js';
import { taskStage } from '../../../core/task-stage.js';
import { BUILD_STATES, isFinished } from '../../../scheduler/task-state.js';
import type { App } from '../../types.js';
import { html } from '../html.js';
import {
  LOG_TAIL,
  iso,
  duration,
  checked,
  repoUrl,
  stateOf,
  bytes,
  buildTable,
  artifactTable,
  testResults,
} from '../format.js';
import { IdParam, type WebKit } from '../session.js';

/** Builds: the list with filters, one build with its tasks, artifacts, tests and statements, its live log; rebuild and cancel. */
export function registerBuildsPages(app: App, kit: WebKit): void {
  const { deps, s, store, releases, send, guard, requireForm } = kit;

  const BuildsQuery = z.object({
    source: z
      .string()
      .max(100)
      .optional()
      .transform((v) => v || undefined),
    state: z
      .enum(['', ...BUILD_STATES] as [string, ...string[]])
      .optional()
      .transform((v) => v || undefined),
    arch: z
      .string()
      .max(32)
      .optional()
      .transform((v) => v || undefined),
    by: z
      .string()
      .max(200)
      .optional()
      .transform((v) => v || undefined),
    q: z
      .string()
      .max(200)
      .optional()
      .transform((v) => v || undefined),
    before: z.coerce.number().int().positive().optional(),
  });

  app.get(
    '/builds',
    guard(async (req, reply) => {
      const q = BuildsQuery.parse(req.query);
      const source = q.source ? await store.sources.getByName(q.source) : null;
      if (q.source && !source) throw new LenixError('SOURCE_NOT_FOUND', `no source ${q.source}`);
      const limit = 50;
      const builds = await store.builds.list({
        sourceId: source?.id,
        state: q.state as never,
        beforeId: q.before,
        createdBy: q.by,
        arch: q.arch,
        text: q.q,
        limit,
      });
      const sources = await store.sources.list();
      const keep = new URLSearchParams(
        Object.entries({ source: q.source, state: q.state, arch: q.arch, by: q.by, q: q.q }).filter(
          (x): x is [string, string] => !!x[1],
        ),
      );
      const older =
        builds.length === limit
          ? `/builds?${new URLSearchParams([...keep, ['before', String(builds[builds.length - 1]!.id)]])}`
          : null;
      return send(req, reply, {
        title: 'Builds',
        json: `/api/v1/builds?${new URLSearchParams(Object.entries({ source: q.source, state: q.state, before: q.before ? String(q.before) : undefined }).filter((x): x is [string, string] => !!x[1]))}`,
        body: () => html`
<form class="filters" method="get" action="/builds" role="search" aria-label="Filter builds">
<label for="f-q">Package (NEVRA text)<input id="f-q" name="q" value="${q.q ?? ''}"></label>
<label for="f-source">Source<select id="f-source" name="source"><option value="">any</option>${sources.map((x) => html`<option${x.name === q.source ? html` selected` : ''}>${x.name}</option>`)}</select></label>
<label for="f-state">State<select id="f-state" name="state"><option value="">any</option>${BUILD_STATES.map((x) => html`<option${x === q.state ? html` selected` : ''}>${x}</option>`)}</select></label>
<label for="f-arch">Architecture<input id="f-arch" name="arch" value="${q.arch ?? ''}" size="8"></label>
<label for="f-by">Started by<input id="f-by" name="by" value="${q.by ?? ''}" size="12"></label>
<button type="submit">Filter</button>
</form>
${buildTable(builds, deps.clock.now())}
<nav class="pager" aria-label="Pages">${q.before ? html`<a href="/builds?${keep}">Newest</a>` : ''}${older ? html`<a href="${older}" rel="next">Older builds</a>` : ''}</nav>`,
      });
    }),
  );

  app.get(
    '/builds/:id',
    guard(async (req, reply) => {
      const { id } = IdParam.parse(req.params);
      const build = await store.builds.get(id);
      if (!build) throw new LenixError('BUILD_NOT_FOUND', `build ${id} does not exist`);
      const [tasks, artifacts, agents, rels, bundle] = await Promise.all([
        store.tasks.listOfBuild(id),
        store.artifacts.listOfBuild(id),
        store.agents.list(),
        releases.releasesOfBuild(id),
        s.ledger.bundle([`build:${id}`]),
      ]);
      const agentName = new Map(agents.map((a) => [a.id, a.name]));
      const now = deps.clock.now();
      const source = await store.sources.get(build.sourceId);
      const repos = new Map((await releases.listRepos()).map((r) => [r.id, r.name]));
      const { cp, entries: statements } = checked(bundle);
      const tests = tasks.filter((t) => t.kind === 'test');
      return send(req, reply, {
        title: `Build ${build.id}: ${build.packageName}-${build.packageEvr}`,
        json: `/api/v1/builds/${id}`,
        body: (v) => html`
<p>${stateOf(build.state)}${build.reason ? html` — <strong>${build.reasonCode}</strong>: ${build.reason}` : ''}</p>
<table><tbody>
<tr><th scope="row">Source</th><td><a href="/sources/${build.sourceName}">${build.sourceName}</a> @ ${build.ref} <span class="muted">${repoUrl(source?.url ?? '')}</span></td></tr>
<tr><th scope="row">Commit</th><td class="mono">${build.commit.sha} <span class="muted">tree ${build.commit.tree}</span></td></tr>
<tr><th scope="row">Started by</th><td>${build.createdBy}, ${iso(build.createdAt)}</td></tr>
<tr><th scope="row">Took</th><td>${duration(build.startedAt, build.finishedAt, now)}</td></tr>
<tr><th scope="row">Target repository</th><td>${build.targetRepo ?? html`<span class="muted">none</span>`}</td></tr>
</tbody></table>
${v.maintainer ? html`<p><form class="inline" method="post" action="/builds/${id}/rebuild"><input type="hidden" name="csrf" value="${v.csrf}"><button type="submit">Rebuild</button></form> ${isFinished(build.state as never) ? '' : html`<form class="inline" method="post" action="/builds/${id}/cancel"><input type="hidden" name="csrf" value="${v.csrf}"><button class="secondary" type="submit">Cancel</button></form>`}</p>` : ''}
<h2>Tasks</h2>
<table><thead><tr><th scope="col">Task</th><th scope="col">Stage</th><th scope="col">State</th><th scope="col">Node</th><th scope="col">Attempts</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Log</th></tr></thead><tbody>
${tasks.map((t) => html`<tr><td>${t.id}</td><td>${taskStage(t)}</td><td>${stateOf(t.state)}${t.reason ? html`<br><span class="muted">${t.reasonCode}: ${t.reason}</span>` : ''}</td><td>${t.agentId === null ? '' : (agentName.get(t.agentId) ?? t.agentId)}</td><td>${t.attempts}/${t.maxAttempts}</td><td>${iso(t.startedAt)}</td><td>${duration(t.startedAt, t.finishedAt, now)}</td><td><a href="/builds/${id}/tasks/${t.id}/log">log</a> <span class="muted">${bytes(t.logSize)}</span></td></tr>`)}
</tbody></table>
<h2>Artifacts</h2>
${artifactTable(artifacts)}
<h2>Test results</h2>
${tests.length === 0 ? html`<p class="muted">Not tested.</p>` : tests.map((t) => testResults(t))}
<h2>Releases</h2>
${rels.length === 0 ? html`<p class="muted">Not released.</p>` : html`<ul>${rels.map((r) => html`<li>release ${r.id} into <a href="/repositories/${repos.get(r.repoId) ?? ''}">${repos.get(r.repoId) ?? r.repoId}</a>: ${stateOf(r.state)}${r.snapshotId ? ` (snapshot ${r.snapshotId})` : ''}${r.overrideReason ? html` <span class="muted">override: ${r.overrideReason}</span>` : ''}</li>`)}</ul>`}
<h2>SBOM</h2>
<ul>${SBOM_FORMATS.map((f) => html`<li><a href="/api/v1/builds/${id}/sbom?format=${f}" download>${f}</a></li>`)}</ul>
<h2>Ledger statements</h2>
<p class="muted">Checked against checkpoint of tree size ${cp.size}: each inclusion proof leads to its signed root.</p>
${statements.length === 0 ? html`<p class="muted">None yet.</p>` : html`<table><thead><tr><th scope="col">Entry</th><th scope="col">Statement</th><th scope="col">Subjects</th><th scope="col">Verified</th></tr></thead><tbody>${statements.map((x) => html`<tr><td><a href="/ledger?entry=${x.index}&amp;build=${id}">${x.index}</a></td><td class="mono">${x.type}</td><td>${x.subjects}</td><td>${x.ok ? html`<span class="ok">✓ verified</span>` : html`<span class="bad">✗ proof fails</span>`}</td></tr>`)}</tbody></table>`}`,
      });
    }),
  );

  app.get(
    '/builds/:id/tasks/:task/log',
    guard(async (req, reply) => {
      const p = z
        .object({ id: z.coerce.number().int().positive(), task: z.coerce.number().int().positive() })
        .parse(req.params);
      const q = z.object({ start: z.coerce.number().int().min(0).optional() }).parse(req.query);
      const task = await store.tasks.get(p.task);
      if (!task || task.buildId !== p.id) throw new LenixError('TASK_NOT_FOUND', `build ${p.id} has no task ${p.task}`);
      // Only the tail is rendered; earlier output is a link away (or the raw log).
      const start = q.start ?? Math.max(0, task.logSize - LOG_TAIL);
      const text = (await store.logs.read(task.id, start, LOG_TAIL)).toString('utf8');
      const end = start + Buffer.byteLength(text);
      const finished = isFinished(task.state);
      return send(req, reply, {
        title: `Task ${task.id} log`,
        json: `/api/v1/tasks/${task.id}`,
        scripts: ['log.js'],
        body: () => html`
<p><a href="/builds/${p.id}">Build ${p.id}</a> · ${taskStage(task)} · ${stateOf(task.state)} · <span id="log-status" role="status" aria-live="polite">${finished ? `finished` : 'running (reload or enable JavaScript to follow)'}</span> · <a href="/api/v1/tasks/${task.id}/log" download="task-${task.id}.log">raw log (${bytes(task.logSize)})</a></p>
${start > 0 ? html`<p><a href="/builds/${p.id}/tasks/${task.id}/log?start=${Math.max(0, start - LOG_TAIL)}">Earlier output</a> <span class="muted">(showing bytes ${start}–${end} of ${task.logSize})</span></p>` : ''}
<p id="log-truncated" hidden class="muted">Older lines were dropped from the page to keep up; the raw log has everything.</p>
<pre id="log" tabindex="0" aria-label="Log output" data-task="${task.id}" data-end="${q.start === undefined ? end : task.logSize}" data-finished="${finished || q.start !== undefined ? '1' : '0'}">${text}</pre>`,
      });
    }),
  );

  app.post(
    '/builds/:id/rebuild',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      const b = await store.builds.get(id);
      if (!b) throw new LenixError('BUILD_NOT_FOUND', `build ${id} does not exist`);
      const made = await s.builds.create({
        source: b.sourceName,
        ref: b.commit.sha,
        createdBy: caller.name,
        ...(b.targetRepo ? { repo: b.targetRepo } : {}),
      });
      return reply.redirect(`/builds/${made.build.id}`, 303);
    }),
  );

  app.post(
    '/builds/:id/cancel',
    guard(async (req, reply) => {
      const caller = await requireForm(req);
      const { id } = IdParam.parse(req.params);
      await deps.store.builds.cancel(id, `cancelled by ${caller.name}`, deps.clock.now());
      deps.notifier.emit('queue');
      return reply.redirect(`/builds/${id}`, 303);
    }),
  );
}
