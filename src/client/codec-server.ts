/**
 * `consistent-chat codec-server`: Temporal's remote codec protocol over HTTP, so the Temporal UI (and
 * `temporal` CLI with `--codec-endpoint`) show decrypted payloads to whoever may reach this server.
 * `POST /encode` and `POST /decode` take and return `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`.
 * Binds loopback unless told otherwise. It decrypts for whoever calls it, so every request must carry
 * its token (one is made when none is given): as `Authorization: Bearer <token>`, or as the first path
 * segment of `endpoint` (`/<token>/decode`) for UIs that send no headers. It answers only requests
 * whose Host names it by loopback address (a DNS-rebound name gets 421) and whose Origin, if any, is
 * one allowed.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { EncryptionCodec, type EncryptionKeys } from '../shared/encryption/codec';

/** Largest request body accepted. @default 16 MiB, above Temporal's own 4 MB payload limit */
export const MAX_CODEC_BODY_BYTES = 16 * 1024 * 1024;

export interface CodecServerOptions {
  keys: EncryptionKeys;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (a free port) */
  port?: number;
  /** Browser origins allowed to call (the Temporal UI's, e.g. `http://localhost:8080`). */
  corsOrigins?: readonly string[];
  /** What requests must carry; at least 16 characters. @default 32 random bytes, base64url */
  token?: string;
  /** Refuse to decode payloads that are not encrypted (see `EncryptionCodec`). @default false */
  refusePlaintext?: boolean;
}

export interface CodecServer {
  /** `http://host:port` */
  url: string;
  /** `url` with the token as first path segment: a codec endpoint for a UI that sends no header. */
  endpoint: string;
  token: string;
  server: Server;
  /** Lets one more browser origin call (the embedded UI's, known only once it runs). */
  allowOrigin(origin: string): void;
  close(): Promise<void>;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64');
const bodySchema = z.object({
  payloads: z.array(
    z.object({
      metadata: z.record(z.string(), base64).nullish(),
      data: base64.nullish(),
    }),
  ),
});
type JsonPayload = z.infer<typeof bodySchema>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
  ),
  data: p.data ? Buffer.from(p.data, 'base64') : undefined,
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v ?? new Uint8Array()).toString('base64'),
    ]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CODEC_BODY_BYTES) throw new HttpError(413, `body over ${MAX_CODEC_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Shortest token accepted. */
export const MIN_CODEC_TOKEN_LENGTH = 16;

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'] as const;

/** The Host values that name this server: its loopback names (and its bound address) with its port. */
function hostsOf(host: string, port: number): Set<string> {
  const shown = host.includes(':') ? `[${host}]` : host;
  return new Set([...LOOPBACK_NAMES, shown].map((name) => `${name}:${port}`));
}

/** `origin` and its loopback twins: a UI on 127.0.0.1:P is opened as localhost:P just as well. */
export function loopbackAliases(origin: string): string[] {
  const url = new URL(origin);
  if (!(LOOPBACK_NAMES as readonly string[]).includes(url.hostname)) return [url.origin];
  return LOOPBACK_NAMES.map((name) => `${url.protocol}//${name}${url.port ? `:${url.port}` : ''}`);
}

/**
 * The request handler, separate from the listener so it can be mounted elsewhere. `hosts` are the Host
 * header values accepted (see `hostsOf`).
 */
export function codecRequestHandler(
  options: CodecServerOptions & { token: string },
  origins: Set<string>,
  hosts: () => Set<string>,
) {
  if (options.token.length < MIN_CODEC_TOKEN_LENGTH)
    throw new Error(`codec server token: use ${MIN_CODEC_TOKEN_LENGTH} characters or more`);
  const codec = new EncryptionCodec(options.keys, { refusePlaintext: options.refusePlaintext });
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    // A page on another site that rebinds its name to 127.0.0.1 sends its own name as Host.
    if (!hosts().has((req.headers.host ?? '').toLowerCase())) {
      res.writeHead(421, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Host does not name this server' }));
      return;
    }
    // Browsers send Origin on cross-origin POSTs; a page of another origin gets nothing, CORS or not.
    if (origin !== undefined && !origins.has(origin)) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Origin not allowed' }));
      return;
    }
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
      res.setHeader('Vary', 'Origin');
    }
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(origin && origins.has(origin) ? 204 : 403);
        res.end();
        return;
      }
      const route = /^(?:\/([^/]+))?\/(encode|decode)$/.exec((req.url ?? '').split('?')[0]!);
      if (!route) throw new HttpError(404, 'not found: POST /encode or /decode');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
      const given = route[1] === undefined ? bearer : decodeURIComponent(route[1]);
      if (given === undefined || !sameToken(given, options.token)) throw new HttpError(401, 'token required');
      const path = `/${route[2]}`;
      let json: unknown;
      try {
        json = JSON.parse(await readBody(req));
      } catch (error) {
        if (error instanceof HttpError) throw error;
        throw new HttpError(400, 'body is not JSON');
      }
      const parsed = bodySchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new HttpError(400, `${issue.path.join('.') || 'body'}: ${issue.message}`);
      }
      const payloads = parsed.data.payloads.map(fromJson);
      const out = path === '/encode' ? await codec.encode(payloads) : await codec.decode(payloads);
      send(200, { payloads: out.map(toJson) });
    } catch (error) {
      if (error instanceof HttpError) send(error.status, { error: error.message });
      else send(400, { error: (error as Error).message });
    }
  };
}

/** Starts the codec server; resolves once it listens. */
export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(options.corsOrigins ?? []);
  const token = options.token ?? randomBytes(32).toString('base64url');
  const host = options.host ?? '127.0.0.1';
  let hosts = new Set<string>();
  const handler = codecRequestHandler({ ...options, token }, origins, () => hosts);
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  hosts = hostsOf(host, port);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}`;
  return {
    url,
    endpoint: `${url}/${encodeURIComponent(token)}`,
    token,
    server,
    allowOrigin: (origin) => loopbackAliases(origin).forEach((o) => origins.add(o)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
