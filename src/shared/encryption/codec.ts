/**
 * Payload encryption: an AES-256-GCM `PayloadCodec` and the keys it uses. Every payload the client and
 * the workers send (inputs, results, heartbeats, queries, memos, activity summaries, failure messages)
 * is sealed before it reaches Temporal, so the server, its database and anyone reading history without
 * the key see ciphertext. The key id travels in each payload's metadata: a new key can be put first
 * while old ones still decode what was written with them.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  METADATA_ENCODING_KEY,
  ValueError,
  type DataConverter,
  type Payload,
  type PayloadCodec,
} from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTION_KEY_ENV = 'CONSISTENT_CHAT_ENCRYPTION_KEY';
export const ENCRYPTION_KEY_FILE_FLAG = '--encryption-key-file';
/** The `encoding` metadata of a sealed payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was sealed with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

/** Keys by id; `encryptKeyId` seals new payloads, every id opens old ones. */
export interface EncryptionKeys {
  encryptKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
}

/** Bad key material, named by where it came from (the variable or the flag); never quotes the key. */
export class EncryptionKeyError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'EncryptionKeyError';
  }
}

/** A key's id when none is given: a short fingerprint, stable across processes, useless to an attacker. */
export function keyFingerprint(key: Buffer): string {
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/**
 * Parses `[KEYID:]BASE64` entries separated by commas (or newlines, in a file). The first entry
 * encrypts; all decrypt. `field` names the source in errors.
 */
export function parseEncryptionKeys(text: string, field: string): EncryptionKeys {
  const entries = text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  if (entries.length === 0)
    throw new EncryptionKeyError(field, 'is empty; expected [KEYID:]BASE64 of 32 bytes');
  const keys = new Map<string, Buffer>();
  entries.forEach((entry, index) => {
    const where = entries.length > 1 ? `entry ${index + 1}` : 'the key';
    const colon = entry.indexOf(':');
    const material = colon >= 0 ? entry.slice(colon + 1).trim() : entry;
    if (!BASE64_PATTERN.test(material) || material.length % 4 !== 0)
      throw new EncryptionKeyError(field, `${where} is not base64 (expected [KEYID:]BASE64 of 32 bytes)`);
    const key = Buffer.from(material, 'base64');
    if (key.length !== KEY_BYTES)
      throw new EncryptionKeyError(
        field,
        `${where} decodes to ${key.length} bytes; AES-256 needs 32 (e.g. \`openssl rand -base64 32\`)`,
      );
    const id = colon >= 0 ? entry.slice(0, colon).trim() : keyFingerprint(key);
    if (!KEY_ID_PATTERN.test(id))
      throw new EncryptionKeyError(field, `${where} has key id "${id}"; use 1-64 of A-Z a-z 0-9 . _ -`);
    if (keys.has(id)) throw new EncryptionKeyError(field, `key id "${id}" is given twice`);
    keys.set(id, key);
  });
  return { encryptKeyId: keys.keys().next().value!, keys };
}

export interface KeySourceOptions {
  /** A file holding the keys (same format as the variable); wins over the variable. */
  keyFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The configured keys, or undefined when encryption is off. Throws `EncryptionKeyError` on bad material. */
export function loadEncryptionKeys(options: KeySourceOptions = {}): EncryptionKeys | undefined {
  if (options.keyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.keyFile, 'utf8');
    } catch (error) {
      throw new EncryptionKeyError(
        ENCRYPTION_KEY_FILE_FLAG,
        `cannot read ${options.keyFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    return parseEncryptionKeys(text, ENCRYPTION_KEY_FILE_FLAG);
  }
  const raw = (options.env ?? process.env)[ENCRYPTION_KEY_ENV];
  if (raw === undefined) return undefined;
  return parseEncryptionKeys(raw, ENCRYPTION_KEY_ENV);
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const fromUtf8 = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : '');

/**
 * Seals each whole payload (metadata and data) with AES-256-GCM under a fresh 96-bit nonce; the key id
 * is authenticated as associated data, so a payload cannot be passed off as another key's. Without keys
 * it passes payloads through and refuses sealed ones with a message saying how to set the key.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(
    private readonly config: EncryptionKeys | undefined,
    private readonly options: {
      /**
       * With keys set, decoding refuses a payload that is not encrypted instead of passing it through:
       * someone without the keys cannot slip plaintext in where sealed data is expected. @default false
       */
      refusePlaintext?: boolean;
    } = {},
  ) {}

  get encrypting(): boolean {
    return this.config !== undefined;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    const config = this.config;
    if (!config) return Promise.resolve(payloads);
    const key = config.keys.get(config.encryptKeyId)!;
    return Promise.resolve(
      payloads.map((payload) => {
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        cipher.setAAD(utf8(config.encryptKeyId));
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: {
            [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING),
            [KEY_ID_METADATA]: utf8(config.encryptKeyId),
          },
          data: sealed,
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    try {
      return Promise.resolve(payloads.map((p) => this.decodeOne(p)));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private decodeOne(payload: Payload): Payload {
    if (fromUtf8(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) {
      if (this.config && this.options.refusePlaintext)
        throw new ValueError(
          `payload is not encrypted (encoding "${fromUtf8(payload.metadata?.[METADATA_ENCODING_KEY])}") and plaintext is refused while keys are set`,
        );
      return payload;
    }
    const keyId = fromUtf8(payload.metadata?.[KEY_ID_METADATA]);
    if (!this.config)
      throw new ValueError(
        `payload is encrypted (key id "${keyId}") and no key is configured: set ${ENCRYPTION_KEY_ENV} or pass ${ENCRYPTION_KEY_FILE_FLAG}`,
      );
    const key = this.config.keys.get(keyId);
    if (!key)
      throw new ValueError(
        `payload was encrypted with key id "${keyId}", which is not among the configured keys (${[...this.config.keys.keys()].join(', ')}); add it to ${ENCRYPTION_KEY_ENV}`,
      );
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new ValueError(`encrypted payload (key id "${keyId}") is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(utf8(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new ValueError(
        `cannot decrypt a payload with key id "${keyId}": the configured key of that id is not the one it was encrypted with (check ${ENCRYPTION_KEY_ENV})`,
      );
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}

/** The module exporting the failure converter that encodes messages (see `encoded-failures.ts`). */
export const ENCODED_FAILURES_MODULE = require.resolve('../encoded-failures');

/**
 * The data converter of every client and worker: the codec (a pass-through without keys, which still
 * names the variable when it meets sealed payloads) and, when encrypting, failure messages and stack
 * traces moved into an encoded payload, since an endpoint's error text can quote a prompt.
 */
export function encryptionDataConverter(keys: EncryptionKeys | undefined): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(keys)],
    ...(keys ? { failureConverterPath: ENCODED_FAILURES_MODULE } : {}),
  };
}
