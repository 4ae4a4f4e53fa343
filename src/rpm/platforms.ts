import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { LenixError } from '../core/errors.js';

/** The platforms Lenix maintains: platforms/NAME/ in its own tree (a spec and its macro file). */
const PLATFORMS_DIR = fileURLToPath(new URL('../../../platforms/', import.meta.url));

/**
 * A build platform (like ALBS's AlmaLinux-9 platform): a package Lenix builds from platforms/NAME/ and installs
 * in every buildroot of a target that names it, and the macro file it carries, which the server's spec parse and
 * the SRPM task load as well (so the EVR is the same everywhere).
 */
export interface Platform {
  readonly name: string;
  /** The package every buildroot of the target installs (lenix-platform-NAME). */
  readonly package: string;
  /** Its macro file's name and text. */
  readonly macroFile: string;
  readonly macros: string;
  /** The folder with its spec and sources (what a platform source repository is made of). */
  readonly dir: string;
}

const NAME = /^[a-z][a-z0-9]{0,15}$/;

/** The platforms this Lenix carries. */
export function knownPlatforms(): string[] {
  if (!existsSync(PLATFORMS_DIR)) return [];
  return readdirSync(PLATFORMS_DIR).filter(
    (d) => NAME.test(d) && existsSync(path.join(PLATFORMS_DIR, d, `macros.lenix-${d}`)),
  );
}

/** Platforms read once per process: they ship with this Lenix and change only with it. */
const loaded = new Map<string, Platform>();

/** A platform by name, or TARGET_INVALID naming the known ones. */
export function platformOf(name: string): Platform {
  const hit = loaded.get(name);
  if (hit) return hit;
  if (!NAME.test(name) || !knownPlatforms().includes(name))
    throw new LenixError(
      'TARGET_INVALID',
      `no platform ${name.slice(0, 32)}; this Lenix has: ${knownPlatforms().join(', ') || 'none'}`,
    );
  const dir = path.join(PLATFORMS_DIR, name);
  const macroFile = `macros.lenix-${name}`;
  const platform = {
    name,
    package: `lenix-platform-${name}`,
    macroFile,
    macros: readFileSync(path.join(dir, macroFile), 'utf8'),
    dir,
  };
  loaded.set(name, platform);
  return platform;
}
