# Build stage: all dependencies, then compile src to dist.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
# `npm run build` ends by bundling the workflows with this script (test/unit/dockerfile.test.ts replays
# this stage from only the files copied here).
COPY scripts/bundle-workflows.js ./scripts/
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled package only. Debian (glibc), not Alpine:
# the Temporal SDK's native core ships glibc builds.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
# Node sizes its heaps for the host's memory and keeps garbage it need not collect; these caps cut a
# worker's peak in a 20,000-dialogue run from 884 to 539 MB (BENCHMARKS.md).
ENV NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=8"
# glibc gives each thread that allocates (the Temporal core's Rust threads, libuv's pool) its own
# malloc arena and keeps freed memory in them; two arenas took the 20,000-dialogue peak from 410 to 372-394 MB.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# A named volume mounted at /data starts with this directory's owner, so the node user can write it.
RUN mkdir -p /data && chown node:node /data
USER node
ENTRYPOINT ["node", "bin/consistent-chat.js"]
CMD ["worker"]
