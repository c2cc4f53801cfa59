import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startCodecServer, type CodecServer } from '../../src/client/codec-server';
import { parseEncryptionKeys } from '../../src/shared/encryption/codec';

const keys = parseEncryptionKeys(`s1:${randomBytes(32).toString('base64')}`, 'X');
const plain = {
  metadata: { encoding: Buffer.from('json/plain').toString('base64') },
  data: Buffer.from('"a secret reply"').toString('base64'),
};

interface Answer {
  status: number;
  body: string;
  allowOrigin: string | undefined;
}

/** A POST over a raw socket, so Host and Origin are exactly what the test says (fetch sets Host itself). */
function post(
  server: CodecServer,
  path: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<Answer> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            body: text,
            allowOrigin: res.headers['access-control-allow-origin'],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('codec server', () => {
  let server: CodecServer;
  let sealed: unknown[];
  const uiOrigin = 'http://127.0.0.1:40123';
  before(async () => {
    server = await startCodecServer({ keys });
    server.allowOrigin(uiOrigin);
    const bearer = { authorization: `Bearer ${server.token}` };
    sealed = (
      JSON.parse((await post(server, '/encode', bearer, { payloads: [plain] })).body) as {
        payloads: unknown[];
      }
    ).payloads;
  });
  after(() => server.close());

  test('codec server: with no token given it makes one, and decodes only for a caller that has it', async () => {
    assert.ok(server.token.length >= 16);
    assert.equal((await post(server, '/decode', {}, { payloads: sealed })).status, 401);
    assert.equal(
      (
        await post(
          server,
          '/decode',
          { authorization: 'Bearer wrong-token-0123456789' },
          { payloads: sealed },
        )
      ).status,
      401,
    );
    assert.equal(
      (await post(server, '/wrong-token-0123456789/decode', {}, { payloads: sealed })).status,
      401,
    );
    const byHeader = await post(
      server,
      '/decode',
      { authorization: `Bearer ${server.token}` },
      { payloads: sealed },
    );
    assert.equal(byHeader.status, 200);
    assert.deepEqual((JSON.parse(byHeader.body) as { payloads: unknown[] }).payloads, [plain]);
    // The endpoint a UI is given carries the token in its path.
    const endpoint = new URL(server.endpoint);
    const byPath = await post(server, `${endpoint.pathname}/decode`, {}, { payloads: sealed });
    assert.equal(byPath.status, 200);
    assert.deepEqual((JSON.parse(byPath.body) as { payloads: unknown[] }).payloads, [plain]);
  });

  test('codec server: a request whose Host is not a loopback name of it is refused (DNS rebinding)', async () => {
    const { port } = new URL(server.url);
    const auth = { authorization: `Bearer ${server.token}` };
    for (const host of [`attacker.example:${port}`, `127.0.0.1.nip.io:${port}`, '127.0.0.1:1'])
      assert.equal(
        (await post(server, '/decode', { ...auth, host }, { payloads: sealed })).status,
        421,
        host,
      );
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`])
      assert.equal(
        (await post(server, '/decode', { ...auth, host }, { payloads: sealed })).status,
        200,
        host,
      );
  });

  test("codec server: a page of another origin is refused even with the token; the UI's origin, by either loopback name, is served", async () => {
    const auth = { authorization: `Bearer ${server.token}` };
    const foreign = await post(
      server,
      '/decode',
      { ...auth, origin: 'http://attacker.example' },
      { payloads: sealed },
    );
    assert.equal(foreign.status, 403);
    assert.equal(foreign.allowOrigin, undefined);
    for (const origin of [uiOrigin, 'http://localhost:40123']) {
      const ui = await post(server, '/decode', { ...auth, origin }, { payloads: sealed });
      assert.equal(ui.status, 200, origin);
      assert.equal(ui.allowOrigin, origin);
    }
  });

  test('codec server: with refusePlaintext, an unencrypted payload is refused; without it, it passes', async () => {
    const strict = await startCodecServer({ keys, refusePlaintext: true });
    try {
      const auth = { authorization: `Bearer ${strict.token}` };
      const refused = await post(strict, '/decode', auth, { payloads: [plain] });
      assert.equal(refused.status, 400);
      assert.match(refused.body, /not encrypted .*plaintext is refused/);
      assert.equal((await post(strict, '/decode', auth, { payloads: sealed })).status, 200);
    } finally {
      await strict.close();
    }
    const passed = await post(
      server,
      '/decode',
      { authorization: `Bearer ${server.token}` },
      { payloads: [plain] },
    );
    assert.equal(passed.status, 200);
  });
});
