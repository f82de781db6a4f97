import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  exec,
  inCgroupAndNetns,
  sleep,
  startBackground,
  waitForOutput,
  type BackgroundProcess,
} from './exec.js';
import { parseTcpdumpOutput, type DnsPacket } from './tcpdump-dns.js';

export interface DnsCapture {
  file: string;
  /** Stops tcpdump (SIGINT; -U already wrote every packet) and parses the file. */
  stop(): Promise<DnsPacket[]>;
}

/**
 * Records DNS (port 53, UDP and TCP) on one host-side veth inside the node netns. `-p` keeps
 * the interface out of promiscuous mode: a promiscuous bridge port makes br_netfilter
 * duplicate every bridged DNAT packet. `--immediate-mode` hands each packet to tcpdump at once
 * (otherwise libpcap's TPACKET_V3 ring holds a block back, and packets of an unretired block
 * are lost at SIGINT); `-U` writes each packet to the file as it arrives.
 */
export async function startDnsCapture(opts: {
  nodeNetns: string;
  iface: string;
  cgroupDir: string;
  file: string;
  logDir: string;
}): Promise<{ capture: DnsCapture; process: BackgroundProcess }> {
  const proc = startBackground(
    inCgroupAndNetns(opts.cgroupDir, opts.nodeNetns, [
      'tcpdump',
      '-p',
      '--immediate-mode',
      '-U',
      '-n',
      '-Z',
      'root',
      '-i',
      opts.iface,
      '-w',
      opts.file,
      'port',
      '53',
    ]),
    { logFile: join(opts.logDir, 'tcpdump.log'), pipeStderr: true },
  );
  // tcpdump says "listening on <if>" once the capture socket is open.
  await waitForOutput(
    proc.child.stderr!,
    'listening on',
    `tcpdump on ${opts.iface}`,
    10_000,
    proc.exited,
  ).catch(async (err: unknown) => {
    await proc.stop('SIGKILL');
    throw err;
  });
  proc.child.stderr!.resume();
  let result: Promise<DnsPacket[]> | undefined;
  const capture: DnsCapture = {
    file: opts.file,
    stop: () =>
      (result ??= (async () => {
        await settle(opts.file);
        await proc.stop('SIGINT');
        const r = await exec(['tcpdump', '-r', opts.file, '-nn', '-tt']);
        if (r.exitCode !== 0) throw new Error(`tcpdump -r ${opts.file}: ${r.stderr.trim()}`);
        return parseTcpdumpOutput(r.stdout);
      })()),
  };
  return { capture, process: proc };
}

/** Waits until the capture file stops growing: packets already sent are then on disk. */
async function settle(file: string, timeoutMs = 2000): Promise<void> {
  const size = (): Promise<number> =>
    stat(file).then(
      (s) => s.size,
      () => -1,
    );
  const deadline = Date.now() + timeoutMs;
  let last = await size();
  while (Date.now() < deadline) {
    await sleep(50);
    const now = await size();
    if (now === last) return;
    last = now;
  }
}
