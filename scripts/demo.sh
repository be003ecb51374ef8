#!/usr/bin/env bash
# The main job end to end on this machine: installs what is missing, builds, starts Postfix's
# smtp-sink as the upstream MTA and the gateway in front of it, sends one message with swaks and
# shows the message as the upstream received it, with the headers the gateway added.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
work=$(mktemp -d /tmp/smtp-gateway-demo.XXXXXX)
chmod 755 "$work"
mkdir "$work/mail"
chmod 777 "$work/mail"   # smtp-sink writes the message files as user nobody
SINK_PORT=${SINK_PORT:-10025}
GW_PORT=${GW_PORT:-2525}
cat > "$work/demo.toml" <<TOML
[server]
hostname = "mx.demo.test"
[[listener]]
address = "127.0.0.1:$GW_PORT"
[upstream]
servers = ["127.0.0.1:$SINK_PORT"]
[relay]
domains = ["demo.test"]
[metrics]
listen = ""
TOML
/usr/sbin/smtp-sink -u nobody -d "$work/mail/%M." "127.0.0.1:$SINK_PORT" 100 & sink=$!
./build/smtp-gateway --config "$work/demo.toml" 2> "$work/gateway.log" & gw=$!
trap 'kill $gw $sink 2>/dev/null; wait $gw $sink 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null && break; sleep 0.1; done
swaks --server "127.0.0.1:$GW_PORT" --from alice@sender.test --to bob@demo.test \
      --header "Subject: hello through smtp-gateway" --body "This message went through the gateway in-line."
sleep 0.3
echo
echo "=== what the upstream (smtp-sink) received:"
cat "$work"/mail/* | head -40
echo
echo "=== the gateway's log"
cat "$work/gateway.log"
