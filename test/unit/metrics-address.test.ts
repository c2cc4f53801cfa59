import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricsExport } from '../../src/client/metrics-address';
import { ConfigError } from '../../src/shared/errors';

test('metrics address: no flag and no variable serves no metrics', () => {
  assert.equal(metricsExport(undefined, {}), undefined);
  assert.equal(metricsExport(undefined, { CONSISTENT_CHAT_METRICS_PORT: '' }), undefined);
});

test('metrics address: the flag wins over the variable and binds loopback by default', () => {
  assert.deepEqual(metricsExport('9464', { CONSISTENT_CHAT_METRICS_PORT: '1' }), {
    bindAddress: '127.0.0.1:9464',
    field: '--metrics-port',
  });
  assert.deepEqual(metricsExport(undefined, { CONSISTENT_CHAT_METRICS_PORT: '9464' }), {
    bindAddress: '127.0.0.1:9464',
    field: 'CONSISTENT_CHAT_METRICS_PORT',
  });
});

test('metrics address: a host from the environment, IPv6 in brackets', () => {
  const env = { CONSISTENT_CHAT_METRICS_HOST: '0.0.0.0' };
  assert.equal(metricsExport('9464', env)?.bindAddress, '0.0.0.0:9464');
  assert.equal(metricsExport('9464', { CONSISTENT_CHAT_METRICS_HOST: '::' })?.bindAddress, '[::]:9464');
});

test('metrics address: bad input names the field', () => {
  const fails = (flag: string | undefined, env: NodeJS.ProcessEnv, field: RegExp) =>
    assert.throws(
      () => metricsExport(flag, env),
      (e: unknown) => e instanceof ConfigError && field.test(e.message),
    );
  fails('0', {}, /^--metrics-port: must be 1-65535, got "0"/);
  fails('70000', {}, /^--metrics-port: must be 1-65535/);
  fails('9x', {}, /^--metrics-port: must be a whole number/);
  fails(
    undefined,
    { CONSISTENT_CHAT_METRICS_PORT: '-1' },
    /^CONSISTENT_CHAT_METRICS_PORT: must be a whole number/,
  );
  fails(
    '9464',
    { CONSISTENT_CHAT_METRICS_HOST: 'localhost' },
    /^CONSISTENT_CHAT_METRICS_HOST: must be an IPv4 or IPv6 address/,
  );
});
