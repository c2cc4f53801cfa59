/** The embedded model's checks: a missing or corrupt model file is one clear error, never a hang. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DEFAULT_LOCAL_MODEL,
  checkModelFile,
  contextPerSlot,
  defaultLocalThreads,
  defaultModelPath,
  startLocalModel,
} from '../../src/client/local-model';
import { ConfigError } from '../../src/worker';
import { tempDir } from '../helpers/temporal';

test('local model: a missing default model names the set-up script and the endpoint variables', async () => {
  const cache = await tempDir('cc-cache-');
  const path = defaultModelPath({ CONSISTENT_CHAT_CACHE: cache });
  assert.equal(path, join(cache, 'models', DEFAULT_LOCAL_MODEL.file));
  await assert.rejects(checkModelFile(path, true), (error: Error) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /not installed/);
    assert.match(error.message, /setup-model\.sh/);
    assert.match(error.message, /OPENAI_BASE_URL/);
    return true;
  });
});

test('local model: a default model of the wrong size is corrupt; a file that is not GGUF is refused', async () => {
  const dir = await tempDir('cc-cache-');
  const file = join(dir, DEFAULT_LOCAL_MODEL.file);
  await writeFile(file, 'GGUF but far too short');
  await assert.rejects(checkModelFile(file, true), /is corrupt.*delete it/);
  const other = join(dir, 'notes.gguf');
  await writeFile(other, 'plain text');
  await assert.rejects(checkModelFile(other, false), /--local-model: .* is not a GGUF file/);
  await assert.rejects(checkModelFile(join(dir, 'absent.gguf'), false), /--local-model: .* does not exist/);
});

test('local model: a GGUF llama.cpp cannot load ends the start with its reason, quickly', async () => {
  const dir = await tempDir('cc-cache-');
  const file = join(dir, 'broken.gguf');
  await writeFile(file, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(4096, 7)]));
  const started = Date.now();
  await assert.rejects(
    startLocalModel({ modelPath: file, contextPerSlot: 1024, logFile: join(dir, 'server.log'), slots: 1 }),
    /cannot start the local model .*broken\.gguf: the llama\.cpp server exited/,
  );
  assert.ok(Date.now() - started < 60_000, 'no hang');
});

test('local model: context per slot grows with the turns and covers twice the reply limit', () => {
  const two = contextPerSlot(2);
  const six = contextPerSlot(6);
  assert.ok(two < six && six < contextPerSlot(20));
  assert.ok(six >= 2 * (400 + 320 * 6), String(six));
  assert.equal(six % 256, 0);
});

test('local model: threads are the idle cores, at least one', () => {
  assert.equal(defaultLocalThreads(2, 0.1), 2);
  assert.equal(defaultLocalThreads(2, 20), 1);
  assert.equal(defaultLocalThreads(8, 3), 5);
});
