/** The table of run flags: one row drives the option, its parsing, the flag errors name and the help. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram } from '../../src/client/cli';
import { flagHelp, flagOf, RUN_FLAGS, runFlagValues } from '../../src/client/run-flags';
import { runInputSchema } from '../../src/run/schemas';

const base = { outDir: '/tmp/x', model: 'm', runId: 'r1' };

/** The run input with `value` at the row's path. */
function withValue(field: string, value: unknown): Record<string, unknown> {
  const [head, tail] = field.split('.');
  return { ...base, [head!]: tail ? { [tail]: value } : value };
}

test('run flags: each row with limits states the limits the run input schema enforces', () => {
  for (const row of RUN_FLAGS.filter((r) => r.limits)) {
    const [min, max] = row.limits!;
    const step = row.kind === 'whole' ? 1 : 0.1;
    for (const ok of [min, max])
      assert.ok(runInputSchema.safeParse(withValue(row.field, ok)).success, `${row.flag} ${ok}`);
    for (const bad of [min - step, max + step]) {
      const parsed = runInputSchema.safeParse(withValue(row.field, bad));
      assert.ok(!parsed.success, `${row.flag} ${bad}`);
      assert.equal(flagOf(parsed.error.issues[0]!.path.join('.')), row.flag.split(' ')[0]);
    }
  }
});

test('run flags: the generate command offers every row with its help, default and limits', () => {
  const generate = buildProgram().commands.find((c) => c.name() === 'generate')!;
  for (const row of RUN_FLAGS) {
    const option = generate.options.find((o) => o.flags === row.flag);
    assert.ok(option, row.flag);
    assert.equal(option.description, flagHelp(row));
    if (row.default !== undefined)
      assert.ok(option.description.endsWith(`(default ${row.default})`), option.description);
  }
  assert.match(flagHelp(RUN_FLAGS.find((r) => r.field === 'numTurnsPerDialog')!), /1-20 \(default 6\)$/);
});

test('run flags: values land at their run input paths, nested settings field by field', () => {
  assert.deepEqual(
    runFlagValues({
      dialogsPerIntent: '3',
      temperature: '0.5',
      rpm: '60',
      maxAttempts: '2',
      responseFormat: 'text',
    }),
    {
      numDialogsPerIntent: 3,
      temperature: 0.5,
      rateLimit: { requestsPerMinute: 60 },
      retry: { maximumAttempts: 2 },
      responseFormat: 'text',
    },
  );
  assert.throws(() => runFlagValues({ tpm: '0x10' }), /--tpm: must be a whole number, got "0x10"/);
  assert.equal(flagOf('rateLimit.tokensPerMinute'), '--tpm');
  assert.equal(flagOf('timeouts.heartbeatMs'), 'timeouts.heartbeatMs');
});

test('run flags: --batch sets mode batch, and the batch limits land under batch', () => {
  assert.deepEqual(runFlagValues({ batch: true, batchRequestsPerFile: '100', batchAttempts: '2' }), {
    mode: 'batch',
    batch: { requestsPerFile: 100, maxAttempts: 2 },
  });
  assert.deepEqual(runFlagValues({}), {});
  assert.equal(flagOf('batch.bytesPerFile'), '--batch-bytes-per-file');
  assert.deepEqual(runFlagValues({ batchDeadline: '1.5h' }), { batch: { deadlineMs: 5_400_000 } });
  assert.throws(() => runFlagValues({ batchDeadline: 'soon' }), /--batch-deadline: must be a duration/);
});

test('run flags: --no-calibrate sets judge.calibrate false when given, and nothing when not', () => {
  // commander reads a `--no-…` option as true when absent and false when given.
  assert.deepEqual(runFlagValues({ calibrate: false }), { judge: { calibrate: false } });
  assert.deepEqual(runFlagValues({ calibrate: true }), {});
  assert.equal(flagOf('judge.calibrate'), '--no-calibrate');
  assert.ok(runInputSchema.safeParse(withValue('judge.calibrate', false)).success);
  assert.ok(!runInputSchema.safeParse(withValue('judge.calibrate', 'no')).success);
});
