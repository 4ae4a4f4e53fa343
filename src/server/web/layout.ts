import { assetUrl } from './assets.js';
import { html, type Html } from './html.js';

export interface Viewer {
  /** The logged-in token holder's name, or null for an anonymous reader. */
  readonly name: string | null;
  readonly maintainer: boolean;
  /** Admins also see the tokens page. */
  readonly admin: boolean;
  /** The form token for state-changing forms (only for a logged-in viewer). */
  readonly csrf: string | null;
}

const NAV: [string, string][] = [
  ['/', 'Dashboard'],
  ['/builds', 'Builds'],
  ['/sources', 'Sources'],
  ['/repositories', 'Repositories'],
  ['/mirrors', 'Mirrors'],
  ['/errata', 'Errata'],
  ['/ledger', 'Ledger'],
];

/** The page chrome: skip link, header with navigation, one main landmark, footer. */
export function page(o: {
  title: string;
  viewer: Viewer;
  path: string;
  json?: string;
  body: Html;
  scripts?: readonly ('log.js' | 'dash.js')[];
}): string {
  const nav = NAV.map(([href, label]) => {
    const current = href === '/' ? o.path === '/' : o.path === href || o.path.startsWith(`${href}/`);
    return html`<li><a href="${href}"${current ? html` aria-current="page"` : ''}>${label}</a></li>`;
  });
  const who = o.viewer.name
    ? html`<span class="who">signed in as ${o.viewer.name}${o.viewer.admin ? html` · <a href="/tokens">tokens</a>` : ''} <form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="${o.viewer.csrf ?? ''}"><button class="secondary" type="submit">Sign out</button></form></span>`
    : html`<span class="who"><a href="/login">Sign in</a></span>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · Lenix</title>
<link rel="stylesheet" href="${assetUrl('app.css')}">
${o.json ? html`<link rel="alternate" type="application/json" href="${o.json}">` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<a class="brand" href="/">Lenix</a>
<nav class="main" aria-label="Main"><ul>${nav}</ul></nav>
${who}
</header>
<main id="main">
<h1>${o.title}</h1>
${o.body}
</main>
<footer class="site">Every page here is public and read-only${o.json ? html` · <a href="${o.json}">this page as JSON</a>` : ''} · <a href="/api/v1/openapi.json">API</a> · <a href="/ledger/checkpoint">ledger checkpoint</a></footer>
${(o.scripts ?? []).map((s) => html`<script src="${assetUrl(s)}" defer></script>`)}
</body>
</html>
`.value;
}
