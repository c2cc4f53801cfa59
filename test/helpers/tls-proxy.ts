/**
 * A TLS front for a plain Temporal dev server (which serves no TLS itself): an HTTP/2 server with a
 * certificate from a CA made here with `openssl`, forwarding every gRPC stream to the dev server.
 * Optionally it requires a client certificate (mTLS) and an `authorization: Bearer <key>` header (the
 * way Temporal Cloud checks API keys), and records what it saw.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  connect,
  constants,
  createSecureServer,
  type ClientHttp2Session,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA, which the proxy must refuse. */
  strangerCert: string;
  strangerKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A throwaway CA, a server certificate for localhost/127.0.0.1 and client certificates, in `dir`. */
export function makeTestPki(dir: string): TestPki {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
    ]);
  const leaf = (name: string, caName: string, cn: string, ext: string) => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.pem`,
      '-CAkey',
      `${caName}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ]);
  };
  ca('test-ca');
  ca('stranger-ca');
  leaf('server', 'test-ca', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  leaf('client', 'test-ca', 'worker', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', 'stranger', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('test-ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.pem'),
    strangerKey: p('stranger.key'),
  };
}

export interface TlsProxy {
  address: string;
  /** gRPC calls forwarded, and the client certificate subjects and API keys seen. */
  seen: { calls: number; clientSubjects: Set<string>; apiKeys: Set<string> };
  close(): Promise<void>;
}

const HOP_HEADERS = new Set([':authority', ':scheme', 'connection', 'host']);

export async function startTlsProxy(options: {
  pki: TestPki;
  upstream: string;
  requireClientCert?: boolean;
  requireApiKey?: string;
}): Promise<TlsProxy> {
  const { pki } = options;
  const seen = { calls: 0, clientSubjects: new Set<string>(), apiKeys: new Set<string>() };
  let upstream: ClientHttp2Session | undefined;
  const session = () => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      upstream = connect(`http://${options.upstream}`);
      upstream.on('error', () => undefined);
    }
    return upstream;
  };
  const server: Http2SecureServer = createSecureServer({
    key: readFileSync(pki.serverKey),
    cert: readFileSync(pki.serverCert),
    ca: readFileSync(pki.caCert),
    requestCert: options.requireClientCert ?? false,
    rejectUnauthorized: options.requireClientCert ?? false,
    ALPNProtocols: ['h2'],
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    seen.calls++;
    const peer = (stream.session?.socket as TLSSocket | undefined)?.getPeerCertificate();
    if (peer?.subject?.CN) seen.clientSubjects.add(String(peer.subject.CN));
    const auth = headers.authorization;
    if (typeof auth === 'string') seen.apiKeys.add(auth.replace(/^Bearer\s+/i, ''));
    if (options.requireApiKey !== undefined && auth !== `Bearer ${options.requireApiKey}`) {
      // gRPC's way of saying "unauthenticated": status 16 in trailers-only response.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '16',
          'grpc-message': 'bad api key',
        },
        { endStream: true },
      );
      return;
    }
    const forwarded = Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_HEADERS.has(k)));
    const out = session().request(forwarded);
    stream.pipe(out);
    out.on('response', (responseHeaders) => {
      const clean = Object.fromEntries(
        Object.entries(responseHeaders).filter(([k]) => !k.startsWith(':') || k === ':status'),
      );
      if (stream.destroyed) return;
      // A trailers-only answer (an error status in the headers) ends the stream as it is.
      if ('grpc-status' in responseHeaders) {
        stream.respond(clean, { endStream: true });
        return;
      }
      stream.respond(clean, { waitForTrailers: true });
      out.pipe(stream);
    });
    let trailers: IncomingHttpHeaders = {};
    out.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
    stream.on('wantTrailers', () => {
      const clean = Object.fromEntries(Object.entries(trailers).filter(([k]) => !k.startsWith(':')));
      try {
        stream.sendTrailers(Object.keys(clean).length > 0 ? clean : { 'grpc-status': '0' });
      } catch {
        // the client went away
      }
    });
    out.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('error', () => out.close(constants.NGHTTP2_CANCEL));
    stream.on('close', () => {
      if (!out.closed) out.close(constants.NGHTTP2_CANCEL);
    });
  });
  server.on('sessionError', () => undefined);
  const sessions = new Set<Http2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        upstream?.close();
        server.close(() => resolve());
        // Long-polls keep sessions open: end them so close() returns.
        for (const s of sessions) s.destroy();
      }),
  };
}
