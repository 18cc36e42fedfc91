import { Redis } from 'ioredis';
import { LocalRedisServer } from '/work/wt8/src/local-redis/local-redis.ts';
const server = await LocalRedisServer.start();
const r = new Redis(server.url(1));
for (const cmds of [3, 70, 270]) {
  const t0 = performance.now(); const N = 300;
  for (let i = 0; i < N; i++) {
    const m = r.multi();
    m.mset('a', '1', 'b', '2');
    for (let c = 0; c < cmds; c++) m.hincrby('tree', `4.${(i * 977 + c * 131) % 65536}`, 12345678901);
    await m.exec();
  }
  console.log(cmds, ((performance.now() - t0) / N).toFixed(3), 'ms per multi');
}
const info = await r.info('cpu'); console.log(info.split('\n').filter(l=>l.startsWith('used_cpu_user:')));
await server.destroy(); process.exit(0);
