/**
 * The project's MinHash, pure (no Node API), so workflow code can use it as well as the export: text
 * normalisation, hashed word shingles, signatures and the Jaccard estimate. src/export/dedup.ts builds
 * its exact + LSH index on these; topic expansion (src/method/expansion.ts) dedups leaves with them.
 */

/** Unicode-normalised, lower case, punctuation and runs of whitespace folded to one space. */
export function normalizeText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** murmur3's 32-bit finaliser: a strong mix of one 32-bit word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, finished with fmix32: a shingle's 32-bit id. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

/** Hashed word shingles of a normalised text; a text shorter than one shingle is one shingle. */
export function shingleHashes(normalized: string, size: number): Set<number> {
  const words = normalized.length === 0 ? [] : normalized.split(' ');
  const out = new Set<number>();
  if (words.length <= size) {
    if (words.length > 0) out.add(hashString(words.join(' ')));
    return out;
  }
  for (let i = 0; i + size <= words.length; i++) out.add(hashString(words.slice(i, i + size).join(' ')));
  return out;
}

/**
 * The MinHash signature: for each of `numPerm` hash functions (fmix32 of the shingle id xor a fixed
 * per-function salt, an independent-enough family for 32-bit ids), the minimum over the shingles.
 */
export function minhashSignature(shingles: Iterable<number>, numPerm: number): Uint32Array {
  const sig = new Uint32Array(numPerm).fill(0xffffffff);
  const salts = saltsFor(numPerm);
  for (const s of shingles) {
    for (let i = 0; i < numPerm; i++) {
      const v = fmix32((s ^ salts[i]!) >>> 0);
      if (v < sig[i]!) sig[i] = v;
    }
  }
  return sig;
}

const saltCache = new Map<number, Uint32Array>();
function saltsFor(numPerm: number): Uint32Array {
  let salts = saltCache.get(numPerm);
  if (!salts) {
    salts = new Uint32Array(numPerm);
    for (let i = 0; i < numPerm; i++) salts[i] = fmix32((0x9e3779b9 * (i + 1)) >>> 0);
    saltCache.set(numPerm, salts);
  }
  return salts;
}

/** Fraction of equal slots: an unbiased estimate of the Jaccard similarity of the shingle sets. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array, offsetB = 0): number {
  let equal = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[offsetB + i]) equal++;
  return equal / a.length;
}
