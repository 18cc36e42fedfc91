import { LocalRedisServer } from '/work/wt8/src/local-redis/local-redis.ts';
import { ReplicaNode } from '/work/wt8/src/node/replica-node.ts';
const server = await LocalRedisServer.start();
for (const leaves of [0, 65536, 0, 65536, 65536, 0]) {
  const node = await ReplicaNode.start({ id: 'w1', redis: server.url(1), prefix: `b${leaves}x${Math.random()}`, peers: [{ id: 'w2', redis: server.url(2) }], digestLeaves: leaves, antiEntropy: { foldIntervalMs: Number(process.env.FOLD ?? 1000) } });
  let n = 0; const end = Date.now() + 1500;
  await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await node.put(`key-${Math.floor(Math.random() * 20000)}`, 'x'.repeat(100)); n++; } }));
  console.log(leaves, Math.round(n / 1.5), 'ops/s');
  await node.close();
}
await server.destroy(); process.exit(0);
