/**
 * Child process for the crash test: starts one node, writes one key and dies with SIGKILL
 * right after the write is acknowledged — before the outbox relay (which runs on a timer
 * or `setImmediate` after the write's notification) could turn it into replication jobs.
 *
 * Input (environment): `EC_NODE_OPTIONS` (JSON `ReplicaNodeOptions`), `EC_KEY`, `EC_VALUE` (JSON).
 * Output (stdout): `READY`, then `ACK <hlc>` written synchronously just before the kill.
 *
 *   node --import tsx test/support/crash-after-ack.ts
 */
import { writeSync } from 'node:fs';
import { ReplicaNode } from '../../src/node/replica-node.js';
import type { ReplicaNodeOptions } from '../../src/node/options.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

const options = JSON.parse(required('EC_NODE_OPTIONS')) as ReplicaNodeOptions;
const key = required('EC_KEY');
const value = JSON.parse(required('EC_VALUE')) as string;

const node = await ReplicaNode.start(options);
// The start-up sweep must be over, so no flush is running when the write commits.
await node.flushOutbox();
writeSync(1, 'READY\n');

void node.put(key, value).then((view) => {
  // Still inside the microtasks that follow EXEC: the relay's timer has not fired.
  writeSync(1, `ACK ${view.hlc}\n`);
  process.kill(process.pid, 'SIGKILL');
});
