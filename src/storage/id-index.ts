/**
 * The set of record ids a file holds, in memory that stays flat per record. Ids are
 * `<runId>.<intent>.<index>`, so each `<runId>.<intent>` prefix keeps a bitset of its indices: a
 * million records cost about 125 KB instead of the ~100 MB a `Set` of their strings takes. Ids of any
 * other shape (none are written by the workflows) fall back to a `Set`.
 */

/** Indices above this go to the fallback set rather than grow a bitset without bound. */
const MAX_BITSET_INDEX = 100_000_000;

/** An index as saved to disk: bitsets in base64, other ids as they are. */
export interface IdIndexSnapshot {
  bits: [prefix: string, base64: string][];
  others: string[];
}

export class IdIndex {
  private readonly bits = new Map<string, Uint8Array>();
  private readonly others = new Set<string>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    const key = split(id);
    if (!key) return this.others.has(id);
    const bits = this.bits.get(key.prefix);
    return (
      bits !== undefined &&
      key.index >> 3 < bits.length &&
      (bits[key.index >> 3]! & (1 << (key.index & 7))) !== 0
    );
  }

  /** Adds `id`; false when it was already there. */
  add(id: string): boolean {
    const key = split(id);
    if (!key) {
      if (this.others.has(id)) return false;
      this.others.add(id);
      this.count++;
      return true;
    }
    let bits = this.bits.get(key.prefix);
    const byte = key.index >> 3;
    if (!bits || byte >= bits.length) {
      const grown = new Uint8Array(Math.max(64, byte + 1, (bits?.length ?? 0) * 2));
      if (bits) grown.set(bits);
      bits = grown;
      this.bits.set(key.prefix, bits);
    }
    const mask = 1 << (key.index & 7);
    if ((bits[byte]! & mask) !== 0) return false;
    bits[byte]! |= mask;
    this.count++;
    return true;
  }

  delete(id: string): void {
    const key = split(id);
    if (!key) {
      if (this.others.delete(id)) this.count--;
      return;
    }
    const bits = this.bits.get(key.prefix);
    const byte = key.index >> 3;
    const mask = 1 << (key.index & 7);
    if (bits && byte < bits.length && (bits[byte]! & mask) !== 0) {
      bits[byte]! &= ~mask;
      this.count--;
    }
  }

  /** A copy without `exclude` (ids queued but not yet on disk). */
  snapshot(exclude: Iterable<string>): IdIndexSnapshot {
    const copy = new IdIndex();
    for (const [prefix, bits] of this.bits) copy.bits.set(prefix, bits.slice());
    for (const id of this.others) copy.others.add(id);
    for (const id of exclude) copy.delete(id);
    return {
      bits: [...copy.bits].map(([prefix, bits]) => [prefix, Buffer.from(bits).toString('base64')]),
      others: [...copy.others],
    };
  }

  static restore(snapshot: IdIndexSnapshot): IdIndex {
    const index = new IdIndex();
    for (const [prefix, base64] of snapshot.bits) {
      const bits = new Uint8Array(Buffer.from(base64, 'base64'));
      index.bits.set(prefix, bits);
      for (const byte of bits) index.count += POPCOUNT[byte]!;
    }
    for (const id of snapshot.others) index.others.add(id);
    index.count += index.others.size;
    return index;
  }

  /** Bytes held by the bitsets (the fallback set is counted by its strings' length). */
  approximateBytes(): number {
    let n = 0;
    for (const [prefix, bits] of this.bits) n += prefix.length * 2 + bits.length;
    for (const id of this.others) n += id.length * 2 + 48;
    return n;
  }
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x; x >>= 1) n += x & 1;
  return n;
});

function split(id: string): { prefix: string; index: number } | undefined {
  const dot = id.lastIndexOf('.');
  if (dot <= 0 || dot === id.length - 1 || id.length - dot > 10) return undefined;
  let index = 0;
  for (let i = dot + 1; i < id.length; i++) {
    const c = id.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    index = index * 10 + c;
  }
  // "007" and "7" are different ids: only the canonical spelling maps to a bit.
  if (id.charCodeAt(dot + 1) === 48 && id.length - dot > 2) return undefined;
  if (index > MAX_BITSET_INDEX) return undefined;
  return { prefix: id.slice(0, dot), index };
}
