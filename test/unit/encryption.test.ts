import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { defaultPayloadConverter, METADATA_ENCODING_KEY } from '@temporalio/common';
import {
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  EncryptionKeyError,
  KEY_ID_METADATA,
  loadEncryptionKeys,
  parseEncryptionKeys,
} from '../../src/shared/encryption/codec';
import { startCodecServer } from '../../src/client/codec-server';
import { tempDir } from '../helpers/temporal';

const b64 = () => randomBytes(32).toString('base64');
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('utf8');
const payload = (value: unknown) => defaultPayloadConverter.toPayload(value);

describe('encryption', () => {
  test('encryption keys: [KEYID:]BASE64 entries parse, the first encrypts, ids default to a fingerprint', () => {
    const [a, b] = [b64(), b64()];
    const keys = parseEncryptionKeys(`new:${a}, ${b}`, 'X');
    assert.equal(keys.encryptKeyId, 'new');
    assert.equal(keys.keys.size, 2);
    const fingerprint = [...keys.keys.keys()][1]!;
    assert.match(fingerprint, /^k[0-9a-f]{12}$/);
    assert.equal(parseEncryptionKeys(b, 'X').encryptKeyId, fingerprint, 'stable across parses');
  });

  test('encryption keys: bad material is one line naming the source, never quoting the key', () => {
    const short = randomBytes(16).toString('base64');
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['not base64!!', /not base64/],
      [short, /16 bytes; AES-256 needs 32/],
      [`bad id:${b64()}`, /key id "bad id"/],
      [`a:${b64()},a:${b64()}`, /given twice/],
      [`${b64()},${short}`, /entry 2 decodes to 16 bytes/],
    ];
    for (const [raw, pattern] of cases) {
      assert.throws(
        () => loadEncryptionKeys({ env: { CONSISTENT_CHAT_ENCRYPTION_KEY: raw } }),
        (error: Error) => {
          assert.ok(error instanceof EncryptionKeyError);
          assert.match(error.message, /^CONSISTENT_CHAT_ENCRYPTION_KEY: /);
          assert.match(error.message, pattern);
          assert.equal(error.message.split('\n').length, 1);
          if (raw.length > 20) assert.ok(!error.message.includes(raw.split(',').at(-1)!.split(':').at(-1)!));
          return true;
        },
        JSON.stringify(raw),
      );
    }
    assert.equal(loadEncryptionKeys({ env: {} }), undefined, 'no variable: encryption off');
  });

  test('encryption keys: a key file takes precedence and its errors name --encryption-key-file', async () => {
    const dir = await tempDir('cc-keys-');
    const file = join(dir, 'keys');
    await writeFile(file, `f1:${b64()}\nf0:${b64()}\n`);
    const keys = loadEncryptionKeys({ keyFile: file, env: { CONSISTENT_CHAT_ENCRYPTION_KEY: `e:${b64()}` } });
    assert.equal(keys?.encryptKeyId, 'f1');
    assert.throws(
      () => loadEncryptionKeys({ keyFile: join(dir, 'missing') }),
      /^Error|--encryption-key-file: cannot read/,
    );
    await writeFile(file, 'short:AAAA\n');
    assert.throws(
      () => loadEncryptionKeys({ keyFile: file }),
      /^.*--encryption-key-file: the key decodes to 3 bytes/,
    );
  });

  test('encryption codec: payloads round-trip, carry no plaintext and name their key id', async () => {
    const keys = parseEncryptionKeys(`k1:${b64()}`, 'X');
    const codec = new EncryptionCodec(keys);
    const secret = 'A dialogue about the launch codes of project Nightingale';
    const [sealed] = await codec.encode([payload({ topic: secret })]);
    assert.equal(text(sealed!.metadata![METADATA_ENCODING_KEY]), ENCRYPTED_ENCODING);
    assert.equal(text(sealed!.metadata![KEY_ID_METADATA]), 'k1');
    assert.ok(!Buffer.from(sealed!.data!).toString('latin1').includes('Nightingale'));
    const [opened] = await codec.decode([sealed!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened!), { topic: secret });
    const [again] = await codec.encode([payload({ topic: secret })]);
    assert.notDeepEqual(Buffer.from(again!.data!), Buffer.from(sealed!.data!), 'fresh nonce each time');
    const plain = payload('plain');
    assert.deepEqual(await codec.decode([plain]), [plain], 'unencrypted payloads pass through');
  });

  test('encryption codec: rotation keeps old ids readable; a wrong, unknown or missing key fails clearly', async () => {
    const [oldKey, newKey] = [b64(), b64()];
    const old = new EncryptionCodec(parseEncryptionKeys(`v1:${oldKey}`, 'X'));
    const [sealed] = await old.encode([payload('hello')]);
    const rotated = new EncryptionCodec(parseEncryptionKeys(`v2:${newKey},v1:${oldKey}`, 'X'));
    assert.equal(
      defaultPayloadConverter.fromPayload(((await rotated.decode([sealed!])) as never)[0]),
      'hello',
    );
    const [fresh] = await rotated.encode([payload('x')]);
    assert.equal(text(fresh!.metadata![KEY_ID_METADATA]), 'v2');

    const wrong = new EncryptionCodec(parseEncryptionKeys(`v1:${b64()}`, 'X'));
    await assert.rejects(
      wrong.decode([sealed!]),
      /cannot decrypt a payload with key id "v1".*CONSISTENT_CHAT_ENCRYPTION_KEY/,
    );
    const unknown = new EncryptionCodec(parseEncryptionKeys(`v3:${b64()}`, 'X'));
    await assert.rejects(
      unknown.decode([sealed!]),
      /key id "v1", which is not among the configured keys \(v3\)/,
    );
    await assert.rejects(
      new EncryptionCodec(undefined).decode([sealed!]),
      /no key is configured: set CONSISTENT_CHAT_ENCRYPTION_KEY/,
    );
    // A payload relabelled with another key id fails authentication (the id is associated data).
    const relabelled = {
      ...sealed!,
      metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('v2') },
    };
    const both = new EncryptionCodec(parseEncryptionKeys(`v2:${oldKey},v1:${oldKey}`, 'X'));
    await assert.rejects(both.decode([relabelled]), /cannot decrypt/);
  });

  test('codec server: /encode and /decode speak the remote codec protocol, with CORS and a bearer token', async () => {
    const keys = parseEncryptionKeys(`s1:${b64()}`, 'X');
    const origin = 'http://127.0.0.1:9999';
    const server = await startCodecServer({ keys, corsOrigins: [origin], token: 'a-token-of-enough-length' });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const auth = { authorization: 'Bearer a-token-of-enough-length', 'content-type': 'application/json' };
      const jsonPayload = {
        metadata: { encoding: Buffer.from('json/plain').toString('base64') },
        data: Buffer.from('"the response text"').toString('base64'),
      };
      const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
        fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { ...headers, origin },
          body: JSON.stringify(body),
        });
      const encoded = await post('/encode', { payloads: [jsonPayload] });
      assert.equal(encoded.status, 200);
      assert.equal(encoded.headers.get('access-control-allow-origin'), origin);
      const sealed = (
        (await encoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] }
      ).payloads;
      assert.equal(Buffer.from(sealed[0]!.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
      assert.ok(!Buffer.from(sealed[0]!.data, 'base64').toString('latin1').includes('response text'));
      const decoded = await post('/decode', { payloads: sealed });
      assert.deepEqual(((await decoded.json()) as { payloads: unknown[] }).payloads[0], jsonPayload);

      assert.equal(
        (await post('/decode', { payloads: sealed }, { 'content-type': 'application/json' })).status,
        401,
      );
      assert.equal((await post('/decode', { payloads: 'x' })).status, 400);
      assert.equal((await post('/other', { payloads: [] })).status, 404);
      const preflight = await fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.status, 204);
      assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
      const foreign = await fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: { origin: 'http://evil.test' },
      });
      assert.equal(foreign.status, 403);
      assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    } finally {
      await server.close();
    }
  });
});
