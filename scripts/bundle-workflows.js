#!/usr/bin/env node
// Part of `npm run build`: bundles the compiled workflows once, so workers load dist/workflow-bundle.js
// instead of running webpack at every start (seconds of CPU and over 100 MB of memory they keep).
'use strict';
const { writeFile } = require('node:fs/promises');
const { join } = require('node:path');
const { bundleWorkflowCode } = require('@temporalio/worker');

const dist = join(__dirname, '..', 'dist');
const silent = () => undefined;

bundleWorkflowCode({
  workflowsPath: require.resolve(join(dist, 'workflows')),
  logger: {
    trace: silent,
    debug: silent,
    info: silent,
    warn: console.warn,
    error: console.error,
    log: silent,
  },
})
  .then(({ code }) => writeFile(join(dist, 'workflow-bundle.js'), code))
  .catch((error) => {
    console.error(error);
    process.exit(1);
  });
