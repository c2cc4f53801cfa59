/** The input of a run in workflow tests, where fake activities write nothing to `outDir`. */
import type { RunInput } from '../../src/run/schemas';

/**
 * A run of one transaction dialogue pair, one turn each, under a scratch directory; `overrides` set what a
 * test is about (its intents, sizes, concurrency, retry policy).
 */
export function testRunInput(runId: string, overrides: Partial<RunInput> = {}): RunInput {
  return {
    runId,
    outDir: '/tmp/cc-workflow-test',
    model: 'test-model',
    intents: ['transaction'],
    numDialogsPerIntent: 2,
    numTurnsPerDialog: 1,
    ...overrides,
  };
}
