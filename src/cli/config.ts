import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LenixError } from '../core/errors.js';
import type { ApiClient } from '../client/http.js';
import type { LenixClient } from '../client/lenix.js';
import type { Command } from 'commander';

/**
 * Where the CLI finds the server and token: flags, then LENIX_SERVER / LENIX_TOKEN, then the config file
 * that `lenix up` writes ($LENIX_CONFIG, or $XDG_CONFIG_HOME/lenix/config.json), then localhost:8080.
 */
/** ~/.config/lenix/config.json, as `lenix up` writes it. */
export interface CliConfig {
  readonly server: string;
  readonly token?: string | undefined;
}

/**
 * Check the config file's shape by hand: every command reads it, and zod's import alone costs more start-up
 * time (~110 ms here) than the rest of a client command.
 */
function parseConfig(value: unknown): CliConfig | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object';
  const { server, token, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return `unknown field ${Object.keys(rest)[0]}`;
  if (typeof server !== 'string' || !URL.canParse(server)) return 'server must be a URL';
  if (token !== undefined && (typeof token !== 'string' || token.length < 8))
    return 'token must be a string of at least 8 characters';
  return token === undefined ? { server } : { server, token };
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['LENIX_CONFIG']) return env['LENIX_CONFIG'];
  const base = env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config');
  return path.join(base, 'lenix', 'config.json');
}

export async function readConfig(env: NodeJS.ProcessEnv = process.env): Promise<CliConfig | null> {
  let text: string;
  try {
    text = await readFile(configPath(env), 'utf8');
  } catch {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = json === undefined ? 'not JSON' : parseConfig(json);
  if (typeof parsed === 'string')
    throw new LenixError('BAD_REQUEST', `config file ${configPath(env)} is not valid: ${parsed}`);
  return parsed;
}

export async function writeConfig(config: CliConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = configPath(env);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

export async function resolveTarget(
  flags: { server?: string; token?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ server: string; token: string | null }> {
  const file = await readConfig(env);
  const server = flags.server ?? env['LENIX_SERVER'] ?? file?.server ?? 'http://127.0.0.1:8080';
  const token = flags.token ?? env['LENIX_TOKEN'] ?? (file && file.server === server ? file.token : undefined) ?? null;
  return { server, token };
}

export async function readTokenFile(file: string): Promise<string> {
  const t = (await readFile(file, 'utf8')).trim();
  if (t.length < 8) throw new LenixError('UNAUTHENTICATED', `token file ${file} is empty`);
  return t;
}

/** An API client for a CLI command, from its global --server/--token flags, the environment or the config file. */
export async function apiClientFor(cmd: Command): Promise<LenixClient> {
  const t = await resolveTarget(cmd.optsWithGlobals<{ server?: string; token?: string }>());
  // The HTTP client loads when a command first talks to a server (an offline `lenix verify --bundle` never does).
  const [{ ApiClient }, { LenixClient }] = await Promise.all([
    import('../client/http.js'),
    import('../client/lenix.js'),
  ]);
  return new LenixClient(new ApiClient(t.server, t.token));
}

/**
 * What every agent command starts with: its server and token (`--token-file`, `--token`, `LENIX_TOKEN` or the
 * config file), and a stop signal for SIGINT/SIGTERM.
 */
export async function agentStart(
  flags: { server?: string; token?: string },
  tokenFile: string | undefined,
  who: string,
): Promise<{ api: ApiClient; stop: AbortSignal }> {
  const t = await resolveTarget(flags);
  const token = tokenFile ? await readTokenFile(tokenFile) : t.token;
  if (!token) throw new LenixError('UNAUTHENTICATED', `${who} needs --token, --token-file or LENIX_TOKEN`);
  const stop = new AbortController();
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => stop.abort());
  const { ApiClient } = await import('../client/http.js');
  return { api: new ApiClient(t.server, token), stop: stop.signal };
}
