/**
 * A task as people read it: its pipeline stage, with the arch where the stage has one (`srpm`, `build x86_64`,
 * `sign`, `repomd`, `test`, `test aarch64` for a tester's foreign root); never the queue's `any`. Its own module,
 * without the protocol's schemas, so that the CLI's client commands start without loading zod.
 */
export function taskStage(t: { readonly kind: string; readonly arch: string }): string {
  if (t.kind === 'binary') return `build ${t.arch}`;
  if (t.kind === 'test' && t.arch !== 'any') return `test ${t.arch}`;
  return t.kind;
}
