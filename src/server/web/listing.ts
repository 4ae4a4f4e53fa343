import type { TreeEntry } from '../../release/tree-listing.js';
import { html } from './html.js';

/**
 * A directory listing in the plain form mirrors' web servers give (Apache's and nginx's autoindex): a title, a
 * link to the parent, and one link per entry, folders ending in a slash. No scripts, no styles.
 */
export function directoryListing(at: string, entries: readonly TreeEntry[]): string {
  const title = `Index of ${at}`;
  return html`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1><pre><a href="../">../</a>
${entries.map((e) => {
  const name = e.folder ? `${e.name}/` : e.name;
  return html`<a href="${encodeURIComponent(e.name)}${e.folder ? '/' : ''}">${name}</a>\n`;
})}</pre></body></html>
`.value;
}
