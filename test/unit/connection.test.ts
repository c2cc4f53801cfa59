import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { describeConnection, resolveConnection } from '../../src/client/connection';
import { tempDir } from '../helpers/temporal';

const TOML = `
[profile.default]
address = "default.example:7233"
namespace = "dev"

[profile.cloud]
address = "my-ns.a1b2c.tmprl.cloud:7233"
namespace = "my-ns.a1b2c"
api_key = "cloud-api-key-123"
`;

describe('connection', () => {
  test('connection: the temporal.toml profile, then TEMPORAL_* variables, then flags', async () => {
    const dir = await tempDir('cc-conn-');
    const file = join(dir, 'temporal.toml');
    await writeFile(file, TOML);
    const base = { TEMPORAL_CONFIG_FILE: file };
    assert.deepEqual(resolveConnection({}, base), { address: 'default.example:7233', namespace: 'dev' });

    const cloud = resolveConnection({}, { ...base, TEMPORAL_PROFILE: 'cloud' });
    assert.equal(cloud.address, 'my-ns.a1b2c.tmprl.cloud:7233');
    assert.equal(cloud.namespace, 'my-ns.a1b2c');
    assert.equal(cloud.apiKey, 'cloud-api-key-123');
    assert.equal(cloud.tls, true, 'an API key turns TLS on');
    assert.ok(!describeConnection(cloud).includes('cloud-api-key-123'));
    assert.match(describeConnection(cloud), /TLS, API key/);

    const fromEnv = resolveConnection(
      {},
      { ...base, TEMPORAL_PROFILE: 'cloud', TEMPORAL_ADDRESS: 'env:1', TEMPORAL_NAMESPACE: 'env-ns' },
    );
    assert.equal(fromEnv.address, 'env:1');
    assert.equal(fromEnv.namespace, 'env-ns');
    const fromFlags = resolveConnection(
      { address: 'flag:2', namespace: 'flag-ns', profile: 'cloud' },
      { ...base, TEMPORAL_ADDRESS: 'env:1' },
    );
    assert.equal(fromFlags.address, 'flag:2');
    assert.equal(fromFlags.namespace, 'flag-ns');
    assert.equal(fromFlags.apiKey, 'cloud-api-key-123');
    assert.equal(resolveConnection({ tls: false }, { ...base, TEMPORAL_PROFILE: 'cloud' }).tls, false);

    const none = resolveConnection({}, { TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') });
    assert.deepEqual(none, { address: undefined, namespace: 'default' }, 'nothing set: embedded server');
    assert.equal(resolveConnection({}, { TEMPORAL_API_KEY: 'k', TEMPORAL_CONFIG_FILE: file }).tls, true);
  });

  test('connection: mTLS files from variables or flags are read; bad settings are one line naming them', async () => {
    const dir = await tempDir('cc-conn-');
    const pem = (name: string) => join(dir, name);
    await writeFile(pem('ca.pem'), 'CA');
    await writeFile(pem('c.pem'), 'CERT');
    await writeFile(pem('c.key'), 'KEY');
    const env = {
      TEMPORAL_CONFIG_FILE: pem('none.toml'),
      TEMPORAL_ADDRESS: 'h:1',
      TEMPORAL_TLS_CLIENT_CERT_PATH: pem('c.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: pem('c.key'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'srv',
    };
    const fromEnv = resolveConnection({}, env);
    assert.ok(typeof fromEnv.tls === 'object');
    assert.equal(fromEnv.tls.serverNameOverride, 'srv');
    assert.equal(Buffer.from(fromEnv.tls.clientCertPair!.crt).toString(), 'CERT');
    assert.equal(Buffer.from(fromEnv.tls.serverRootCACertificate!).toString(), 'CA');
    const fromFlags = resolveConnection(
      { tlsCertPath: pem('c.pem'), tlsKeyPath: pem('c.key'), tlsCaPath: pem('ca.pem'), tlsServerName: 'x' },
      { TEMPORAL_CONFIG_FILE: pem('none.toml') },
    );
    assert.ok(typeof fromFlags.tls === 'object');
    assert.equal(fromFlags.tls.serverNameOverride, 'x');
    assert.equal(Buffer.from(fromFlags.tls.clientCertPair!.key).toString(), 'KEY');

    const bad: [() => unknown, RegExp][] = [
      [
        () => resolveConnection({ profile: 'nope' }, { TEMPORAL_CONFIG_FILE: pem('none.toml') }),
        /--profile.*nope/,
      ],
      [() => resolveConnection({ tlsCertPath: pem('c.pem') }, {}), /^--tls-key: /],
      [() => resolveConnection({ tlsCaPath: pem('missing.pem') }, {}), /^--tls-ca: cannot read .*ENOENT/],
    ];
    for (const [call, pattern] of bad)
      assert.throws(call, (e: Error) => pattern.test(e.message) && e.message.split('\n').length === 1);
    await writeFile(pem('broken.toml'), '[profile.default\naddress = ');
    assert.throws(
      () => resolveConnection({}, { TEMPORAL_CONFIG_FILE: pem('broken.toml') }),
      /TEMPORAL_CONFIG_FILE/,
    );
  });
});
