# syntax=docker/dockerfile:1
# Build stage: full install (dev dependencies included) and TypeScript compile.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY mock ./mock
COPY bench ./bench
COPY demo ./demo
RUN npm ci --no-audit --no-fund

# Runtime stage: production dependencies and the compiled output only, run as a non-root user.
FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
ENV GATEWAY_CONFIG=/app/config/gateway.yaml
# Reachable from outside the container (the example config listens on 127.0.0.1 otherwise).
ENV GATEWAY_HOST=0.0.0.0
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--max-semi-space-size=32", "dist/src/main.js"]
