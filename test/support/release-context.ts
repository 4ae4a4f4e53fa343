import type { ApiClient } from '../../src/client/http.js';
import type { lenix } from './cli.js';
import type { DnfClient } from './dnf.js';

/** Flip one byte near the end (in the payload). */
export const flip = (b: Buffer) => b.writeUInt8(b.readUInt8(b.length - 100) ^ 0xff, b.length - 100);

export type Task = {
  id: number;
  kind: string;
  state: string;
  reasonCode: string | null;
  reason: string | null;
  artifacts: { kind: string; name: string; sha256: string }[];
};
export type Build = { id: number; state: string; tasks: Task[] };
export type Release = {
  id: number;
  state: string;
  overrideReason: string | null;
  reasonCode: string | null;
  reason: string | null;
  snapshot: number | null;
};

/** What the release suite shares with its longer scenarios (test/e2e-release.test.ts makes it). */
export interface ReleaseContext {
  readonly dir: string;
  readonly url: string;
  readonly api: ApiClient;
  cli(...args: string[]): ReturnType<typeof lenix>;
  build(name: string): Promise<number>;
  lastTask(b: Build, kind: string): Task | undefined;
  pipeline(id: number): Promise<Build>;
  addSource(name: string, files: Record<string, string>): Promise<string>;
  client(name: string, repo: string): Promise<DnfClient>;
}
