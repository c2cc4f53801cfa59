/**
 * A `fetch` for the openai client over `node:http`/`node:https`, so that a streamed reply can be read
 * from the socket's Node stream: the global fetch (undici) hands each network chunk through a web
 * stream (a read request and a promise per chunk), and real servers send one event, so one chunk, per
 * token. The `Response` it returns is an ordinary one (the client reads errors and non-streamed replies
 * through it); `nodeBody` gives its Node stream to a reader that has not touched `response.body`.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/**
 * An idle kept-alive connection is closed after 4 s, or 1 s before the server's `Keep-Alive: timeout=`
 * (Node honours that hint only when the agent has a timeout of its own): llama.cpp and uvicorn (vLLM)
 * close theirs after 5 s. A connection in use is not affected.
 */
const IDLE_SOCKET_MS = 4_000;
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
};
const nodeBodies = new WeakMap<Response, IncomingMessage>();

/** The Node stream under a response of `nodeFetch`, unless its web body was read. */
export function nodeBody(response: Response): IncomingMessage | undefined {
  return response.bodyUsed ? undefined : nodeBodies.get(response);
}

/** Statuses whose `Response` may not have a body. */
const NO_BODY = new Set([101, 204, 205, 304]);

export async function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!transport) throw new TypeError(`fetch: unsupported protocol ${url.protocol}`);
  // Multipart uploads (the Batch API's input files) and other bodies: the global fetch encodes them.
  if (!isPlainBody(init.body)) return fetch(input, init);
  const options: http.RequestOptions = {
    method: init.method ?? 'GET',
    headers: Object.fromEntries(new Headers(init.headers).entries()),
    agent: agents[url.protocol as keyof typeof agents],
    signal: init.signal ?? undefined,
  };
  const body = requestBody(init.body);
  let message: IncomingMessage | undefined;
  for (let stale = 0; !message; stale++) {
    try {
      message = await send(transport, url, options, body);
    } catch (error) {
      if (!(error instanceof StaleSocketError)) throw error;
      if (stale >= MAX_STALE_SOCKETS) throw error.cause;
    }
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(message.headers)) {
    for (const one of Array.isArray(value) ? value : [value])
      if (one !== undefined) headers.append(name, one);
  }
  const status = message.statusCode ?? 0;
  const response = new Response(NO_BODY.has(status) ? null : lazyWebBody(message), {
    status,
    statusText: message.statusMessage,
    headers,
  });
  nodeBodies.set(response, message);
  return response;
}

/**
 * A kept-alive connection the server closed as the request went out (its idle timeout ran out as the
 * worker's timer did not, on a busy machine): the request is sent again, once, on a new connection. Node
 * leaves that to the caller (`request.reusedSocket`). Only when the reset comes at once: a server that
 * read the request and worked on it before dropping the connection may have been paid, and that one is
 * Temporal's retry, counted in the books.
 */
class StaleSocketError extends Error {}

/** Reset as the request was written (or read from), or written to a socket already reset. */
const STALE_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** How soon after the request is written a reset counts as a stale connection's. */
const STALE_WITHIN_MS = 250;

/** Stale kept-alive connections one request skips before the error is the caller's. */
const MAX_STALE_SOCKETS = 1;

function send(
  transport: typeof http | typeof https,
  url: URL,
  options: http.RequestOptions,
  body: string | Uint8Array | undefined,
): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const request = transport.request(url, options);
    let writtenAt: number | undefined;
    request.once('finish', () => (writtenAt = performance.now()));
    request.once('response', resolve);
    request.once('error', (error: NodeJS.ErrnoException) => {
      const stale =
        request.reusedSocket &&
        STALE_CODES.has(error.code ?? '') &&
        (writtenAt === undefined || performance.now() - writtenAt <= STALE_WITHIN_MS) &&
        !options.signal?.aborted;
      reject(stale ? new StaleSocketError('stale kept-alive connection', { cause: error }) : error);
    });
    request.end(body);
  });
}

function isPlainBody(body: RequestInit['body']): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer
  );
}

function requestBody(body: RequestInit['body']): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return body as string | Uint8Array;
}

/**
 * A web stream of the message that attaches to it at its first read only (high-water mark 0: nothing is
 * pulled before), so that `nodeBody` readers find the message untouched.
 */
function lazyWebBody(message: IncomingMessage): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        reader ??= (Readable.toWeb(message) as ReadableStream<Uint8Array>).getReader();
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        message.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
