/**
 * Redaction of credentials from text that leaves a process: error messages of endpoints and of Temporal,
 * base URLs, log lines. One function, applied where errors are mapped, so `failures.jsonl`, logs and
 * history never carry a key, a password in a URL or a bearer token.
 */

/** Put in place of every secret found. */
export const REDACTED = '[redacted]';

// Names of fields, headers and parameters that hold credentials.
const SECRET_NAMES =
  'api[_-]?key|apikey|authorization|password|passwd|secret|client[_-]?secret|access[_-]?token|refresh[_-]?token|id[_-]?token|token';

/**
 * Whether an unquoted word is a credential rather than the next word of a sentence ("OPENAI_API_KEY: is
 * set but empty" is prose). Credentials are not words: they hold a digit, a symbol or mixed case, or run
 * long. After a secret's name (`endsLine`), a word that ends its line is a header line's value as well.
 */
function isValue(word: string, after: string, endsLine: boolean): boolean {
  if (word.length >= 6 && /\d|[._~+/=-]|[a-z][A-Z]|[A-Z]{2}[a-z]/.test(word)) return true;
  if (word.length >= 24) return true;
  return endsLine && word.length >= 8 && /^\s*(?:$|[\r\n,;}\]])/.test(after);
}

type Replacer = (match: string, ...groups: string[]) => string;

const PATTERNS: readonly [RegExp, string | Replacer][] = [
  // user:password@ (or a lone token@) in any URL
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*(?::[^\s/@]*)?@/gi, `$1${REDACTED}@`],
  // ?api_key=..., &token=..., &refresh_token=..., sig=... in query strings and form bodies
  [
    new RegExp(`([?&;](?:${SECRET_NAMES}|key|auth|pass|sig|signature|code)=)[^&\\s#"']+`, 'gi'),
    `$1${REDACTED}`,
  ],
  // Authorization schemes: "Bearer <value>", not "bearer token required"
  [
    /\b(Bearer|Basic|Token)(\s+)([A-Za-z0-9._~+/=-]{5,}[A-Za-z0-9_~+/=-])(?=(.*))/gi,
    (match, scheme, space, word, after) =>
      isValue(word, after, false) ? `${scheme}${space}${REDACTED}` : match,
  ],
  // OpenAI-style and other well-known key shapes, wherever they appear (a key always holds a digit)
  [/\b(sk|rk|pk)-(?:proj-|ant-|live-|test-)?(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(?:ghp|gho|ghs|github_pat|xox[abp]|AKIA)[A-Za-z0-9_]{10,}/g, REDACTED],
  // Quoted values of fields named like secrets: "api_key": "...", 'refresh_token': '...', token="..."
  [
    new RegExp(
      `((?<![a-z0-9])["']?(?:x-)?(?:${SECRET_NAMES})["']?\\s*[:=]\\s*)(["'])(?!\\[redacted\\])(?:(?!\\2)[^\\n])+\\2`,
      'gi',
    ),
    `$1$2${REDACTED}$2`,
  ],
  // Unquoted: api_key=VALUE is always a value; after "name: " (and a scheme) only a credential-like word is
  [
    new RegExp(
      `((?<![a-z0-9])(?:x-)?(?:${SECRET_NAMES})(?:=|\\s*[:=]\\s*)(?:(?:Bearer|Basic|Token)\\s+)?)(?!\\[redacted\\]|["'])([^"',\\s})\\]>;:\`]*[^"',\\s})\\]>;:\`.])(?=(.*))`,
      'gi',
    ),
    (match, name, word, after) =>
      /^[^\s]*=$/.test(name) || isValue(word, after, true) ? `${name}${REDACTED}` : match,
  ],
];

/** `text` with credentials replaced by `[redacted]`; everything else, prose included, left as it was. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of PATTERNS)
    out =
      typeof replacement === 'string'
        ? out.replace(pattern, replacement)
        : out.replace(pattern, replacement as (match: string, ...rest: unknown[]) => string);
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
