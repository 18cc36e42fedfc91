/**
 * A TCP proxy that delays every chunk by a fixed time in each direction: a Redis that is
 * `2 × delayMs` further away per round trip (a slow network, or a saturated host). Chunks
 * keep their order because every one waits the same time.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export class LatencyProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server = createServer((client) => this.pair(client));

  private constructor(
    private readonly target: { host: string; port: number },
    private delayMs: number,
  ) {}

  /** Changes the delay of the chunks forwarded from now on (0: a plain proxy). */
  setDelay(delayMs: number): void {
    this.delayMs = delayMs;
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `target`. */
  static async start(target: { host: string; port: number }, delayMs: number): Promise<LatencyProxy> {
    const proxy = new LatencyProxy(target, delayMs);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pair(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), this.delayMs));
    from.on('close', () => setTimeout(() => to.destroy(), this.delayMs));
  }
}
