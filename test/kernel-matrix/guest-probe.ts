// Runs inside a kernel-matrix guest (bundled by the lane, run by guest-init.sh with the
// host's node): loads dnsrace's programs through the project's own loader into a cgroup of
// its own, drives DNS through a local dnsmasq, drops a query with nft, provokes conntrack
// insert failures where fexit is attached, reads the maps and writes a JSON report
// (report.ts) to /dev/ttyS1. The guest is a throw-away VM: the probe changes its root netns,
// cgroup tree and nft ruleset freely, and the VM powers off afterwards.
import { MapReader } from '../../src/bpf/map-reader.js';
import { execa, type ResultPromise } from 'execa';
import { createSocket, type Socket } from 'node:dgram';
import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { Bpftool } from '../../src/bpf/bpftool.js';
import { progRunStats } from '../../src/bpf/bpftool-output.js';
import { healthFromPerCpu } from '../../src/bpf/dns-health.js';
import { DnsProgramLoader, type LoadedPrograms } from '../../src/bpf/loader.js';
import { expiredPendingKeys } from '../../src/dns/pending.js';
import { conntrackStat } from './conntrack-stat.js';
import { failedObjects, logTail } from './load-log.js';
import {
  buildQuery,
  parseResponseHeader,
  qtypeBitOffsetInUdp,
  QTYPE_A,
  QTYPE_AAAA,
} from './dns-query.js';
import {
  dropRowFromDump,
  summarizeRow,
  type DnsObservation,
  type DropObservation,
  type DropRow,
  type GuestReport,
  type RaceObservation,
  type Side,
} from './report.js';

const REPORT_PORT = '/dev/ttyS1';
const REPORTED_MARK = '/run/km-reported';
const CGROUP_ROOT = '/sys/fs/cgroup';
const ATTACH_DIR = join(CGROUP_ROOT, 'dnsrace-km');
const CLIENT_DIR = join(ATTACH_DIR, 'client');
const SERVER_DIR = join(ATTACH_DIR, 'server');
const BPFFS_DIR = '/sys/fs/bpf/dnsrace-km';
const DNS_SERVER = '127.0.0.1';
const ZONE = 'km.test';
const NAME_OK = `a.${ZONE}`;
const NAME_NX = `nx.${ZONE}`;
const NAME_DROP = `drop.${ZONE}`;
const NFT_TABLE = 'dnsrace_km';
/** a pending query older than this is swept (the AAAA's last send is ~0.5 s old by then) */
const SWEEP_DEADLINE_NS = 200_000_000n;
const QTYPE_LABEL = ['A', 'AAAA', 'other'] as const;
const DROP_HEALTH_CONFIRM_DROPS = 4; // bpf/drops.h enum drop_health_counter
const REASON_NETFILTER = 0; // bpf/drops.h enum drop_reason_class
const REASON_INSERT_FAILED = 1;
/** ct-race rounds: a round of RACE_ITERATIONS SYN pairs, again while none clashed */
const RACE_ITERATIONS = 300;
const RACE_ROUNDS = 4;

const repo = process.cwd();
const say = (msg: string) => console.log(`km-probe[${process.uptime().toFixed(1)}]: ${msg}`);
const stringify = (v: unknown) =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

const report: GuestReport = {
  kernel: process.env.km_kernel ?? '?',
  release: release(),
  steps: [],
  runCounts: {},
};

/** Runs one step and records it; a failed step returns undefined and the report says why. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const v = await fn();
    report.steps.push({ name, ok: true, seconds: (performance.now() - t0) / 1000 });
    say(`${name}: ok`);
    return v;
  } catch (err) {
    const error = errorText(err);
    report.steps.push({ name, ok: false, seconds: (performance.now() - t0) / 1000, error });
    say(`${name}: FAILED: ${error}`);
    return undefined;
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message})` : '';
  return `${err.message}${cause}`.slice(0, 2000);
}

// ---------------------------------------------------------------- cgroups, DNS

async function moveSelfTo(cgroupDir: string): Promise<void> {
  await writeFile(join(cgroupDir, 'cgroup.procs'), String(process.pid));
}

async function cgroupId(dir: string): Promise<bigint> {
  return (await stat(dir, { bigint: true })).ino;
}

/** dnsmasq in the server cgroup: authoritative for km.test, no cache, no upstream. */
function startDnsmasq(): ResultPromise {
  return execa(
    'sh',
    [
      '-c',
      'echo $$ > "$0" && exec "$@"',
      join(SERVER_DIR, 'cgroup.procs'),
      'dnsmasq',
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      `--listen-address=${DNS_SERVER}`,
      '--port=53',
      `--local=/${ZONE}/`,
      `--host-record=${NAME_OK},10.0.0.1`,
      '--cache-size=0',
      '--pid-file=/run/km-dnsmasq.pid',
      '--log-facility=-',
    ],
    { reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' },
  );
}

/** A connected UDP socket to the server, created while this process sits in cgroupDir. */
async function clientSocket(cgroupDir: string): Promise<Socket> {
  await moveSelfTo(cgroupDir);
  try {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(53, DNS_SERVER, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    // A connected UDP socket reports the ICMP port unreachable of a server not yet listening
    // as an error event; the exchange times out and is retried instead.
    sock.on('error', (err) => say(`udp socket: ${err.message}`));
    return sock;
  } finally {
    // The socket keeps the cgroup it was created in; bpftool and friends run outside.
    await moveSelfTo(CGROUP_ROOT);
  }
}

let nextId = 0x4b00;
/** Sends msg and waits for the answer with its id; undefined after timeoutMs. */
function exchange(sock: Socket, msg: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  const id = msg.readUInt16BE(0);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.off('message', onMessage);
      resolve(undefined);
    }, timeoutMs);
    const onMessage = (m: Buffer) => {
      if (m.length < 12 || m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off('message', onMessage);
      resolve(m);
    };
    sock.on('message', onMessage);
    sock.send(msg);
  });
}

async function ask(sock: Socket, name: string, qtype: number, timeoutMs = 3000): Promise<string> {
  const answer = await exchange(sock, buildQuery(nextId++, name, qtype), timeoutMs);
  if (!answer) return 'no answer';
  const h = parseResponseHeader(answer);
  return `rcode ${h.rcode}, ${h.answers} answers`;
}

async function waitDnsmasqReady(): Promise<true> {
  const sock = await clientSocket(CGROUP_ROOT);
  try {
    for (let i = 0; i < 40; i++) {
      if ((await ask(sock, NAME_OK, QTYPE_A, 500)) !== 'no answer') return true;
    }
    throw new Error('dnsmasq did not answer on 127.0.0.1:53 within 20 s');
  } finally {
    sock.close();
  }
}

/** a.km.test A (NOERROR), nx.km.test A (NXDOMAIN), then drop.km.test AAAA sent twice. */
/** `name:attach_type` of the programs attached to the probe's cgroup; undefined where the
 * kernel cannot list them (5.10 with multi attachments). */
async function listAttached(bpftool: Bpftool): Promise<string[] | undefined> {
  try {
    return (await bpftool.cgroupShow(ATTACH_DIR)).map((a) => `${a.name}:${a.attach_type}`);
  } catch (err) {
    say(`cgroup show failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
    return undefined;
  }
}

async function clientTraffic(answers: Record<string, string>): Promise<void> {
  const sock = await clientSocket(CLIENT_DIR);
  try {
    answers[`${NAME_OK}/A`] = await ask(sock, NAME_OK, QTYPE_A);
    answers[`${NAME_NX}/A`] = await ask(sock, NAME_NX, QTYPE_A);
    // The AAAA query and its re-send on the same socket with the same id: a retransmit.
    const q = buildQuery(nextId++, NAME_DROP, QTYPE_AAAA);
    const first = await exchange(sock, q, 1000);
    const second = await exchange(sock, q, 500);
    answers[`${NAME_DROP}/AAAA`] = first || second ? 'answered' : 'no answer';
  } finally {
    sock.close();
  }
  const ok = answers[`${NAME_OK}/A`] === 'rcode 0, 1 answers';
  if (!ok || answers[`${NAME_NX}/A`] !== 'rcode 3, 0 answers') {
    throw new Error(`unexpected answers from dnsmasq: ${JSON.stringify(answers)}`);
  }
}

// ---------------------------------------------------------------- netfilter

async function nft(script: string): Promise<void> {
  const r = await execa('nft', ['-f', '-'], { input: script, reject: false });
  if (r.failed) throw new Error(`nft -f failed: ${String(r.stderr).trim()}\n${script}`);
}

/**
 * The ct rule makes the netns a conntrack user (nf_conntrack registers its hooks only then;
 * without them fexit/__nf_conntrack_confirm never fires). The input rule drops AAAA queries
 * for drop.km.test after they left the client's socket, so the client sees a stall.
 */
function nftRuleset(): string {
  const offset = qtypeBitOffsetInUdp(NAME_DROP);
  return `table inet ${NFT_TABLE} {
  chain output {
    type filter hook output priority 0; policy accept;
    ct state new counter comment "km-conntrack-user"
  }
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 53 @th,${offset},16 ${QTYPE_AAAA} counter drop comment "km-drop-aaaa"
  }
}
`;
}

/** packets counted by the drop rule */
async function nftDropCounter(): Promise<number> {
  const r = await execa('nft', ['-j', 'list', 'table', 'inet', NFT_TABLE]);
  const doc = JSON.parse(String(r.stdout)) as { nftables: Record<string, unknown>[] };
  for (const item of doc.nftables) {
    const rule = item.rule as { comment?: string; expr?: Record<string, unknown>[] } | undefined;
    if (rule?.comment !== 'km-drop-aaaa') continue;
    const counter = rule.expr?.find((e) => 'counter' in e)?.counter as { packets?: number };
    return counter?.packets ?? NaN;
  }
  throw new Error(`no km-drop-aaaa rule in table inet ${NFT_TABLE}`);
}

// ---------------------------------------------------------------- maps

async function readDns(
  bpftool: Bpftool,
  maps: Record<string, string>,
  cgroups: { client: bigint; server: bigint },
): Promise<Pick<DnsObservation, 'client' | 'server' | 'health'>> {
  const client: Side = {};
  const server: Side = {};
  for (const e of await bpftool.mapDump(maps.dns_stats!)) {
    const key = e.key as { cgroup_id: number | bigint; role: number; qtype: number };
    const id = BigInt(key.cgroup_id);
    const side = id === cgroups.client ? client : id === cgroups.server ? server : undefined;
    if (side) side[QTYPE_LABEL[key.qtype] ?? 'other'] = summarizeRow(e.value);
  }
  const health = new Map<number, number>();
  for (const e of await bpftool.mapDump(maps.dns_health!, { perCpu: 'sum' })) {
    health.set(Number(e.key), Number(e.value));
  }
  return { client, server, health: healthFromPerCpu(health) };
}

async function readDrops(
  bpftool: Bpftool,
  maps: Record<string, string>,
): Promise<{ rows: DropRow[]; health: number[] }> {
  const rows = (await bpftool.mapDump(maps.packet_drops!)).map((e) =>
    dropRowFromDump(e.key, e.value),
  );
  const health: number[] = [];
  for (const e of await bpftool.mapDump(maps.drop_health!, { perCpu: 'sum' })) {
    health[Number(e.key)] = Number(e.value);
  }
  return { rows, health };
}

/** Rows whose packet count changed, with the change as packets. */
function rowDeltas(before: DropRow[], after: DropRow[]): DropRow[] {
  const id = (r: DropRow) => JSON.stringify({ ...r, packets: 0 });
  const old = new Map(before.map((r) => [id(r), r.packets]));
  return after
    .map((r) => ({ ...r, packets: r.packets - (old.get(id(r)) ?? 0) }))
    .filter((r) => r.packets !== 0);
}

const packetsWithReason = (rows: DropRow[], reason: number) =>
  rows.filter((r) => r.reason === reason).reduce((a, r) => a + r.packets, 0);

/**
 * The loader condenses a failed load to libbpf's summary; CI needs the verifier's reason.
 * Loads the object alone once more (its own maps, nothing attached) and returns the tail of
 * the program load log.
 */
async function verifierLogTail(objPath: string): Promise<string[]> {
  const pin = `/sys/fs/bpf/km-diagnose-${objPath.split('/').at(-1)!.replace(/\W/g, '_')}`;
  const r = await execa(
    'bpftool',
    ['prog', 'loadall', objPath, `${pin}/p`, 'pinmaps', `${pin}/m`],
    {
      reject: false,
    },
  );
  await execa('rm', ['-rf', pin], { reject: false });
  return logTail(String(r.stderr), 12);
}

async function insertFailed(): Promise<number> {
  return conntrackStat(await readFile('/proc/net/stat/nf_conntrack', 'utf8'), 'insert_failed');
}

/**
 * Two CPUs send the same TCP SYN to port 53 at once until conntrack refuses one (a few
 * rounds at most: under TCG the two vCPUs meet in the window in 1-90% of the iterations).
 */
async function conntrackRace(
  bpftool: Bpftool,
  maps: Record<string, string>,
): Promise<RaceObservation> {
  const before = { ...(await readDrops(bpftool, maps)), insertFailed: await insertFailed() };
  let iterations = 0;
  let sendErrors = 0;
  for (let round = 0; round < RACE_ROUNDS && sendErrors === 0; round++) {
    const r = await execa(process.env.km_ct_race!, [String(RACE_ITERATIONS), DNS_SERVER, '53']);
    const m = /iterations=(\d+) sent=(\d+) send_errors=(\d+)/.exec(String(r.stdout));
    if (!m) throw new Error(`ct-race printed ${JSON.stringify(String(r.stdout))}`);
    iterations += Number(m[1]);
    sendErrors += Number(m[3]);
  }
  const after = { ...(await readDrops(bpftool, maps)), insertFailed: await insertFailed() };
  const health = (h: number[]) => h[DROP_HEALTH_CONFIRM_DROPS] ?? 0;
  return {
    rowsMoved: rowDeltas(before.rows, after.rows),
    iterations,
    sendErrors,
    insertFailed: after.insertFailed - before.insertFailed,
    confirmDrops: health(after.health) - health(before.health),
    insertFailedRows:
      packetsWithReason(after.rows, REASON_INSERT_FAILED) -
      packetsWithReason(before.rows, REASON_INSERT_FAILED),
    netfilterRows:
      packetsWithReason(after.rows, REASON_NETFILTER) -
      packetsWithReason(before.rows, REASON_NETFILTER),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const bpftool = new Bpftool({ timeoutMs: 60_000 });
  const objPath = process.env.km_dns_obj ?? join(repo, 'bpf', 'dist', 'dns.bpf.o');
  const loader = new DnsProgramLoader({
    bpftool,
    objPath,
    cgroupDir: ATTACH_DIR,
    bpffsDir: BPFFS_DIR,
  });
  say(`kernel ${report.release}, matrix id ${report.kernel}, objects beside ${objPath}`);

  await step('enable bpf_stats', () => writeFile('/proc/sys/kernel/bpf_stats_enabled', '1'));
  const cgroups = await step('create cgroups', async () => {
    for (const d of [ATTACH_DIR, CLIENT_DIR, SERVER_DIR]) await mkdir(d, { recursive: true });
    return { client: await cgroupId(CLIENT_DIR), server: await cgroupId(SERVER_DIR) };
  });
  if (!cgroups) return;
  const dnsmasq = startDnsmasq();
  try {
    if (!(await step('dnsmasq ready', waitDnsmasqReady))) return;
    const loaded: LoadedPrograms | undefined = await step('loader.start', () => loader.start());
    if (!loaded) return;
    const d = loaded.dropAttribution;
    say(`drop attribution: ${d.mode}; fallbacks: ${d.fallbacks.join(' | ') || 'none'}`);
    const diagnosis: string[] = [];
    for (const obj of failedObjects(d.fallbacks)) {
      const tail = await verifierLogTail(join(dirname(objPath), obj));
      for (const line of tail) say(`verifier ${obj}: ${line}`);
      diagnosis.push(`${obj}: ${tail.slice(-6).join(' / ')}`);
    }
    // 5.10's BPF_PROG_QUERY fails (EINVAL) once programs are attached with multi: there the
    // attachment is judged by its effect instead (the client's and server's rows moving).
    const attached = await listAttached(bpftool);
    await step('nft ruleset', () => nft(nftRuleset()));

    const answers: Record<string, string> = {};
    await step('client traffic', () => clientTraffic(answers));
    const nftDropped = (await step('nft counter', nftDropCounter)) ?? NaN;

    const maps = loaded.maps;
    // The pinned map iterators (kernel >= 5.9) read what bpftool dumps.
    await step('map iterators', async () => {
      const reader = new MapReader(bpftool, loaded.iterators);
      const pinned = Object.keys(loaded.iterators).sort().join(',');
      if (pinned !== 'dns_pending,dns_stats') throw new Error(`iterators pinned: '${pinned}'`);
      for (const m of ['dns_stats', 'dns_pending']) {
        const [viaIterator, viaDump] = await Promise.all([
          reader.dump(maps[m]!),
          bpftool.mapDump(maps[m]!),
        ]);
        const key = (e: { key: unknown }) =>
          JSON.stringify(e.key, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
        const a = viaIterator.map(key).sort();
        const b = viaDump.map(key).sort();
        if (m === 'dns_stats' && (a.length === 0 || a.join('|') !== b.join('|')))
          throw new Error(`${m}: ${a.length} rows by iterator, ${b.length} by dump`);
      }
      say(`map iterators: ${pinned}`);
    });
    const sweepKeys = await step('timeout sweep', async () => {
      const pending = await bpftool.mapDump(maps.dns_pending!);
      for (const e of pending) {
        const v = { ...(e.value as Record<string, unknown>) };
        delete v.qname; // 128 bytes of wire-format name: noise in the log
        say(`pending ${stringify(e.key)} -> ${stringify(v)}`);
      }
      const keys = expiredPendingKeys(pending, process.hrtime.bigint(), SWEEP_DEADLINE_NS);
      await loader.sweepTimeouts(keys, SWEEP_DEADLINE_NS);
      return keys.length;
    });

    const dns = await step('read DNS maps', async () => {
      const seen = await readDns(bpftool, maps, cgroups);
      const counted = (seen.client.A?.queries ?? 0) > 0 && (seen.server.A?.queries ?? 0) > 0;
      const obs: DnsObservation = {
        attached:
          attached ??
          (counted ? ['dns_egress:cgroup_inet_egress', 'dns_ingress:cgroup_inet_ingress'] : []),
        ...seen,
        answers,
        nftDropped,
        sweepKeys: sweepKeys ?? -1,
        detachedAfterStop: false,
      };
      return obs;
    });
    const drops = await step('read drop maps', async () => {
      const obs: DropObservation = {
        mode: d.mode,
        fallbacks: d.fallbacks,
        links: Object.keys(d.links).sort(),
        diagnosis,
        ...(await readDrops(bpftool, maps)),
      };
      for (const r of obs.rows) say(`packet_drops ${stringify(r)}`);
      return obs;
    });
    if (drops && d.mode === 'fexit' && process.env.km_ct_race) {
      const race = await step('conntrack insert race', () => conntrackRace(bpftool, maps));
      if (race) {
        drops.race = race;
        say(`race: ${stringify(race)}`);
      }
    }

    await step('run counts', async () => {
      for (const p of await bpftool.progShow()) {
        const s = progRunStats(p);
        if (s && p.name) report.runCounts[p.name] = Number(s.run_cnt);
      }
      say(`run counts: ${stringify(report.runCounts)}`);
    });

    await step('loader.stop', async () => {
      await loader.stop();
      const listed = await listAttached(bpftool);
      if (dns && listed) dns.detachedAfterStop = listed.length === 0;
      else if (dns) {
        // No listing (5.10): one more lookup must leave the kept maps unchanged.
        const before = await readDns(bpftool, maps, cgroups);
        await clientTraffic({});
        const after = await readDns(bpftool, maps, cgroups);
        dns.detachedAfterStop = after.client.A?.queries === before.client.A?.queries;
      }
      await loader.stop({ purge: true });
    });
    if (dns) report.dns = dns;
    if (drops) report.drops = drops;
  } finally {
    dnsmasq.kill('SIGTERM');
    await dnsmasq;
    for (const dir of [CLIENT_DIR, SERVER_DIR, ATTACH_DIR]) await rmdir(dir).catch(() => {});
  }
}

async function writeReport(): Promise<void> {
  await writeFile(REPORT_PORT, JSON.stringify(report) + '\n');
  await writeFile(REPORTED_MARK, 'yes\n');
}

main()
  .catch((err: unknown) => {
    report.fatal = `probe crashed: ${errorText(err)}`;
    say(report.fatal);
  })
  .then(writeReport)
  .then(
    () => process.exit(0),
    (err: unknown) => {
      say(`cannot write the report: ${errorText(err)}`);
      process.exit(1);
    },
  );
