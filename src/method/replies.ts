/**
 * What a reply must be and how it is read, by concern: its schemas (`reply-schemas.ts`), the JSON
 * taken out of it (`reply-json.ts`), and the checks for what real models get wrong (`reply-checks.ts`).
 */
export * from './reply-schemas';
export * from './reply-json';
export * from './reply-checks';
