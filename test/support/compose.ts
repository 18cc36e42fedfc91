/**
 * Reading the compose files and the Dockerfile the way Compose and the image would, for
 * the tests that keep them in step with the CLI (no container engine runs on the test
 * machines, so they are parsed, not run).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadConfig, type ClusterConfig } from '../../src/cli/config.js';

export const repoRoot = new URL('../../', import.meta.url);

/** A file of the repository, as text. */
export const readRepoFile = (path: string): string => readFileSync(new URL(path, repoRoot), 'utf8');

/** The parts of a compose service the tests look at. */
export interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

export interface ComposeFile {
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** A compose file, with YAML merge keys (`<<: *anchor`) applied as Compose applies them. */
export function readCompose(path: string): ComposeFile {
  return parse(readRepoFile(path), { merge: true }) as ComposeFile;
}

/**
 * Compose's interpolation with an empty shell environment: `${NAME:-default}` / `${NAME}`
 * become the default (or nothing), and `$$` becomes a literal `$`.
 */
export function interpolate(value: string | number): string {
  return String(value)
    .split('$$')
    .map((part) => part.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_, _name: string, fallback?: string) => fallback ?? ''))
    .join('$');
}

/** `ENV NAME=value` lines of the Dockerfile's final stage. */
export function dockerfileEnv(): Record<string, string> {
  const stages = readRepoFile('Dockerfile').replace(/\\\n/g, ' ').split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  const pairs = [...last.matchAll(/^ENV\s+(.+)$/gm)].flatMap((m) => [...(m[1] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)]);
  return Object.fromEntries(pairs.map((p) => [p[1] as string, p[2] as string]));
}

/** What a node service's environment makes the CLI load, exactly as `eventual-cache node` in the image would. */
export function configOf(service: Service): { config: ClusterConfig; env: Record<string, string> } {
  const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
  return { config: loadConfig({ env: { ...dockerfileEnv(), ...env } }), env };
}
