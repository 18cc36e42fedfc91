/**
 * The HTTP server of scenario 5, run in its own process (`fork`ed by the scenario) so the
 * load generator and the server do not share an event loop. Both sides run here, chosen
 * by the first argument:
 *
 *   bare                                     Express 5, `express.json()`, a handler answering `{}`
 *   node <redis-url> <peer-url> <peer-url>   a replica node behind `createApp(node, {})`, its two
 *                                            peers declared but not running (as in scenario 1)
 *
 * Talks to the parent over IPC: sends `{ready, port}`, answers `{stop}` with
 * `{stopped, writes}` and exits; exits on its own if the parent goes away.
 */
import express from 'express';
import type { Server } from 'node:http';
import { createApp } from '../../src/http/app.js';
import { ReplicaNode } from '../../src/node/replica-node.js';

const [mode, redis, peerA, peerB] = process.argv.slice(2);

async function main(): Promise<void> {
  let node: ReplicaNode | undefined;
  let app: express.Express;
  if (mode === 'bare') {
    app = express();
    app.set('x-powered-by', false);
    app.set('etag', false);
    app.put('/keys/:key', express.json(), (_req, res) => {
      res.json({});
    });
  } else if (mode === 'node' && redis && peerA && peerB) {
    node = await ReplicaNode.start({
      id: 'n1',
      redis,
      prefix: 'bench',
      peers: [
        { id: 'n2', redis: peerA },
        { id: 'n3', redis: peerB },
      ],
    });
    await node.resynced();
    app = createApp(node, {});
  } else {
    throw new Error(`usage: http-target bare | node <redis-url> <peer-url> <peer-url>`);
  }
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.on('message', (message: { stop?: boolean }) => {
    if (!message.stop) return;
    void (async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      const writes = node ? ((await node.metrics.writes.get()).values[0]?.value ?? 0) : 0;
      await node?.close();
      process.send?.({ stopped: true, writes }, () => process.exit(0));
    })();
  });
  process.on('disconnect', () => process.exit(1));
  process.send?.({ ready: true, port });
}

main().catch((error: unknown) => {
  process.send?.({ error: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
