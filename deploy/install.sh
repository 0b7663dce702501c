#!/bin/sh
# Sets smtp-sidecar up as a systemd service, after `npm install -g ./smtp-sidecar-<version>.tgz`.
# Run as root:  "$(npm root -g)/smtp-sidecar/deploy/install.sh"
#
# It creates (and never overwrites):
#   - the system user smtp-sidecar (systemd-sysusers, or useradd where there is none);
#   - /etc/smtp-sidecar/config.json from config.example.json with listen.port 25, mode 0640,
#     group smtp-sidecar (kept as it is when it exists);
#   - /usr/sbin/sendmail and /usr/lib/sendmail as links to the smtp-sidecar sendmail command,
#     unless something else (another MTA) is already there: then it says so and leaves it;
# and installs /etc/systemd/system/smtp-sidecar.service (deploy/smtp-sidecar.service with
# ExecStart pointing at the installed command), then reloads systemd. It does not start the
# service: edit the config first, then `systemctl enable --now smtp-sidecar`.
#
# ROOT=/some/dir installs into that directory tree instead, without the user and systemctl
# (for packaging and for the tests).
set -eu
ROOT="${ROOT:-}"
pkg="$(cd "$(dirname "$0")/.." && pwd -P)"
main="$pkg/dist/main.js"
bin="$(command -v smtp-sidecar || true)"
if [ -z "$bin" ]; then
  echo "install.sh: smtp-sidecar is not on PATH; install the package first: npm install -g ./smtp-sidecar-<version>.tgz" >&2
  exit 1
fi

if [ -z "$ROOT" ]; then
  if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers "$pkg/deploy/smtp-sidecar.sysusers"
  elif ! id smtp-sidecar >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/smtp-sidecar --shell /usr/sbin/nologin smtp-sidecar
  fi
fi

config="$ROOT/etc/smtp-sidecar/config.json"
install -d -m 0755 "$ROOT/etc/smtp-sidecar"
if [ -e "$config" ]; then
  echo "kept      $config (it exists)"
else
  # the example with port 25 and its $schema pointing at the installed schema (editor completion)
  node -e '
    const fs = require("node:fs");
    const [example, schema, out] = process.argv.slice(1);
    const config = JSON.parse(fs.readFileSync(example, "utf8"));
    config.$schema = schema;
    config.listen.port = 25;
    fs.writeFileSync(out, JSON.stringify(config, null, 2) + "\n", { mode: 0o640 });
  ' "$pkg/config.example.json" "$pkg/config.schema.json" "$config"
  [ -n "$ROOT" ] || chgrp smtp-sidecar "$config"
  echo "created   $config (from config.example.json, listen.port 25)"
fi

unit="$ROOT/etc/systemd/system/smtp-sidecar.service"
install -d -m 0755 "$ROOT/etc/systemd/system"
sed "s#^ExecStart=/usr/local/bin/smtp-sidecar #ExecStart=$bin #" "$pkg/deploy/smtp-sidecar.service" > "$unit"
chmod 0644 "$unit"
echo "installed $unit (ExecStart=$bin)"

for link in /usr/sbin/sendmail /usr/lib/sendmail; do
  target="$ROOT$link"
  if [ -e "$target" ] || [ -L "$target" ]; then
    if [ "$(readlink -f "$target")" = "$(readlink -f "$main")" ]; then
      echo "kept      $target (already smtp-sidecar)"
    else
      echo "install.sh: $link exists and is not smtp-sidecar (another MTA?); left alone. To use smtp-sidecar: ln -sf $main $link" >&2
    fi
    continue
  fi
  install -d -m 0755 "$(dirname "$target")"
  ln -s "$main" "$target"
  echo "linked    $target -> $main"
done

[ -n "$ROOT" ] || systemctl daemon-reload 2>/dev/null || true
echo "next: edit $ROOT/etc/smtp-sidecar/config.json (message.globalFrom, upstreams), check it with"
echo "      smtp-sidecar validate --config /etc/smtp-sidecar/config.json --connect, then: systemctl enable --now smtp-sidecar"
