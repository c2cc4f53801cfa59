#!/usr/bin/env node
// Part of `npm run build`: bundles the compiled workflows once, so workers load dist/workflow-bundle.js
// instead of running webpack at every start (seconds of CPU and over 100 MB of memory they keep).
'use strict';
const { writeFile } = require('node:fs/promises');
const { join } = require('node:path');
const { bundleWorkflowCode } = require('@temporalio/worker');

const dist = join(__dirname, '..', 'dist');
const silent = () => undefined;

// Two bundles: the plain one, and one whose failure converter encodes failure messages (used by
// workers that encrypt payloads; the converter must live inside the sandbox).
const bundles = [
  ['workflow-bundle.js', undefined],
  ['workflow-bundle-encrypted.js', require.resolve(join(dist, 'shared', 'encoded-failures'))],
];
(async () => {
  // One after the other: webpack takes a few hundred MB each.
  for (const [file, failureConverterPath] of bundles) {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve(join(dist, 'workflows')),
      failureConverterPath,
      logger: {
        trace: silent,
        debug: silent,
        info: silent,
        warn: console.warn,
        error: console.error,
        log: silent,
      },
    });
    await writeFile(join(dist, file), code);
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
