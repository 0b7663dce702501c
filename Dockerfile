# syntax=docker/dockerfile:1
#
# smtp-sidecar: a local SMTP relay for legacy apps.
#   docker build -t smtp-sidecar .
#   docker run -d --name smtp-sidecar -p 127.0.0.1:25:25 \
#     -v smtp-spool:/var/spool/smtp-sidecar \
#     -v "$PWD/config.json:/etc/smtp-sidecar/config.json:ro" smtp-sidecar
# See docker-compose.example.yml for the sidecar layout (the app shares the relay's network
# namespace and sends to localhost:25).

# ---- build stage: compile TypeScript with the dev dependencies ----------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime stage: production dependencies and the compiled JavaScript only --------------
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# cron, PHP's mail() and scripts run /usr/sbin/sendmail (older ones /usr/lib/sendmail): that is
# this program under the name sendmail (dist/main.js is executable), submitting to the relay.
RUN ln -s /app/dist/main.js /usr/sbin/sendmail && ln -s /app/dist/main.js /usr/lib/sendmail
# The default config (docker/config.docker.json); mount your own file over it to change it.
COPY docker/config.docker.json /etc/smtp-sidecar/config.json

# The spool must belong to the unprivileged user; an empty named volume mounted here takes
# this ownership from the image the first time it is used.
RUN mkdir -p /var/spool/smtp-sidecar && chown node:node /var/spool/smtp-sidecar
VOLUME /var/spool/smtp-sidecar

# Port 25 as the non-root `node` user: we rely on the net.ipv4.ip_unprivileged_port_start=0
# sysctl, which Docker (since 20.10) sets by default for every container with its own network
# namespace, and which docker-compose.example.yml also sets explicitly. Kubernetes: add it to
# the pod's securityContext.sysctls (a "safe" sysctl since 1.22); containerd 2 sets it too.
# We do NOT `setcap cap_net_bind_service=+ep` on the node binary: file capabilities put node in
# secure-execution mode (AT_SECURE), where it silently ignores NODE_EXTRA_CA_CERTS and
# NODE_OPTIONS, and exec fails outright when the runtime drops all capabilities
# (securityContext.capabilities.drop: [ALL]). Where neither works, set listen.port to 2525.
USER node
EXPOSE 25 8025

# No curl in the slim image: node itself asks /healthz (http.host 0.0.0.0 or 127.0.0.1, port 8025).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node","-e","fetch('http://127.0.0.1:8025/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec form, no shell in between: SIGTERM from `docker stop` reaches node, which stops cleanly
# (open DATA transactions may finish within listen.shutdownGraceSeconds).
ENTRYPOINT ["node","dist/main.js"]
CMD ["start","--config","/etc/smtp-sidecar/config.json"]
