/**
 * Worker Deployment Versioning for workers on a cluster: each worker announces the version of the workflow
 * code it runs (a build id derived from the workflow bundle) under one deployment name, so that during an
 * upgrade old and new workers can serve the same task queue side by side. The run workflow follows the
 * current version (AUTO_UPGRADE, kept replay-safe by the committed replay histories); an intent workflow
 * stays on the version it started on and moves to the current one at its next continue-as-new.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { NativeConnection, WorkerDeploymentOptions, WorkflowBundleOption } from '@temporalio/worker';

/** @default 'consistent-chat' (flag `--deployment-name`, env CONSISTENT_CHAT_DEPLOYMENT_NAME) */
export const DEFAULT_DEPLOYMENT_NAME = 'consistent-chat';
/** Hex digits of the bundle's SHA-256 kept in a build id: short enough to type, far from colliding. */
const BUILD_ID_HEX = 16;
/** Letters, digits and `-_` only: the server joins name and build id with separators of its own. */
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,255}$/;

/** A build id naming the workflow code itself: same bundle, same id, on every machine. */
export async function workflowBuildId(bundle: WorkflowBundleOption): Promise<string> {
  const code = 'code' in bundle ? bundle.code : await readFile(bundle.codePath, 'utf8');
  return `wf-${createHash('sha256').update(code).digest('hex').slice(0, BUILD_ID_HEX)}`;
}

/** Checks a deployment name or build id given by a user; returns the message naming what is wrong. */
export function checkVersionPart(value: string): string | undefined {
  return NAME_PATTERN.test(value)
    ? undefined
    : `must be 1-255 letters, digits, '-' or '_', got ${JSON.stringify(value)}`;
}

/** Worker options that announce `version`; workflows default to following the current version. */
export function deploymentOptions(version: WorkerDeploymentVersion): WorkerDeploymentOptions {
  return { version, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' };
}

export interface MakeCurrentOptions {
  connection: NativeConnection;
  namespace: string;
  version: WorkerDeploymentVersion;
  /** How long to wait for the server to list the version after the worker starts polling. @default 60 s */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Makes `version` current if its deployment has no current version yet, so that the first deployment
 * serves runs without a manual step. A deployment that already has a current version is left alone:
 * moving to a new version is the operator's decision (`temporal worker deployment set-current-version`).
 * Returns what happened, for the worker's start-up line.
 */
export async function makeCurrentIfNone(
  options: MakeCurrentOptions,
): Promise<'made-current' | 'already-current' | 'not-current'> {
  const { connection, namespace, version } = options;
  const service = connection.workflowService;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  // The server registers a version when its first worker polls: wait for it to be listed.
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const { workerDeploymentInfo: info } = await service.describeWorkerDeployment({
        namespace,
        deploymentName: version.deploymentName,
      });
      const current = info?.routingConfig?.currentDeploymentVersion?.buildId;
      if (current) return current === version.buildId ? 'already-current' : 'not-current';
      const listed = info?.versionSummaries?.some((v) => v.deploymentVersion?.buildId === version.buildId);
      if (listed) {
        await service.setWorkerDeploymentCurrentVersion({
          namespace,
          deploymentName: version.deploymentName,
          buildId: version.buildId,
          identity: `consistent-chat worker ${version.buildId}`,
        });
        return 'made-current';
      }
    } catch (error) {
      // NOT_FOUND until the first poll registers the deployment.
      if ((error as { code?: number }).code !== 5) throw error;
    }
    if (Date.now() > deadline)
      throw new Error(`version ${version.buildId} of ${version.deploymentName} was not registered in time`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
