// A TCP proxy on loopback that can stall: while held, it accepts connections and reads what
// clients send but forwards nothing, like an overloaded API server that has not answered yet;
// release() forwards everything held. For slow-server faults without touching the server.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

interface Held {
  client: Socket;
  chunks: Buffer[];
}

export class StallingProxy {
  private holding = false;
  private held: Held[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(targetPort: number): Promise<StallingProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new StallingProxy(server, targetPort);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** From now on, new connections get no answer until release(). */
  hold(): void {
    this.holding = true;
  }

  /** Forwards the held connections and passes new ones straight through. */
  release(): void {
    this.holding = false;
    for (const h of this.held.splice(0)) this.pipe(h.client, h.chunks);
  }

  /** Connections waiting for release(). */
  get waiting(): number {
    return this.held.filter((h) => !h.client.destroyed).length;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    if (!this.holding) return this.pipe(client, []);
    const h: Held = { client, chunks: [] };
    client.on('data', (d: Buffer) => h.chunks.push(d));
    this.held.push(h);
  }

  private pipe(client: Socket, chunks: Buffer[]): void {
    client.removeAllListeners('data');
    const upstream = connect(this.targetPort, '127.0.0.1');
    this.track(upstream);
    for (const c of chunks) upstream.write(c);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
  }
}
