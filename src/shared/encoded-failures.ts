/**
 * The failure converter of an encrypting client or worker, loaded by path (workers also bundle it into
 * the workflow sandbox): failure messages and stack traces travel in an encoded payload, which the codec
 * seals, since an endpoint's error text can quote a prompt.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
