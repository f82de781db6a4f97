import { describe, expect, it } from 'vitest';
import type { KubePod } from '../../src/identity/kube-pod.js';
import { KubePodStore } from '../../src/identity/kube-pod-store.js';

const NODE_IP = '192.0.2.10';
const NODE_IP6 = '2001:db8::10';

function kp(
  uid: string,
  name: string,
  o: { ips?: string[]; hostNetwork?: boolean; terminal?: boolean; alias?: string } = {},
): KubePod {
  return {
    info: { uid, namespace: 'shop', name, ips: o.ips ?? [], hostNetwork: o.hostNetwork ?? false },
    aliasUids: o.alias === undefined ? [] : [o.alias],
    hostIps: [NODE_IP, NODE_IP6],
    terminal: o.terminal ?? false,
    nodeName: 'node-a',
  };
}

function setup(retainDeletedMs = 60_000) {
  let t = 1_000;
  const store = new KubePodStore({ retainDeletedMs, now: () => t });
  return { store, advance: (ms: number) => (t += ms), now: () => t };
}

describe('KubePodStore', () => {
  it('finds pods by UID, and a mirror pod by its static pod UID', () => {
    const { store } = setup();
    store.upsert(kp('u-1', 'web-0'));
    store.upsert(kp('u-2', 'kube-proxy-node-a', { alias: 'static-hash' }));
    expect(store.byUid('u-1')?.name).toBe('web-0');
    expect(store.byUid('static-hash')?.name).toBe('kube-proxy-node-a');
    expect(store.byUid('u-3')).toBeUndefined();
  });

  it('maps each dual-stack IP to its pod and never the node IP', () => {
    const { store } = setup();
    store.upsert(kp('u-1', 'web-0', { ips: ['10.1.0.7', 'fd00::7'] }));
    store.upsert(kp('u-2', 'node-exporter', { hostNetwork: true, ips: [NODE_IP, NODE_IP6] }));
    expect(store.byIp('10.1.0.7')?.name).toBe('web-0');
    expect(store.byIp('fd00::7')?.name).toBe('web-0');
    expect(store.byIp(NODE_IP)).toBeUndefined();
    expect(store.byIp(NODE_IP6)).toBeUndefined();
    expect(store.isNodeIp(NODE_IP)).toBe(true);
    expect(store.isNodeIp('10.1.0.7')).toBe(false);
  });

  it('never maps a node IP, even when a pod that is not hostNetwork reports it as its own', () => {
    const { store } = setup();
    store.upsert(kp('u-1', 'odd', { ips: [NODE_IP, '10.1.0.7'] }));
    expect(store.byIp(NODE_IP)).toBeUndefined();
    expect(store.byIp('10.1.0.7')?.name).toBe('odd');
  });

  it('treats a hostNetwork pod IP as the node IP even if no pod reports hostIPs', () => {
    const { store } = setup();
    const hostPod = {
      ...kp('u-2', 'agent', { hostNetwork: true, ips: ['198.51.100.4'] }),
      hostIps: [],
    };
    store.upsert(hostPod);
    expect(store.byIp('198.51.100.4')).toBeUndefined();
    expect(store.isNodeIp('198.51.100.4')).toBe(true);
  });

  it('gives a reused IP to the running pod over the finished one, whatever the event order', () => {
    const { store } = setup();
    store.upsert(kp('old', 'job-a', { ips: ['10.1.0.9'] }));
    store.upsert(kp('new', 'web-1', { ips: ['10.1.0.9'] })); // the API tells of the new owner first
    expect(store.byIp('10.1.0.9')?.name).toBe('web-1');
    store.upsert(kp('old', 'job-a', { ips: ['10.1.0.9'], terminal: true }));
    expect(store.byIp('10.1.0.9')?.name).toBe('web-1');
    store.markDeleted('new');
    expect(store.byIp('10.1.0.9')?.name).toBe('web-1'); // both ended: the latest claim wins
  });

  it('keeps the earlier claim when a pod that has an IP is modified', () => {
    const { store } = setup();
    store.upsert(kp('a', 'web-0', { ips: ['10.1.0.5'] }));
    store.upsert(kp('b', 'web-1', { ips: ['10.1.0.5'] }));
    store.upsert(kp('a', 'web-0', { ips: ['10.1.0.5'] })); // a MODIFIED for another reason
    expect(store.byIp('10.1.0.5')?.name).toBe('web-1');
  });

  it('keeps a deleted pod resolvable for the retention window, then forgets it', () => {
    const { store, advance } = setup(60_000);
    store.upsert(kp('u-1', 'web-0', { ips: ['10.1.0.7'], alias: 'static-1' }));
    advance(5);
    store.markDeleted('u-1');
    expect(store.deleted()).toEqual([
      { uid: 'u-1', namespace: 'shop', name: 'web-0', aliasUids: ['static-1'], deletedAt: 1_005 },
    ]);
    advance(59_999);
    expect(store.byUid('u-1')?.name).toBe('web-0');
    expect(store.byUid('static-1')?.name).toBe('web-0');
    expect(store.byIp('10.1.0.7')?.name).toBe('web-0');
    expect(store.stats()).toEqual({ pods: 0, deletedRetained: 1, nodeIps: 2 });
    advance(1);
    expect(store.byUid('u-1')).toBeUndefined();
    expect(store.byIp('10.1.0.7')).toBeUndefined();
    expect(store.deleted()).toEqual([]);
    expect(store.stats()).toEqual({ pods: 0, deletedRetained: 0, nodeIps: 0 });
  });

  it('keeps the first deletion time when DELETED comes twice', () => {
    const { store, advance } = setup();
    store.upsert(kp('u-1', 'web-0'));
    store.markDeleted('u-1');
    advance(10);
    store.markDeleted('u-1', kp('u-1', 'web-0'));
    expect(store.deleted()[0]?.deletedAt).toBe(1_000);
  });

  it('marks pods a re-list no longer shows as deleted, and counts the new ones', () => {
    const { store } = setup();
    store.upsert(kp('u-1', 'web-0'));
    store.upsert(kp('u-2', 'web-1'));
    expect(store.replaceAll([kp('u-2', 'web-1'), kp('u-3', 'web-2')])).toEqual({
      added: 1,
      deleted: 1,
    });
    expect(store.deleted().map((d) => d.uid)).toEqual(['u-1']);
    expect(store.stats().pods).toBe(2);
  });

  it('does not offer for retirement a name that a new pod has taken over', () => {
    const { store } = setup();
    store.upsert(kp('old', 'db-0'));
    store.markDeleted('old');
    expect(store.deleted().map((d) => d.name)).toEqual(['db-0']);
    store.upsert(kp('new', 'db-0')); // StatefulSet pod back under the same name
    expect(store.deleted()).toEqual([]);
    expect(store.byUid('old')?.name).toBe('db-0'); // late reads of the old UID still resolve
  });
});
