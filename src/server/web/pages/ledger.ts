import { z } from 'zod';
import { parseNote } from '../../../ledger/note.js';
import type { App } from '../../types.js';
import { html } from '../html.js';
import { checked } from '../format.js';
import type { WebKit } from '../session.js';

/** The ledger: its checkpoint and look-ups with their inclusion proofs checked in the page. */
export function registerLedgerPages(app: App, kit: WebKit): void {
  const { s, send, guard } = kit;

  app.get(
    '/ledger',
    guard(async (req, reply) => {
      const q = z
        .object({
          sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/)
            .optional()
            .or(z.literal('')),
          build: z.coerce.number().int().positive().optional().or(z.literal('')),
          entry: z.coerce.number().int().min(0).optional(),
        })
        .parse(req.query);
      const cp = await s.ledger.checkpoint();
      const note = parseNote(cp.note);
      const keys = [q.sha256 ? `sha256:${q.sha256}` : null, q.build ? `build:${q.build}` : null].filter(
        (k): k is string => k !== null,
      );
      const bundle = keys.length > 0 ? await s.ledger.bundle(keys) : null;
      const found = bundle ? checked(bundle) : null;
      const rows = found?.entries ?? [];
      return send(req, reply, {
        title: 'Transparency ledger',
        json:
          keys.length > 0
            ? `/api/v1/ledger/lookup?${new URLSearchParams(Object.entries({ sha256: q.sha256 || undefined, build: q.build ? String(q.build) : undefined }).filter((x): x is [string, string] => !!x[1]))}`
            : '/api/v1/ledger',
        body: () => html`
<h2>Current checkpoint</h2>
<pre>${note.text}</pre>
<p>Signed by: ${note.signatures.map((x) => html`<span class="badge">${x.name}</span> `)} <span class="muted">(log key at <a href="/ledger/keys">/ledger/keys</a>; cosignatures by witnesses are listed with their names)</span></p>
<h2>Look up</h2>
<form class="filters" method="get" action="/ledger" role="search" aria-label="Look up ledger entries">
<label for="l-sha">Artifact SHA-256<input id="l-sha" name="sha256" size="66" value="${q.sha256 ?? ''}"></label>
<label for="l-build">Build id<input id="l-build" name="build" size="8" value="${q.build ?? ''}"></label>
<button type="submit">Look up</button>
</form>
${bundle ? html`<h2>Entries</h2>${rows.length === 0 ? html`<p class="muted">Nothing recorded for that.</p>` : rows.map((r) => html`<section aria-label="Entry ${r.index}"${r.index === q.entry ? html` class="card"` : ''}><h3>Entry ${r.index} <span class="mono">${r.type}</span> ${r.ok ? html`<span class="ok">✓ verified</span>` : html`<span class="bad">✗ proof fails</span>`}</h3><p class="muted">Inclusion proof (${r.proof.length} hashes, leaf to root of tree size ${found?.cp.size}):</p><pre>${r.proof.join('\n')}</pre></section>`)}` : ''}`,
      });
    }),
  );
}
