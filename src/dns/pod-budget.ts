// Bounds the per-pod series: the first `limit` pods seen get their own series, later ones
// are summed into pod="_other" of their namespace. Admission is sticky so that a pod's
// counters never move between series (which would look like a counter reset).
export class PodSeriesBudget {
  private readonly admitted = new Set<string>();
  private readonly overflowed = new Set<string>();

  constructor(readonly limit: number) {}

  /** True when the pod keeps its own series. */
  admit(namespace: string, pod: string): boolean {
    const key = `${namespace}/${pod}`;
    if (this.admitted.has(key)) return true;
    if (this.overflowed.has(key)) return false;
    if (this.admitted.size < this.limit) {
      this.admitted.add(key);
      return true;
    }
    this.overflowed.add(key);
    return false;
  }

  /** Pods that did not get their own series (for a self-health gauge). */
  get overflowCount(): number {
    return this.overflowed.size;
  }

  /** Frees the slot of a pod that is gone for good (deleted and past its grace period). */
  release(namespace: string, pod: string): void {
    const key = `${namespace}/${pod}`;
    this.admitted.delete(key);
    this.overflowed.delete(key);
  }
}
