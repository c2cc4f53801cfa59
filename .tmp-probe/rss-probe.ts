import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { writeFileSync } from 'node:fs';
import { startDevServer } from '/work/main/src/client/dev-server';
import { createLlmActivities } from '/work/main/src/activities';
async function main() {
  const mode = process.argv[2];
  const server = await startDevServer({ stateFile: '/tmp/rssprobe.json', logFile: '/tmp/rssprobe.log' });
  const connection = await NativeConnection.connect({ address: server.address });
  const rss = () => Math.round(process.memoryUsage().rss / 1e6);
  console.log('before', rss());
  let workflowBundle: any;
  if (mode === 'prebuilt') workflowBundle = { codePath: '/tmp/wf-bundle.js' };
  else {
    workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('/work/main/src/workflows') });
    if (mode === 'write') { writeFileSync('/tmp/wf-bundle.js', workflowBundle.code); }
  }
  console.log('after bundle', rss());
  const worker = await Worker.create({ connection, taskQueue: 'x', workflowBundle, activities: {} });
  console.log('after worker', rss());
  const p = worker.run();
  await new Promise((r) => setTimeout(r, 3000));
  if (global.gc) global.gc();
  console.log('running', rss(), process.memoryUsage());
  worker.shutdown(); await p; await connection.close(); await server.stop();
}
main();
