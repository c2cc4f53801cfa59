/**
 * Exact and near-duplicate detection over a run's texts: exact on normalised text (SHA-1), near with
 * MinHash signatures over word shingles and banded LSH to find candidates, each candidate confirmed by
 * its estimated Jaccard similarity. Deterministic: the same texts in the same order give the same result.
 *
 * Written here rather than taken from npm: the one MinHash+LSH package there (`minhash`, last published
 * years ago) draws its permutations from Math.random (results change run to run) and keeps every band
 * bucket as arrays of strings; `bloom-filters` has MinHash but no LSH. See README, Design notes.
 */
import { createHash } from 'node:crypto';
import { estimateJaccard, fmix32, minhashSignature, normalizeText, shingleHashes } from '../method/minhash';

export { estimateJaccard, minhashSignature, normalizeText, shingleHashes };

export interface DedupOptions {
  /** Estimated Jaccard similarity of word shingles at or above which two texts are near-duplicates. @default 0.8 */
  threshold: number;
  /** Words per shingle. @default 3 */
  shingleSize: number;
  /** MinHash signature length. @default 128 */
  numPerm: number;
  /**
   * Distinct texts the index holds at most; later texts are still checked against them but not added,
   * which bounds memory (about 2.5 KB a text). @default Infinity
   */
  maxIndexed: number;
}

export const DEFAULT_DEDUP_OPTIONS: DedupOptions = {
  threshold: 0.8,
  shingleSize: 3,
  numPerm: 128,
  maxIndexed: Infinity,
};

export type DuplicateKind = 'exact' | 'near';

export interface DuplicateMatch {
  kind: DuplicateKind;
  /** Key of the first occurrence. */
  of: string;
  /** 1 for exact; the estimated Jaccard similarity for near. */
  similarity: number;
}

/**
 * Bands × rows for LSH that minimise the weighted area of false positives below the threshold and
 * false negatives above it (two texts of similarity s share a band with probability 1 - (1 - s^r)^b).
 * Misses weigh more: a false candidate only costs one signature comparison, a miss is a duplicate kept.
 */
const lshCache = new Map<string, { bands: number; rows: number }>();
export function lshParams(threshold: number, numPerm: number): { bands: number; rows: number } {
  const key = `${threshold}:${numPerm}`;
  const cached = lshCache.get(key);
  if (cached) return cached;
  const integrate = (f: (s: number) => number, a: number, b: number) => {
    const steps = 200;
    const h = (b - a) / steps;
    let area = 0;
    for (let i = 0; i < steps; i++) area += f(a + (i + 0.5) * h) * h;
    return area;
  };
  let best = { bands: 1, rows: numPerm, error: Infinity };
  for (let bands = 1; bands <= numPerm; bands++) {
    const maxRows = Math.floor(numPerm / bands);
    for (let rows = 1; rows <= maxRows; rows++) {
      const p = (s: number) => 1 - (1 - s ** rows) ** bands;
      const error = 0.2 * integrate(p, 0, threshold) + 0.8 * integrate((s) => 1 - p(s), threshold, 1);
      if (error < best.error) best = { bands, rows, error };
    }
  }
  const params = { bands: best.bands, rows: best.rows };
  lshCache.set(key, params);
  return params;
}

/**
 * A streaming index: `add` each text in order; it answers whether the text duplicates one added
 * before (exactly, or near by LSH candidates confirmed at the threshold) and indexes it if not.
 * Memory: about (20 + 4·numPerm + 8·bands) bytes per distinct text, plus its key.
 */
export class DuplicateIndex {
  readonly options: DedupOptions;
  private readonly exact = new Map<string, number>();
  private readonly keys: string[] = [];
  private signatures: Uint32Array;
  private readonly bands: Map<number, number | number[]>[];
  private readonly rows: number;

  constructor(options: Partial<DedupOptions> = {}) {
    this.options = { ...DEFAULT_DEDUP_OPTIONS, ...options };
    const { threshold, numPerm, shingleSize } = this.options;
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError('threshold must be in (0, 1]');
    if (!Number.isInteger(numPerm) || numPerm < 8) throw new RangeError('numPerm must be an integer >= 8');
    if (!Number.isInteger(shingleSize) || shingleSize < 1)
      throw new RangeError('shingleSize must be an integer >= 1');
    const { bands, rows } = lshParams(threshold, numPerm);
    this.rows = rows;
    this.bands = Array.from({ length: bands }, () => new Map<number, number | number[]>());
    this.signatures = new Uint32Array(numPerm * 1024);
  }

  /** Distinct texts indexed so far. */
  get size(): number {
    return this.keys.length;
  }

  /** True once `maxIndexed` texts are held and later ones were only checked. */
  saturated = false;

  add(key: string, text: string): DuplicateMatch | undefined {
    const normalized = normalizeText(text);
    const digest = createHash('sha1').update(normalized).digest('base64');
    const first = this.exact.get(digest);
    if (first !== undefined) return { kind: 'exact', of: this.keys[first]!, similarity: 1 };

    const { numPerm, threshold } = this.options;
    const sig = minhashSignature(shingleHashes(normalized, this.options.shingleSize), numPerm);
    const bandKeys = this.bands.map((_, b) => {
      let h = b + 1;
      for (let r = b * this.rows; r < (b + 1) * this.rows; r++) h = fmix32((h ^ sig[r]!) >>> 0);
      return h;
    });
    let best: DuplicateMatch | undefined;
    const seen = new Set<number>();
    bandKeys.forEach((h, b) => {
      const bucket = this.bands[b]!.get(h);
      if (bucket === undefined) return;
      for (const doc of typeof bucket === 'number' ? [bucket] : bucket) {
        if (seen.has(doc)) continue;
        seen.add(doc);
        const similarity = estimateJaccard(sig, this.signatures, doc * numPerm);
        if (similarity >= threshold && (!best || similarity > best.similarity))
          best = { kind: 'near', of: this.keys[doc]!, similarity };
      }
    });
    if (best) return best;
    if (this.keys.length >= this.options.maxIndexed) {
      this.saturated = true;
      return undefined;
    }

    const doc = this.keys.length;
    this.keys.push(key);
    this.exact.set(digest, doc);
    if ((doc + 1) * numPerm > this.signatures.length) {
      const grown = new Uint32Array(this.signatures.length * 2);
      grown.set(this.signatures);
      this.signatures = grown;
    }
    this.signatures.set(sig, doc * numPerm);
    bandKeys.forEach((h, b) => {
      const map = this.bands[b]!;
      const bucket = map.get(h);
      if (bucket === undefined) map.set(h, doc);
      else if (typeof bucket === 'number') map.set(h, [bucket, doc]);
      else bucket.push(doc);
    });
    return undefined;
  }
}

/** A dialogue's text for duplicate detection: every turn, in order. */
export function dialogueText(conversation: readonly { value: string }[]): string {
  return conversation.map((t) => t.value).join('\n');
}
