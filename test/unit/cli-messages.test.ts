/** What the CLI says about itself: help that matches what each command does, and bad numbers named plainly. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram } from '../../src/client/cli';
import { runCliInProcess } from '../helpers/cli-in-process';

const addressHelp = (command: string): string => {
  const cmd = buildProgram().commands.find((c) => c.name() === command);
  assert.ok(cmd, command);
  const option = cmd.options.find((o) => o.long === '--temporal-address');
  assert.ok(option, `${command} takes --temporal-address`);
  return option.description;
};

test('cli help: only generate promises an embedded server when --temporal-address is missing', () => {
  assert.match(addressHelp('generate'), /embedded dev server/);
  for (const command of ['worker', 'status', 'pause', 'resume', 'cancel']) {
    const help = addressHelp(command);
    assert.doesNotMatch(help, /embedded/, command);
    assert.match(help, /starts no server/, command);
  }
  assert.match(addressHelp('status'), /--out DIR/);
});

test('cli numbers: a count that is not a number is asked for as a whole number', async () => {
  for (const flag of ['--dialogs-per-intent', '--turns', '--concurrency', '--max-attempts']) {
    const result = await runCliInProcess(['generate', '--out', '/nonexistent/x', flag, 'abc']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr, `error: ${flag}: must be a whole number, got "abc"\n`);
  }
  const temperature = await runCliInProcess(['generate', '--out', '/nonexistent/x', '--temperature', 'hot']);
  assert.equal(temperature.stderr, 'error: --temperature: must be a decimal number, got "hot"\n');
});
