#!/usr/bin/env node
// Part of `npm run build`: bundles the compiled workflows once, so workers load dist/workflow-bundle.js
// instead of running webpack at every start (seconds of CPU and over 100 MB of memory they keep).
'use strict';
const { writeFile } = require('node:fs/promises');
const { join } = require('node:path');
const { bundleWorkflowCode } = require('@temporalio/worker');

const dist = join(__dirname, '..', 'dist');
const silent = () => undefined;

// Four bundles: with or without the failure converter that encodes failure messages (used by workers
// that encrypt payloads; the converter must live inside the sandbox), and with or without the
// OpenTelemetry workflow interceptors (used by workers that trace). Names: src/worker.ts workflowBundleFile.
const encodedFailures = require.resolve(join(dist, 'shared', 'encoded-failures'));
const otelInterceptors = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');
const bundles = [
  ['workflow-bundle.js', undefined, []],
  ['workflow-bundle-encrypted.js', encodedFailures, []],
  ['workflow-bundle-traced.js', undefined, [otelInterceptors]],
  ['workflow-bundle-traced-encrypted.js', encodedFailures, [otelInterceptors]],
];
/**
 * The bundle's inline source map, without the sources' text (1.7 of its 2.2 MB): stack traces still
 * name the TypeScript file, line and column, and each workflow thread and the main thread no longer
 * hold every source file in memory. (The SDK requires an inline map; it reads `sourcesContent` only
 * for `showStackTraceSources`, which this package leaves off.)
 */
function withoutSourcesContent(code) {
  const at = code.lastIndexOf('//# sourceMappingURL=data:');
  const data = at < 0 ? -1 : code.indexOf('base64,', at) + 'base64,'.length;
  if (data < 'base64,'.length) throw new Error('the workflow bundle has no inline source map');
  const map = JSON.parse(Buffer.from(code.slice(data).trim(), 'base64').toString('utf8'));
  delete map.sourcesContent;
  return `${code.slice(0, data)}${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}

(async () => {
  // One after the other: webpack takes a few hundred MB each.
  for (const [file, failureConverterPath, workflowInterceptorModules] of bundles) {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve(join(dist, 'workflows')),
      failureConverterPath,
      workflowInterceptorModules,
      logger: {
        trace: silent,
        debug: silent,
        info: silent,
        warn: console.warn,
        error: console.error,
        log: silent,
      },
    });
    await writeFile(join(dist, file), withoutSourcesContent(code));
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
