# eventual-cache node image: `docker compose up --build` (see docker-compose.yml), or
#   docker run -e EVENTUAL_CACHE_NODE_ID=A -e EVENTUAL_CACHE_NODES=A:3001=redis://redis:6379/1 -p 3001:3001 eventual-cache
# Settings come from environment variables: docs/configuration.md.

# ---- build: compile the TypeScript sources to dist/ ----
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled code only ----
FROM node:20-slim
ENV NODE_ENV=production \
    EVENTUAL_CACHE_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
USER node
EXPOSE 3001 3002 3003
# Exec form: node is PID 1 and receives SIGTERM from `docker stop`, which the CLI turns
# into a graceful shutdown (exit 0). Without src/, bin/ runs the compiled dist/.
ENTRYPOINT ["node", "bin/eventual-cache.js"]
CMD ["node"]
