// Pod address -> pod name, remembered beyond dns_client_addrs' LRU: once an address was
// seen as a pod's, its drops keep that pod's labels (counters must not move between
// series when the kernel map evicts the address). Bounded: oldest entries go first.
import type { PodName } from '../dns/aggregate.js';
import { UNKNOWN_ADDRESS_POD } from './aggregate.js';

export class AddressBook {
  private readonly names = new Map<string, PodName>();

  constructor(private readonly capacity = 16_384) {}

  /** Learns from one dump of dns_client_addrs; a newer owner of an address wins. */
  learn(clientAddrs: ReadonlyMap<string, bigint>, nameOf: (cgroupId: bigint) => PodName): void {
    for (const [addr, cgroupId] of clientAddrs) {
      const name = nameOf(cgroupId);
      if (name.namespace === UNKNOWN_ADDRESS_POD.namespace && this.names.has(addr)) continue;
      this.names.delete(addr); // re-insert: Map order is the eviction order
      this.names.set(addr, name);
    }
    for (const addr of this.names.keys()) {
      if (this.names.size <= this.capacity) break;
      this.names.delete(addr);
    }
  }

  /**
   * A pod was retired (deleted, past its grace period): its addresses keep their drop counts
   * but under pod "_retired", so its per-pod series end like its DNS series do. An address
   * a new pod reuses is renamed by the next learn().
   */
  retire(namespace: string, pod: string, retiredPod: string): void {
    for (const [addr, name] of this.names)
      if (name.namespace === namespace && name.pod === pod)
        this.names.set(addr, { ...name, pod: retiredPod });
  }

  podOf(addr: string): PodName {
    return this.names.get(addr) ?? UNKNOWN_ADDRESS_POD;
  }

  get size(): number {
    return this.names.size;
  }
}
