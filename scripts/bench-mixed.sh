#!/usr/bin/env bash
# The mixed IMAP workload (issue 13; `loadgen mixed`, see runtime-smol/examples/loadgen/mixed.rs)
# against tern and Dovecot (Maildir), both on loopback, in one run: 10 and 50 clients, profiles
# "steady" (each client logs in once) and "churn" (LOGIN … LOGOUT every loop), each cell run
# against tern and then against Dovecot. Measures commands/s, commands per server CPU-second
# (utime+stime of the server's process tree from /proc, reaped children included, before and
# after each cell), p50/p99 per command type and protocol errors, and prints Markdown tables
# with tern ÷ Dovecot.
#
# Usage: scripts/bench-mixed.sh [--seconds T] [--cells "10-steady 50-steady 10-churn 50-churn"]
#          [--keep]
#   --seconds T   length of each cell (default 30)
#   --cells LIST  which cells to run, CLIENTS-PROFILE each (default: all four)
#   --keep        keep the temporary folder (servers' data, logs, results)
# Both servers check the same argon2id secret (made by `tern hash-password`, given to Dovecot
# as {ARGON2ID}) with a cache of successful logins on (tern's default cache; Dovecot's
# auth_cache_size = 10M); the login defences that would slow a login storm down are off on
# both (tern: failure-delay, ip- and account-failure limits; Dovecot has none for successes),
# and both allow 200 connections per account (Dovecot: mail_max_userip_connections).
# Needs: root (Dovecot's peer script creates a system user), dovecot-imapd, python3 (free
# ports). Writes the tables to target/bench-mixed.md and the raw lines to
# target/bench-mixed.results. Timings are figures, not assertions; protocol errors are
# printed as they happen (the first three of each kind), with the response line.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=30
cells="10-steady 50-steady 10-churn 50-churn"
keep=no
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --cells) cells=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    *) sed -n '2,24p' "$0" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] && [ "$seconds" -le 3600 ] ||
  { echo "--seconds: 1 to 3600" >&2; exit 2; }
for cell in $cells; do
  [[ $cell =~ ^[0-9]+-(steady|churn)$ ]] || { echo "--cells: CLIENTS-steady or CLIENTS-churn" >&2; exit 2; }
done

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building tern and the load generator (release)"
cargo build --release -p tern-smol --bin tern --example loadgen >&2
target=${CARGO_TARGET_DIR:-$root/target}
tern_bin=$target/release/tern
loadgen=$target/release/examples/loadgen
hz=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/tern-mixed.XXXXXX)
# Dovecot's unprivileged processes must reach the passwd-file and mail below it.
chmod 755 "$work"
tern_pid=
cleanup() {
  status=$?
  if [ -n "$tern_pid" ] && kill -0 "$tern_pid" 2>/dev/null; then
    kill -TERM "$tern_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$tern_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tern_pid" 2>/dev/null || true
  fi
  if [ -f "$work/dovecot/dovecot.conf" ]; then
    doveadm -c "$work/dovecot/dovecot.conf" stop 2>/dev/null || true
  fi
  if [ "$keep" = yes ]; then
    log "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

secret=$(printf 'wonderland\n' | "$tern_bin" hash-password)

# Dovecot, with the same argon2id secret, an auth cache and room for 50 (and more) sessions.
d_imap=$(free_port) d_pop3=$(free_port)
scripts/dovecot-peer.sh --secret "{ARGON2ID}$secret" \
  --set 'auth_cache_size = 10M' --set 'mail_max_userip_connections = 200' \
  "$work/dovecot" "$d_imap" "$d_pop3" >&2
wait_port "$d_imap"
d_pid=$(cat "$work/dovecot/run/master.pid")

mkdir -p "$work/tern"
cat > "$work/tern/tern.toml" <<CONF
[storage]
path = "data"

[server.listener."imap"]
bind = ["127.0.0.1:0"]
protocol = "imap"

[auth]
failure-delay = 0.0
ip-failure-limit = 0
account-failure-limit = 0
cache-ttl = 3600
cache-size = 1000

[limits]
max-connections = 0
max-connections-per-ip = 0
imap-max-connections-per-account = 200

[[directory.users]]
name = "alice"
secret = "$secret"
CONF
"$tern_bin" --config "$work/tern/tern.toml" > "$work/tern/stdout" 2> "$work/tern/stderr" &
tern_pid=$!
for _ in $(seq 1 300); do
  grep -qx "tern is ready" "$work/tern/stdout" 2>/dev/null && break
  kill -0 "$tern_pid" 2>/dev/null || { cat "$work/tern/stderr" >&2; exit 1; }
  sleep 0.1
done
grep -qx "tern is ready" "$work/tern/stdout" || { echo "tern did not start" >&2; exit 1; }
t_imap=$(awk '$1 == "listening" && $2 == "imap" { sub(/.*:/, "", $3); print $3 }' "$work/tern/stdout")
log "tern: imap $t_imap (pid $tern_pid); dovecot: imap $d_imap (master pid $d_pid)"

results=$work/results.txt
: > "$results"
meta() { echo "META $1 $2" >> "$results"; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
meta machine "$(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(df -T "$work" | awk 'NR == 2 { print $2 }') on $(uname -r)"
meta date "$(date -u +%Y-%m-%d)"
meta dovecot "Dovecot $(dovecot --version | cut -d' ' -f1) (Maildir, default settings but the auth cache and connection limit)"
meta seconds "$seconds"
meta cells "$cells"

started=$(date +%s)
for cell in $cells; do
  clients=${cell%-*} profile=${cell#*-}
  for s in tern dovecot; do
    if [ "$s" = tern ]; then port=$t_imap pid=$tern_pid; else port=$d_imap pid=$d_pid; fi
    log "$cell against $s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    before=$("$loadgen" cpu --pid "$pid" --hz "$hz")
    "$loadgen" mixed --port "$port" --user alice --pass wonderland --clients "$clients" \
      --profile "$profile" --seconds "$seconds" --new-keywords 5 --label "$s" --key "$cell" |
      tee -a "$results"
    after=$("$loadgen" cpu --pid "$pid" --hz "$hz")
    echo "RESULT $s ${cell}_cpu_s $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')" |
      tee -a "$results"
  done
done
log "all done after $(($(date +%s) - started)) s"

"$loadgen" mixed-report "$results" | tee "$target/bench-mixed.md"
cp "$results" "$target/bench-mixed.results"
