# syntax=docker/dockerfile:1
#
# smtp-sidecar: a local SMTP relay for legacy apps.
#   docker build -t smtp-sidecar .
#   docker run -d --name smtp-sidecar -p 127.0.0.1:25:25 \
#     -v smtp-spool:/var/spool/smtp-sidecar \
#     -v "$PWD/config.json:/etc/smtp-sidecar/config.json:ro" smtp-sidecar
# See docker-compose.example.yml for the sidecar layout (the app shares the relay's network
# namespace and sends to localhost:25).

# ---- build stage: compile and pack, exactly as for a production install -------------------
# `npm pack` runs prepack (npm run build) and writes smtp-sidecar-<version>.tgz with dist/ and
# every runtime dependency bundled (package.json bundleDependencies, versions from the lock).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md LICENSE config.example.json config.schema.json ./
COPY docs/CONFIG.md ./docs/CONFIG.md
COPY deploy ./deploy
COPY src ./src
RUN npm pack --pack-destination /tmp && mv /tmp/smtp-sidecar-*.tgz /tmp/smtp-sidecar.tgz

# ---- runtime stage: the packed tarball installed globally, as on a server -----------------
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
COPY --from=build /tmp/smtp-sidecar.tgz /tmp/smtp-sidecar.tgz
# --offline: the tarball carries its dependencies; nothing is fetched or resolved again.
RUN npm install -g --offline --no-audit --no-fund /tmp/smtp-sidecar.tgz && rm /tmp/smtp-sidecar.tgz && npm cache clean --force
# The default config (docker/config.docker.json); mount your own file over it to change it.
COPY docker/config.docker.json /etc/smtp-sidecar/config.json
# cron, PHP's mail() and scripts run /usr/sbin/sendmail (older ones /usr/lib/sendmail): that is
# this program under the name sendmail, submitting to the relay in this container.
RUN ln -s /usr/local/lib/node_modules/smtp-sidecar/dist/main.js /usr/sbin/sendmail \
 && ln -s /usr/local/lib/node_modules/smtp-sidecar/dist/main.js /usr/lib/sendmail

# The spool must belong to the unprivileged user; an empty named volume mounted here takes
# this ownership from the image the first time it is used.
RUN mkdir -p /var/spool/smtp-sidecar && chown node:node /var/spool/smtp-sidecar
VOLUME /var/spool/smtp-sidecar
# Relative paths in a mounted config ("./spool", "./outbox") land in the volume.
WORKDIR /var/spool/smtp-sidecar

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

# `smtp-sidecar health` asks /healthz where the config says the HTTP server listens (0.0.0.0 is
# asked on 127.0.0.1), or checks the SMTP greeting when http.enabled is false. No curl needed.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
  CMD ["smtp-sidecar","health","--config","/etc/smtp-sidecar/config.json"]

# Exec form, no shell in between: SIGTERM from `docker stop` reaches node, which stops cleanly
# (open DATA transactions may finish within listen.shutdownGraceSeconds).
ENTRYPOINT ["smtp-sidecar"]
CMD ["start","--config","/etc/smtp-sidecar/config.json"]
