#!/usr/bin/env node
// Runs the CLI from the TypeScript sources when they are present (a checkout: never a stale
// build), else from the compiled dist/ (an image or package that ships only the build).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('eventual-cache: neither src/cli/main.ts nor dist/cli/main.js exists; run "npm run build" or reinstall the package.\n');
  process.exit(1);
}
