/**
 * Entry point of the `eventual-cache` command (`bin/eventual-cache.js`, `npm start`,
 * `npm run demo`). Importing this module runs the CLI with the process arguments; the
 * commands themselves live in `cli.ts` so that tests can import them without side effects.
 */
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2));
// Commands that end exit explicitly: Redis and BullMQ sockets closing in the background
// must not keep a finished demo waiting. Server commands return undefined and keep running.
if (code !== undefined) process.exit(code);
