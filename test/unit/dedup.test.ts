import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DuplicateIndex,
  dialogueText,
  estimateJaccard,
  lshParams,
  minhashSignature,
  normalizeText,
  shingleHashes,
} from '../../src/export/dedup';
import { prng, sentence, syntheticRecord } from '../helpers/synthetic-run';

/** The exact Jaccard similarity of two texts' shingle sets. */
function jaccard(a: string, b: string, size = 3): number {
  const x = shingleHashes(normalizeText(a), size);
  const y = shingleHashes(normalizeText(b), size);
  let both = 0;
  for (const h of x) if (y.has(h)) both++;
  return both / (x.size + y.size - both);
}

/** `text` with `n` of its words replaced, spread out, deterministically. */
function reword(text: string, n: number, seed: number): string {
  const rand = prng(seed);
  const words = text.split(' ');
  for (let i = 0; i < n; i++) words[Math.floor(rand() * words.length)] = `changed${i}`;
  return words.join(' ');
}

describe('dedup', () => {
  test('dedup: normalisation folds case, punctuation, spacing and Unicode forms', () => {
    assert.equal(normalizeText('  Hello,   WORLD!!  How\u2019s it\tgoing? '), 'hello world how s it going');
    assert.equal(normalizeText('ﬁne café'), normalizeText('fine cafe\u0301'));
    assert.equal(normalizeText('...'), '');
  });

  test('dedup: MinHash estimates Jaccard similarity within 0.1 of the exact value', () => {
    const rand = prng(7);
    for (let i = 0; i < 30; i++) {
      const a = sentence(rand, 80);
      const b = reword(a, Math.floor(rand() * 30), i);
      const exact = jaccard(a, b);
      const sigA = minhashSignature(shingleHashes(normalizeText(a), 3), 256);
      const sigB = minhashSignature(shingleHashes(normalizeText(b), 3), 256);
      const estimate = estimateJaccard(sigA, sigB);
      assert.ok(Math.abs(estimate - exact) < 0.1, `pair ${i}: estimate ${estimate}, exact ${exact}`);
    }
  });

  test('dedup: LSH bands make pairs at the threshold likely candidates and dissimilar pairs unlikely', () => {
    for (const threshold of [0.5, 0.8, 0.9]) {
      const { bands, rows } = lshParams(threshold, 128);
      assert.ok(bands * rows <= 128);
      const p = (s: number) => 1 - (1 - s ** rows) ** bands;
      // Misses weigh more than false candidates (which the signature check drops).
      assert.ok(p(threshold) > 0.65, `${threshold}: at the threshold ${p(threshold)}`);
      assert.ok(p(Math.min(1, threshold + 0.1)) > 0.98, `${threshold}: above the threshold`);
      assert.ok(p(threshold - 0.3) < 0.05, `${threshold}: well below the threshold`);
    }
  });

  test('dedup: distinct dialogues are never flagged; planted copies and paraphrases are, first occurrence kept', () => {
    const index = new DuplicateIndex();
    const base = Array.from({ length: 3000 }, (_, i) => syntheticRecord(i));
    for (const r of base) assert.equal(index.add(r.id, dialogueText(r.conversation)), undefined, r.id);
    const text = (i: number) => dialogueText(base[i]!.conversation);
    assert.deepEqual(index.add('copy', `${text(5).toUpperCase()}!!!`), {
      kind: 'exact',
      of: base[5]!.id,
      similarity: 1,
    });
    // ~3% of the words changed: well above 0.8 of shingles shared.
    const light = reword(text(6), 7, 1);
    assert.ok(jaccard(light, text(6)) > 0.85);
    const match = index.add('light', light);
    assert.equal(match?.kind, 'near');
    assert.equal(match?.of, base[6]!.id);
    // A third of the words changed: a different text at 0.8.
    const heavy = reword(text(7), 80, 2);
    assert.ok(jaccard(heavy, text(7)) < 0.4);
    assert.equal(index.add('heavy', heavy), undefined);
    // A duplicate is not indexed: its own copy is matched to the first occurrence.
    assert.equal(index.add('copy-of-copy', `${text(5).toUpperCase()}!!!`)?.of, base[5]!.id);
    assert.equal(index.size, 3001);
  });

  test('dedup: the threshold is configurable', () => {
    const a = sentence(prng(3), 60);
    const b = reword(a, 6, 9);
    const similarity = jaccard(a, b);
    assert.ok(similarity > 0.5 && similarity < 0.8, `similarity ${similarity}`);
    const loose = new DuplicateIndex({ threshold: 0.4 });
    loose.add('a', a);
    assert.equal(loose.add('b', b)?.kind, 'near');
    const strict = new DuplicateIndex({ threshold: 0.9 });
    strict.add('a', a);
    assert.equal(strict.add('b', b), undefined);
    assert.throws(() => new DuplicateIndex({ threshold: 0 }), /threshold/);
    assert.throws(() => new DuplicateIndex({ threshold: 1.2 }), /threshold/);
  });

  test('dedup: short queries repeat exactly once normalised, and a one-word change is not a duplicate', () => {
    const again = new DuplicateIndex();
    again.add('q1', 'How do I renew my passport online?');
    assert.equal(again.add('q2', 'how do I renew my passport ONLINE')?.kind, 'exact');
    assert.equal(again.add('q3', 'How do I renew my driving licence online?'), undefined);
  });

  test('dedup: results are the same on every run', () => {
    const run = () => {
      const index = new DuplicateIndex({ threshold: 0.7 });
      const out: string[] = [];
      for (let i = 0; i < 300; i++) {
        const r = syntheticRecord(i % 200);
        const t = dialogueText(r.conversation);
        const m = index.add(`d${i}`, i >= 200 ? reword(t, i % 10, i) : t);
        if (m) out.push(`${i}:${m.kind}:${m.of}:${m.similarity}`);
      }
      return out;
    };
    const first = run();
    assert.ok(first.length >= 90, `${first.length} duplicates among the 100 planted`);
    assert.deepEqual(run(), first);
  });

  test('dedup: a capped index stops growing but still finds duplicates of what it holds', () => {
    const index = new DuplicateIndex({ maxIndexed: 50 });
    for (let i = 0; i < 100; i++) index.add(`d${i}`, dialogueText(syntheticRecord(i).conversation));
    assert.equal(index.size, 50);
    assert.equal(index.saturated, true);
    assert.equal(index.add('copy', dialogueText(syntheticRecord(10).conversation))?.of, 'd10');
    assert.equal(index.add('copy', dialogueText(syntheticRecord(80).conversation)), undefined);
  });
});
