import { serialize as serializeCookie } from 'cookie';
import { z } from 'zod';
import { LenixError } from '../../../core/errors.js';
import type { TokenRecord } from '../../../store/records.js';
import type { App } from '../../types.js';
import { hasScope } from '../../auth.js';
import { html } from '../html.js';
import { iso } from '../format.js';
import { COOKIE, IdParam, type WebKit } from '../session.js';

/** Signing in and out, and the tokens page (admins). */
export function registerAccountPages(app: App, kit: WebKit): void {
  const { deps, s, viewerOf, send, guard, requireForm } = kit;

  app.get(
    '/tokens',
    guard(async (req, reply) => {
      const { viewer } = await viewerOf(req);
      if (!viewer.name) throw new LenixError('UNAUTHENTICATED', 'sign in with an admin token');
      if (!viewer.admin) throw new LenixError('FORBIDDEN', 'the tokens page needs the admin scope');
      const now = deps.clock.now();
      const tokens = await s.tokens.list();
      const state = (t: TokenRecord) =>
        t.revokedAt !== null
          ? `revoked ${iso(t.revokedAt)}`
          : t.expiresAt !== null && t.expiresAt <= now
            ? `expired ${iso(t.expiresAt)}`
            : t.expiresAt !== null
              ? `active, expires ${iso(t.expiresAt)}`
              : 'active';
      return send(req, reply, {
        title: 'Tokens',
        json: '/api/v1/tokens',
        body: (
          v,
        ) => html`<h1>Tokens</h1><p class="muted">Secrets are shown once, when a token is made (<code>lenix token create</code>); a revoked token is refused at once and its agents' leases end.</p>
<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">State</th><th scope="col">Action</th></tr></thead><tbody>${tokens.map((t) => html`<tr><td>${t.id}</td><td>${t.name}</td><td>${t.scopes.join(', ')}</td><td>${iso(t.createdAt)}</td><td>${state(t)}</td><td>${t.revokedAt === null ? html`<form class="inline" method="post" action="/tokens/${t.id}/revoke"><input type="hidden" name="csrf" value="${v.csrf}"><button class="secondary" type="submit">Revoke</button></form>` : ''}</td></tr>`)}</tbody></table>`,
      });
    }),
  );

  app.get(
    '/login',
    guard(async (req, reply) =>
      send(req, reply, {
        title: 'Sign in',
        body: () =>
          html`<form class="stack" method="post" action="/login"><p><label for="token">API token (maintainer scope for actions)<input id="token" name="token" type="password" autocomplete="current-password" required size="48"></label></p><p><button type="submit">Sign in</button></p></form><p class="muted">Reading needs no account. The token is kept in an HttpOnly cookie for this site only.</p>`,
      }),
    ),
  );

  app.post(
    '/login',
    guard(async (req, reply) => {
      const { token } = z.object({ token: z.string().trim().min(8).max(200) }).parse(req.body);
      const caller = await s.auth.authenticate(`Bearer ${token}`, deps.clock.now());
      if (!caller) throw new LenixError('UNAUTHENTICATED', 'unknown token');
      const secure = req.protocol === 'https';
      return reply
        .header(
          'set-cookie',
          serializeCookie(COOKIE, token, { httpOnly: true, sameSite: 'strict', path: '/', secure, maxAge: 12 * 3600 }),
        )
        .redirect('/', 303);
    }),
  );

  app.post(
    '/logout',
    guard(async (req, reply) => {
      await requireForm(req, false);
      return reply
        .header('set-cookie', serializeCookie(COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0 }))
        .redirect('/', 303);
    }),
  );

  app.post(
    '/tokens/:id/revoke',
    guard(async (req, reply) => {
      const caller = await requireForm(req, false);
      if (!hasScope(caller, 'admin')) throw new LenixError('FORBIDDEN', 'revoking tokens needs the admin scope');
      const { id } = IdParam.parse(req.params);
      await s.tokens.revoke(id, caller);
      return reply.redirect('/tokens', 303);
    }),
  );
}
