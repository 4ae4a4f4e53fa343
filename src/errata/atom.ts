import { byCodeUnits } from '../core/ids.js';
import { create } from 'xmlbuilder2';
import { finishXml } from '../core/xml-text.js';
import { cves, nevraOf, type Advisory } from './advisory.js';

/** An Atom feed (RFC 4287) of released advisories, newest update first. */
export function renderAtom(
  advisories: readonly Advisory[],
  o: { title: string; selfUrl: string; pageUrl: (id: string) => string; updated: number; author: string },
): string {
  const feed = create({ version: '1.0', encoding: 'UTF-8' }).ele('http://www.w3.org/2005/Atom', 'feed');
  feed.ele('title').txt(o.title);
  feed.ele('id').txt(o.selfUrl);
  feed.ele('link', { rel: 'self', href: o.selfUrl });
  feed.ele('updated').txt(new Date(Math.max(o.updated, ...advisories.map((a) => a.updated))).toISOString());
  feed.ele('author').ele('name').txt(o.author);
  for (const a of [...advisories].sort((x, y) => y.updated - x.updated || byCodeUnits(x.id, y.id))) {
    const e = feed.ele('entry');
    e.ele('title').txt(`${a.id}: ${a.title}${a.severity ? ` (${a.severity})` : ''}`);
    e.ele('id').txt(o.pageUrl(a.id));
    e.ele('link', { rel: 'alternate', href: o.pageUrl(a.id) });
    e.ele('published').txt(new Date(a.issued).toISOString());
    e.ele('updated').txt(new Date(a.updated).toISOString());
    e.ele('category', { term: a.type });
    if (a.severity) e.ele('category', { term: a.severity, scheme: 'severity' });
    const lines = [
      a.synopsis || a.title,
      '',
      a.description,
      '',
      `CVEs: ${cves(a).join(', ') || 'none'}`,
      `Packages: ${a.packages.map(nevraOf).join(', ')}`,
    ];
    e.ele('summary', { type: 'text' }).txt(lines.join('\n'));
  }
  return finishXml(`${feed.end({ prettyPrint: true })}\n`);
}
