import { LenixError } from '../core/errors.js';

/** What a source of a batch needs and offers, as its spec (and earlier builds) say. */
export interface OrderInput {
  readonly source: string;
  /** BuildRequires, as capability names (versions dropped). */
  readonly needs: readonly string[];
  /** Package names, Provides, and capabilities its packages are known to offer. */
  readonly offers: readonly string[];
}

/**
 * Order a batch's sources into groups that can build at the same time (pure): each source comes in a group
 * after every source of the batch that offers something it needs. Needs nothing in the batch offers are left to
 * the target's repositories. A cycle is refused with BUILD_ORDER_CYCLE, printed as `a → b → a`.
 */
export function orderBuilds(inputs: readonly OrderInput[]): string[][] {
  const offeredBy = new Map<string, Set<string>>();
  for (const i of inputs) for (const o of i.offers) offeredBy.set(o, new Set([...(offeredBy.get(o) ?? []), i.source]));
  const deps = new Map<string, Set<string>>();
  for (const i of inputs) {
    const d = new Set<string>();
    for (const n of i.needs) for (const s of offeredBy.get(n) ?? []) if (s !== i.source) d.add(s);
    deps.set(i.source, d);
  }
  const groups: string[][] = [];
  const placed = new Set<string>();
  while (placed.size < deps.size) {
    const ready = [...deps.keys()].filter((s) => !placed.has(s) && [...deps.get(s)!].every((d) => placed.has(d)));
    if (ready.length === 0) {
      const cycle = findCycle(
        [...deps.keys()].filter((s) => !placed.has(s)),
        deps,
      );
      throw new LenixError('BUILD_ORDER_CYCLE', `the sources need each other: ${cycle.join(' → ')}`);
    }
    ready.sort();
    for (const s of ready) placed.add(s);
    groups.push(ready);
  }
  return groups;
}

/** One cycle among the unplaced sources (each has an unplaced dependency, so walking always finds one). */
function findCycle(unplaced: readonly string[], deps: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const left = new Set(unplaced);
  const path: string[] = [];
  let at = [...left].sort()[0]!;
  while (!path.includes(at)) {
    path.push(at);
    at = [...deps.get(at)!].filter((d) => left.has(d)).sort()[0]!;
  }
  return [...path.slice(path.indexOf(at)), at];
}

/** A BuildRequires as the capability it names: `foo >= 1.2` → `foo`. */
export const capabilityOf = (requirement: string): string => requirement.trim().split(/\s+/)[0] ?? '';
