/**
 * `consistent-chat codec-server`: Temporal's remote codec protocol over HTTP, so the Temporal UI (and
 * `temporal` CLI with `--codec-endpoint`) show decrypted payloads to whoever may reach this server.
 * `POST /encode` and `POST /decode` take and return `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`.
 * Binds loopback unless told otherwise; answers CORS only for the origins given; with a token, every
 * request must carry `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
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
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export interface CodecServer {
  /** `http://host:port` */
  url: string;
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

/** The request handler, separate from the listener so it can be mounted elsewhere. */
export function codecRequestHandler(
  options: CodecServerOptions,
  origins = new Set(options.corsOrigins ?? []),
) {
  const codec = new EncryptionCodec(options.keys);
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
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
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/encode' && path !== '/decode')
        throw new HttpError(404, 'not found: POST /encode or /decode');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      if (options.token !== undefined) {
        const header = req.headers.authorization ?? '';
        const match = /^Bearer\s+(.+)$/i.exec(header);
        if (!match || !sameToken(match[1]!.trim(), options.token))
          throw new HttpError(401, 'bearer token required');
      }
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
  const handler = codecRequestHandler(options, origins);
  const server = createServer((req, res) => void handler(req, res));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    server,
    allowOrigin: (origin) => void origins.add(origin),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
