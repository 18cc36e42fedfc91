// Starts fold-worker.ts from the TypeScript sources (a checkout, the tests): tsx registered
// inside the worker thread, as bin/eventual-cache.js does for the CLI. A build starts the
// compiled fold-worker.js directly (see fold-thread.ts).
const { register } = await import('tsx/esm/api');
register();
await import('./fold-worker.ts');
