/**
 * Redaction of credentials from text that leaves a process: error messages of endpoints and of Temporal,
 * base URLs, log lines. One function, applied where errors are mapped, so `failures.jsonl`, logs and
 * history never carry a key, a password in a URL or a bearer token.
 */

/** Put in place of every secret found. */
export const REDACTED = '[redacted]';

const PATTERNS: readonly [RegExp, string][] = [
  // user:password@ (or a lone token@) in any URL
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*(?::[^\s/@]*)?@/gi, `$1${REDACTED}@`],
  // ?api_key=..., &token=..., key=..., access_token=..., sig=... in query strings and form bodies
  [
    /([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|auth|secret|password|pass|sig|signature|client[_-]?secret)=)[^&\s#"']+/gi,
    `$1${REDACTED}`,
  ],
  // Authorization headers and bearer/basic tokens
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/gi, `$1 ${REDACTED}`],
  // OpenAI-style and other well-known key shapes, wherever they appear
  [/\b(sk|rk|pk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(?:ghp|gho|ghs|github_pat|xox[abp]|AKIA)[A-Za-z0-9_]{10,}/g, REDACTED],
  // JSON or header fields named like secrets: "api_key": "...", x-api-key: ...
  [
    /(["']?(?:api[_-]?key|x-api-key|authorization|password|secret|access[_-]?token)["']?\s*[:=]\s*["']?)(?!Bearer\b|Basic\b|Token\b|\[redacted\])[^"',\s}]+/gi,
    `$1${REDACTED}`,
  ],
];

/** `text` with credentials replaced by `[redacted]`; everything else left as it was. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/**
 * A copy of an error with its message and stack redacted, of the same class (so `instanceof` checks still
 * hold) and with its other fields; the original is left untouched.
 */
export function redactError(error: unknown): Error {
  const source = error instanceof Error ? error : new Error(String(error));
  const copy = Object.assign(Object.create(Object.getPrototypeOf(source) as object) as Error, source);
  Object.defineProperty(copy, 'message', {
    value: redact(source.message),
    writable: true,
    configurable: true,
  });
  Object.defineProperty(copy, 'stack', {
    value: source.stack === undefined ? undefined : redact(source.stack),
    writable: true,
    configurable: true,
  });
  if (copy.name !== source.name) copy.name = source.name;
  if (source.cause !== undefined)
    Object.defineProperty(copy, 'cause', {
      value: redactError(source.cause),
      writable: true,
      configurable: true,
    });
  return copy;
}
