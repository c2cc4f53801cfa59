/** The report's metric charts: bins for display. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rebin } from '../../src/report/page';

test('rebin: coarser bins hold their exact starts, and a ratio of 1 joins the last bin', () => {
  // 0.15 / 0.05 is 2.9999… in floating point: without rounding it would land in the 0.1 bin.
  assert.deepEqual(
    rebin(
      [
        [0.15, 1],
        [0.19, 2],
        [0.97, 1],
        [1, 2],
      ],
      0.05,
      0.95,
    ),
    [
      [0.15, 3],
      [0.95, 3],
    ],
  );
});
