/**
 * The lab's "upstream" resolver (what the node's resolv.conf would point at): answers a few
 * fixed external names, NXDOMAIN for everything else, so nothing leaves the lab. Every answer
 * waits the delay (ms) written in the delay file, read per query: the "slow upstream" knob.
 *
 * Run inside the node netns: node --import tsx test/lab/upstream-dns.ts <config.json>
 * config: { listen: string[], port: number, records: {name: {a?, aaaa?}}, delayFile: string }
 * Prints "ready" on stdout once every UDP and TCP socket is bound.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, isIPv6, type Server } from 'node:net';
import { answerFor, buildResponse, parseQuestion, RCODE } from './dns-wire.js';

interface UpstreamConfig {
  listen: string[];
  port: number;
  records: Record<string, { a?: string[]; aaaa?: string[] }>;
  delayFile: string;
}

const configPath = process.argv[2];
if (!configPath) throw new Error('usage: upstream-dns.ts <config.json>');
const config = JSON.parse(readFileSync(configPath, 'utf8')) as UpstreamConfig;
const records = Object.fromEntries(
  Object.entries(config.records).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]),
);

function delayMs(): number {
  try {
    const n = Number(readFileSync(config.delayFile, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

function answer(query: Buffer): Buffer | undefined {
  try {
    const q = parseQuestion(query);
    const { rcode, answers } = answerFor(records, q);
    return buildResponse(query, q, rcode, answers);
  } catch (err) {
    process.stderr.write(`upstream-dns: bad query: ${(err as Error).message}\n`);
    if (query.length < 12) return undefined;
    const q = {
      id: query.readUInt16BE(0),
      flags: query.readUInt16BE(2),
      qname: '',
      qtype: 0,
      qclass: 0,
      questionEnd: 12,
    };
    return buildResponse(query.subarray(0, 12), q, RCODE.FORMERR, []);
  }
}

function later(fn: () => void): void {
  const ms = delayMs();
  if (ms > 0) setTimeout(fn, ms);
  else fn();
}

function udp(address: string): Promise<Socket> {
  const sock = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
  sock.on('message', (msg, rinfo) => {
    const res = answer(msg);
    if (res) later(() => sock.send(res, rinfo.port, rinfo.address));
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(config.port, address, () => resolve(sock));
  });
}

function tcp(address: string): Promise<Server> {
  const server = createServer((conn) => {
    let buf = Buffer.alloc(0);
    conn.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const res = answer(Buffer.from(msg));
        if (res) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(res.length);
          later(() => conn.writable && conn.write(Buffer.concat([len, res])));
        }
      }
    });
    conn.on('error', () => conn.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, address, () => resolve(server));
  });
}

await Promise.all(config.listen.flatMap((a) => [udp(a), tcp(a)]));
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
