/**
 * Connections the way Temporal Cloud and mTLS clusters take them: `temporal server start-dev` serves no
 * TLS (1.9.1 has no such flag), so an HTTP/2 TLS front made in the test requires a client certificate
 * from its CA and an API key, and forwards gRPC to the dev server. A real `generate` (client and
 * workers) runs through it; missing credentials are one line, exit 2.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectTemporal } from '../../src/client/generate';
import { startLlmServer, type LlmServer } from '../llm-server/server';
import { runCli } from '../helpers/cli';
import { readDialogues } from '../helpers/output';
import { devServer, tempDir, unique, type TestDevServer } from '../helpers/temporal';
import { makeTestPki, startTlsProxy, type TestPki, type TlsProxy } from '../helpers/tls-proxy';

let llm: LlmServer;
let server: TestDevServer;
let pki: TestPki;
let proxy: TlsProxy;
const API_KEY = `test-api-key-${process.pid}-abcdef`;

before(async () => {
  llm = await startLlmServer({ latency: { meanMs: 5 } });
  server = await devServer();
  pki = makeTestPki(await tempDir('cc-pki-'));
  proxy = await startTlsProxy({
    pki,
    upstream: server.address,
    requireClientCert: true,
    requireApiKey: API_KEY,
  });
});
after(async () => {
  await proxy?.close();
  await server?.dispose();
  await llm?.close();
});

const tlsArgs = () => [
  '--temporal-address',
  proxy.address,
  '--tls-ca',
  pki.caCert,
  '--tls-server-name',
  'localhost',
];
const env = (extra: NodeJS.ProcessEnv = {}) => ({
  OPENAI_API_KEY: 'sk-tls-test',
  OPENAI_BASE_URL: llm.url,
  TEMPORAL_ADDRESS: '',
  TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
  ...extra,
});

describe('tls', () => {
  test('tls: generate runs through mTLS with an API key; nothing secret in run.json or history', async () => {
    const out = await tempDir('cc-tls-');
    const runId = unique('tls');
    const result = await runCli(
      [
        'generate',
        '--out',
        out,
        '--model',
        'test-model',
        '--run-id',
        runId,
        '--task-queue',
        unique('tls-q'),
        '--dialogs-per-intent',
        '1',
        '--turns',
        '1',
        '--intents',
        'transaction',
        ...tlsArgs(),
        '--tls-cert',
        pki.clientCert,
        '--tls-key',
        pki.clientKey,
      ],
      env({ TEMPORAL_API_KEY: API_KEY }),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /started run .* on Temporal 127\.0\.0\.1:\d+/);
    assert.equal((await readDialogues(out)).length, 1);
    assert.ok(proxy.seen.calls > 10, `gRPC calls went through the TLS front (${proxy.seen.calls})`);
    assert.deepEqual([...proxy.seen.clientSubjects], ['worker'], 'the client certificate was presented');
    assert.deepEqual([...proxy.seen.apiKeys], [API_KEY], 'the API key was sent');

    const runJson = await readFile(join(out, 'run.json'), 'utf8');
    const clientKey = await readFile(pki.clientKey, 'utf8');
    for (const secret of [API_KEY, clientKey.split('\n')[1]!, 'sk-tls-test'])
      assert.ok(!runJson.includes(secret), 'run.json holds a secret');
    const plain = await connectTemporal(server.address, 'default');
    try {
      const history = await plain.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution: { workflowId: runId },
      });
      const text = JSON.stringify(history.history?.events, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
      );
      assert.ok(text.includes(runId));
      for (const secret of [API_KEY, 'sk-tls-test'])
        assert.ok(!text.includes(secret), 'history holds a secret');
    } finally {
      await plain.close();
    }
  });

  test('tls: no client certificate, a foreign one, or a wrong API key is one line, exit 2', async () => {
    const cases: [string[], NodeJS.ProcessEnv][] = [
      [[], { TEMPORAL_API_KEY: API_KEY }],
      [['--tls-cert', pki.strangerCert, '--tls-key', pki.strangerKey], { TEMPORAL_API_KEY: API_KEY }],
      [['--tls-cert', pki.clientCert, '--tls-key', pki.clientKey], { TEMPORAL_API_KEY: 'wrong-key' }],
    ];
    for (const [extra, extraEnv] of cases) {
      const result = await runCli(['status', unique('none'), ...tlsArgs(), ...extra], env(extraEnv));
      assert.equal(result.code, 2, `${extra.join(' ')}: ${result.stderr}`);
      assert.match(
        result.stderr,
        /^error: --temporal-address: cannot reach Temporal at 127\.0\.0\.1:\d+ \(TLS/,
      );
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.ok(!result.stderr.includes('wrong-key') && !result.stderr.includes(API_KEY));
    }
  });
});
