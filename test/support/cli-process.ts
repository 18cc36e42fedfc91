/**
 * Runs `bin/eventual-cache.js` as a child process, the way a user or a container does,
 * and waits on what it prints with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/eventual-cache.js', import.meta.url));

/** Environment variables of the CLI that a test must not inherit from the developer's shell. */
const CLI_VARIABLES = /^(EVENTUAL_CACHE_|PORT$|LOG_LEVEL$)/;

export interface CliRun {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines on stdout so far (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the first stdout/stderr text matching `pattern`; rejects at the deadline or if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal name) once the process has exited; rejects at the deadline. */
  exited(timeoutMs?: number): Promise<number | string>;
  /** SIGKILL if still running (cleanup). */
  kill(): void;
}

/**
 * Spawns the CLI with `args`. The environment is the test's minus any CLI variables,
 * plus `env` (a value of `undefined` removes a variable).
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): CliRun {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CLI_VARIABLES.test(k)));
  const merged = { ...base, ...env };
  const childEnv = Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
  const child = spawn(process.execPath, [BIN, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of listeners) l();
  };
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    notify();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    notify();
  });
  const exit = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
      // Let 'data' events that are still queued arrive before waiters give up.
      setImmediate(notify);
    });
  });
  let exitedWith: number | string | undefined;
  void exit.then((c) => {
    exitedWith = c;
  });

  const describe = () => `exit: ${exitedWith ?? 'running'}\n--- stdout ---\n${out.slice(-4000)}\n--- stderr ---\n${err.slice(-4000)}`;

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      out.split('\n').flatMap((line) => {
        try {
          const parsed = JSON.parse(line) as unknown;
          return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      }),
    waitForOutput(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern) ?? err.match(pattern);
          if (m) return finish(() => resolve(m));
          if (exitedWith !== undefined) return finish(() => reject(new Error(`process exited before printing ${pattern}\n${describe()}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms\n${describe()}`))), timeoutMs);
        const finish = (f: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          f();
        };
        listeners.add(check);
        check();
      });
    },
    exited(timeoutMs = 20_000) {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        exit,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs} ms\n${describe()}`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    },
    kill() {
      if (exitedWith === undefined) child.kill('SIGKILL');
    },
  };
}

/** A temporary directory, removed by the returned `remove()`. */
export function tempDir(label: string): { dir: string; write(name: string, content: unknown): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `ec-${label}-`));
  return {
    dir,
    write(name, content) {
      const path = join(dir, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The `url` a node logged when it started listening (JSON logs: `{"node": "A", "url": …}`). */
export async function listeningUrl(run: CliRun, id: string, timeoutMs = 20_000): Promise<string> {
  const m = await run.waitForOutput(new RegExp(`"node":"${id}"[^\\n]*"url":"(http://[^"]+)"`), timeoutMs);
  return m[1] as string;
}
