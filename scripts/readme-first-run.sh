#!/usr/bin/env bash
# Runs README's first set-up command literally, as a newcomer would in a fresh clone, and checks
# that it starts the server: `cargo run --release` must build, write a starter configuration,
# print the demo password, listen, accept that password over IMAP, and stop on SIGTERM.
# (README's second command, `cargo test --workspace`, is what .ci/run runs next.)
#
# The server runs in a scratch folder under target/ (cargo finds the workspace from there), so
# the starter tern.toml and data/ it writes stay out of the work tree. It listens on the
# starter configuration's fixed loopback ports (1143, 1993, 1110, 1995), which must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# The commands README promises, exactly; a change to README must change this check too.
setup=$(awk '/^## Set-up/{s=1} s&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md)
first=$(printf '%s\n' "$setup" | sed -n 1p | sed 's/ *#.*//')
second=$(printf '%s\n' "$setup" | sed -n 2p | sed 's/ *#.*//')
if [ "$first" != "cargo run --release" ] || [ "$second" != "cargo test --workspace" ]; then
  echo "README's set-up block no longer reads 'cargo run --release' / 'cargo test --workspace':" >&2
  printf '%s\n' "$setup" >&2
  exit 1
fi

scratch="$root/target/readme-first-run"
rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch"
out="$scratch/stdout.log"
# A process group of its own, so cargo and the server it started stop together.
setsid bash -c "exec $first" >"$out" 2>"$scratch/stderr.log" </dev/null &
group=$!
stop() { kill -TERM -- "-$group" 2>/dev/null || true; }
trap stop EXIT

# Bounded: a release build from nothing takes minutes on two cores; 40 is plenty.
deadline=$((SECONDS + 2400))
until grep -q '^tern is ready' "$out" 2>/dev/null; do
  if ! kill -0 "$group" 2>/dev/null; then
    echo "'$first' exited before the server was ready:" >&2
    tail -n 20 "$scratch/stderr.log" "$out" >&2
    exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "'$first' did not report 'tern is ready' in time" >&2
    exit 1
  fi
  sleep 2
done

password=$(sed -n 's/^Password: //p' "$out")
[ -n "$password" ] || { echo "no demo password was printed" >&2; cat "$out" >&2; exit 1; }
dupes=$(grep -c '^listening ' "$out" || true)
if grep -q 'listening' "$scratch/stderr.log"; then
  echo "the listening lines are printed twice (standard output and the log)" >&2
  exit 1
fi
[ "$dupes" -eq 4 ] || { echo "expected 4 listening lines, got $dupes" >&2; exit 1; }

TERN_PASSWORD="$password" python3 - <<'PY'
import imaplib, os
c = imaplib.IMAP4("127.0.0.1", 1143)
typ, _ = c.login("demo", os.environ["TERN_PASSWORD"])
assert typ == "OK", typ
typ, data = c.select("INBOX")
assert typ == "OK", (typ, data)
c.logout()
PY

stop
trap - EXIT
for _ in $(seq 1 30); do
  kill -0 "$group" 2>/dev/null || break
  sleep 1
done
if kill -0 "$group" 2>/dev/null; then
  kill -KILL -- "-$group" 2>/dev/null || true
  echo "the server did not stop within 30 s of SIGTERM" >&2
  exit 1
fi
echo "README's first command works: built, started, logged in as demo, stopped on SIGTERM"
