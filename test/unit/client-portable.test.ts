/**
 * The client runs in browsers as well as Node: at run time it may import nothing but its
 * own modules (type-only imports are erased), and use no Node globals.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const DIR = new URL('../../src/client/', import.meta.url);

describe('src/client', () => {
  it('should import only its own modules at run time, and no Node API', () => {
    for (const file of readdirSync(DIR).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(new URL(file, DIR), 'utf8');
      const runtimeImports = [...text.matchAll(/^(?:import|export)(?!\s+type\b)[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1]);
      expect(runtimeImports.filter((spec) => !/^\.\/[\w-]+\.js$/.test(spec ?? '')), file).toEqual([]);
      expect(text, file).not.toMatch(/\b(Buffer|process|require)\b[.(]/);
    }
  });
});
