import { peekStatement } from '../../attest/dsse.js';
import type { ProofBundle } from '../../attest/verify-chain.js';
import { isLocalSourceUrl, publicSourceUrl } from '../../core/source-url.js';
import { parseCheckpoint } from '../../ledger/checkpoint.js';
import { leafHash, verifyInclusion } from '../../ledger/merkle.js';
import { parseNote } from '../../ledger/note.js';
import type { ArtifactRecord, BuildRecord, TaskRecord } from '../../store/records.js';
import { html } from './html.js';
import { testStagesWithArches } from '../../core/protocol.js';

/** Formatting helpers the pages share: times, sizes, states, tables, and the ledger check a page shows. */

/** The bytes of a log a page shows; earlier output is a link away. */
export const LOG_TAIL = 64 * 1024;

export const iso = (ms: number | null) =>
  ms === null ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export function duration(from: number | null, to: number | null, now: number): string {
  if (from === null) return '';
  const s = Math.max(0, Math.round(((to ?? now) - from) / 1000));
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m ${s % 60}s`
      : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export /**
 * A proof bundle's entries, each with the "verified" mark: its inclusion proof checked against the root of
 * the bundle's signed checkpoint.
 */
function checked(bundle: ProofBundle) {
  const cp = parseCheckpoint(parseNote(bundle.checkpoint).text);
  const entries = bundle.entries.map((e) => {
    const data = new Uint8Array(Buffer.from(e.entry, 'base64'));
    const ok = verifyInclusion(
      leafHash(data),
      e.index,
      cp.size,
      e.proof.map((h) => new Uint8Array(Buffer.from(h, 'hex'))),
      cp.root,
    );
    const st = peekStatement(data);
    return { index: e.index, proof: e.proof, ok, type: st.predicateType, subjects: st.subject.length };
  });
  return { cp, entries };
}

export /** A source URL as pages show it: a server-local path is private, so it is not shown. */
const repoUrl = (url: string) =>
  isLocalSourceUrl(url) || url === '' ? '(a repository local to the server)' : publicSourceUrl('', url);

export const stateOf = (s: string) => html`<span class="state-${s}">${s}</span>`;

export const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;

export const buildTable = (builds: readonly BuildRecord[], now: number) =>
  builds.length === 0
    ? html`<p class="muted">No builds.</p>`
    : html`<table><thead><tr><th scope="col">Build</th><th scope="col">Package</th><th scope="col">Source</th><th scope="col">State</th><th scope="col">Arches</th><th scope="col">Started by</th><th scope="col">Created</th><th scope="col">Took</th></tr></thead><tbody>${builds.map(
        (b) =>
          html`<tr><td><a href="/builds/${b.id}">${b.id}</a></td><td>${b.packageName}-${b.packageEvr}</td><td><a href="/sources/${b.sourceName}">${b.sourceName}</a></td><td>${stateOf(b.state)}</td><td>${b.arches.join(', ')}</td><td>${b.createdBy}</td><td>${iso(b.createdAt)}</td><td>${duration(b.startedAt, b.finishedAt, now)}</td></tr>`,
      )}</tbody></table>`;

export const artifactTable = (artifacts: readonly ArtifactRecord[]) =>
  artifacts.length === 0
    ? html`<p class="muted">None yet.</p>`
    : html`<table><thead><tr><th scope="col">File</th><th scope="col">Kind</th><th scope="col">SHA-256</th><th scope="col">Size</th><th scope="col">Signed by</th></tr></thead><tbody>${artifacts.map(
        (a) =>
          html`<tr><td><a href="/api/v1/artifacts/${a.sha256}">${a.name}</a></td><td>${a.kind}</td><td class="mono">${a.sha256}</td><td>${bytes(a.size)}</td><td class="mono">${a.signedBy ?? ''}</td></tr>`,
      )}</tbody></table>`;

export const testResults = (t: TaskRecord) => {
  const stages = testStagesWithArches(t.result);
  return html`<p>Test task ${t.id}: ${stateOf(t.state)}</p>${stages.length === 0 ? '' : html`<table><thead><tr><th scope="col">Stage</th><th scope="col">Outcome</th><th scope="col">Detail</th></tr></thead><tbody>${stages.map((x) => html`<tr><td>${x.name}</td><td class="${x.outcome === 'passed' ? 'ok' : x.outcome === 'failed' ? 'bad' : 'muted'}">${x.outcome}</td><td>${x.detail}</td></tr>`)}</tbody></table>`}`;
};
