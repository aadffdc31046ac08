#!/usr/bin/env bash
# Server-level benchmark of tern against Dovecot (Maildir), both on loopback, in the same run:
# the store over IMAP (APPEND with 1 and 8 clients, SELECT, UID FETCH FLAGS, FETCH ENVELOPE and
# PREVIEW (RFC 8970; the first run is where Dovecot computes and caches its previews),
# SEARCH TEXT/FROM, UID SORT by DATE, SUBJECT and ARRIVAL of UNSEEN and UID THREAD REFERENCES
# (RFC 5256), FETCH CHANGEDSINCE and SELECT QRESYNC (RFC 7162; each QRESYNC run expunges 100
# messages), STORE, EXPUNGE, disk per message) and POP3 RETR (1 and C clients, plain and
# implicit TLS). Prints Markdown tables with both figures and tern ÷ Dovecot.
#
# Usage: scripts/bench-vs-dovecot.sh [--messages N] [--single N] [--reps R]
#          [--pop3-messages M] [--pop3-size OCTETS] [--pop3-clients C] [--keep] [--skip-pop3]
#   --messages N       mailbox size for the store part (default 100000)
#   --single N         the mailbox is built in three timed phases: N messages APPENDed by one
#                      client, the next N by 8 clients (one APPEND per message each), the
#                      rest by one client with MULTIAPPENDs of 100, as an import does
#                      (default: a tenth of --messages, at most 10000). Dovecot slows down
#                      sharply when 8 clients append to one Maildir as it grows (each session
#                      rescans new/), which is why 8 clients do not build all of it.
#   --reps R           repetitions of each read operation, median reported (default 5, and
#                      three times that for SELECT, FETCH FLAGS, FETCH ENVELOPE, PREVIEW and
#                      SORT;
#                      each operation stops repeating after 90 s)
#   --pop3-messages M  messages per POP3 account (default 2000) of about --pop3-size octets
#                      (default 50000); --pop3-clients accounts and clients (default 16)
#   --keep             keep the temporary folder (servers' data, logs, results)
# Needs: root (Dovecot's peer script creates a system user), dovecot-imapd, dovecot-pop3d,
# openssl, python3 (to find free ports). Writes the tables to target/bench-vs-dovecot.md too.
# Timings are figures, not assertions; on a shared machine compare ratios, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

messages=100000
single=
reps=5
pop3_messages=2000
pop3_size=50000
pop3_clients=16
keep=no
skip_pop3=no
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) messages=$2; shift 2 ;;
    --single) single=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --pop3-messages) pop3_messages=$2; shift 2 ;;
    --pop3-size) pop3_size=$2; shift 2 ;;
    --pop3-clients) pop3_clients=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --skip-pop3) skip_pop3=yes; shift ;;
    *) sed -n '2,27p' "$0" >&2; exit 2 ;;
  esac
done
if [ -z "$single" ]; then
  single=$((messages / 10))
  [ "$single" -le 10000 ] || single=10000
  [ "$single" -ge 1 ] || single=1
fi
[ "$pop3_clients" -le 99 ] || { echo "--pop3-clients: at most 99" >&2; exit 2; }
text_word=tk0042
from_addr=carol@music.test

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building tern and the load generator (release)"
cargo build --release -p tern-smol --bin tern --example loadgen >&2
target=${CARGO_TARGET_DIR:-$root/target}
tern_bin=$target/release/tern
loadgen=$target/release/examples/loadgen

work=$(mktemp -d /tmp/tern-bench.XXXXXX)
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

users=$(for ((i = 1; i <= pop3_clients; i++)); do printf 'user%02d ' "$i"; done)
user_list=$(echo $users | tr ' ' ',')

# Dovecot, with TLS and one account per POP3 client.
d_imap=$(free_port) d_pop3=$(free_port) d_imaps=$(free_port) d_pop3s=$(free_port)
scripts/dovecot-peer.sh --tls --users "$pop3_clients" "$work/dovecot" \
  "$d_imap" "$d_pop3" "$d_imaps" "$d_pop3s" >&2
wait_port "$d_imap"
wait_port "$d_pop3s"

# tern, on ephemeral ports, with the same certificate and the same accounts.
mkdir -p "$work/tern"
{
  cat <<CONF
[storage]
path = "data"

[server.tls]
certificate = "$work/dovecot/tls/cert.pem"
private-key = "$work/dovecot/tls/key.pem"

[server.listener."imap"]
bind = ["127.0.0.1:0"]
protocol = "imap"

[server.listener."pop3"]
bind = ["127.0.0.1:0"]
protocol = "pop3"

[server.listener."pop3s"]
bind = ["127.0.0.1:0"]
protocol = "pop3"
tls.implicit = true

[auth]
failure-delay = 0.0
ip-failure-limit = 0
account-failure-limit = 0

[limits]
max-connections = 0
max-connections-per-ip = 0
imap-max-connections-per-account = 0

[[directory.users]]
name = "alice"
secret = "{plain}wonderland"
CONF
  for u in $users; do
    printf '\n[[directory.users]]\nname = "%s"\nsecret = "{plain}wonderland"\n' "$u"
  done
} > "$work/tern/tern.toml"
"$tern_bin" --config "$work/tern/tern.toml" > "$work/tern/stdout" 2> "$work/tern/stderr" &
tern_pid=$!
for _ in $(seq 1 300); do
  grep -qx "tern is ready" "$work/tern/stdout" 2>/dev/null && break
  kill -0 "$tern_pid" 2>/dev/null || { cat "$work/tern/stderr" >&2; exit 1; }
  sleep 0.1
done
grep -qx "tern is ready" "$work/tern/stdout" || { echo "tern did not start" >&2; exit 1; }
port_of() { awk -v n="$1" '$1 == "listening" && $2 == n { sub(/.*:/, "", $3); print $3 }' "$work/tern/stdout"; }
t_imap=$(port_of imap) t_pop3=$(port_of pop3) t_pop3s=$(port_of pop3s)
log "tern: imap $t_imap pop3 $t_pop3 pop3s $t_pop3s; dovecot: imap $d_imap pop3 $d_pop3 pop3s $d_pop3s"

results=$work/results.txt
: > "$results"
meta() { echo "META $1 $2" >> "$results"; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
meta machine "$(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(df -T "$work" | awk 'NR == 2 { print $2 }') on $(uname -r)"
meta date "$(date -u +%Y-%m-%d)"
meta dovecot "Dovecot $(dovecot --version | cut -d' ' -f1) (Maildir, default settings)"
meta text "$text_word"
meta from "$from_addr"
meta pop3_messages "$pop3_messages"
meta pop3_size "$pop3_size"
meta pop3_clients "$pop3_clients"
meta import_batch 100
store_count=$((messages < 10000 ? messages : 10000))
meta store_count "$store_count"

# Each measurement runs against tern, then Dovecot, so both see the same machine load.
both() { # both KEY-less loadgen args…; "PORT" is replaced per server
  local s port
  for s in tern dovecot; do
    if [ "$s" = tern ]; then port=$1; else port=$2; fi
    "$loadgen" "${@:3}" --port "$port" --label "$s" | tee -a "$results"
  done
}

log "generating $messages messages and $pop3_messages POP3 messages"
"$loadgen" gen --out "$work/store.spool" --messages "$messages" --kind realistic
[ "$skip_pop3" = yes ] ||
  "$loadgen" gen --out "$work/pop3.spool" --messages "$pop3_messages" --kind pop3 --size "$pop3_size" --seed 7

started=$(date +%s)
eight=$single
[ $((single + eight)) -le "$messages" ] || eight=$((messages - single))
log "APPEND: $single messages with 1 client, $eight with 8, $((messages - single - eight)) by MULTIAPPEND"
both "$t_imap" "$d_imap" append --users alice --spool "$work/store.spool" --from 0 --to "$single" --clients 1 --key append1
[ "$eight" -le 0 ] ||
  both "$t_imap" "$d_imap" append --users alice --spool "$work/store.spool" --from "$single" --to $((single + eight)) --clients 8 --key append8
[ $((single + eight)) -ge "$messages" ] ||
  both "$t_imap" "$d_imap" append --users alice --spool "$work/store.spool" --from $((single + eight)) --clients 1 --batch 100 --key import
log "APPEND done after $(($(date +%s) - started)) s"

for op in select fetch-flags envelope preview search-from search-text thread-references; do
  arg=
  [ "$op" = search-text ] && arg=$text_word
  [ "$op" = search-from ] && arg=$from_addr
  # Operations of a few milliseconds run three times as often: a median of four samples of
  # them mostly measures the machine's noise.
  n=$reps
  case "$op" in select | fetch-flags | envelope | preview) n=$((reps * 3)) ;; esac
  log "$op"
  both "$t_imap" "$d_imap" imap --user alice --op "$op" ${arg:+--arg "$arg"} --reps "$n" --max-seconds 90
done

# SORT (RFC 5256): by sent date and by base subject over the whole mailbox, by arrival over
# the unseen messages; the first run is where a server reads (or builds) its sort keys.
for op in sort-date sort-subject sort-arrival-search; do
  log "$op"
  both "$t_imap" "$d_imap" imap --user alice --op "$op" --reps "$((reps * 3))" --max-seconds 90
done

# Disk: tern's whole storage folder; Dovecot's Maildir with its index, cache and uidlist.
echo "RESULT tern disk_bytes $(du -s -B1 "$work/tern/data" | cut -f1)" | tee -a "$results"
echo "RESULT dovecot disk_bytes $(du -s -B1 "$work/dovecot/mail/alice" | cut -f1)" | tee -a "$results"

# RFC 7162 resynchronisation: 10 flag changes, then UID FETCH 1:* (FLAGS) (CHANGEDSINCE m);
# 100 expunges and 100 flag changes by another session, then SELECT (QRESYNC (v m)).
for op in changedsince qresync; do
  log "$op"
  both "$t_imap" "$d_imap" imap --user alice --op "$op" --reps "$reps" --max-seconds 90
done

log "STORE and EXPUNGE"
both "$t_imap" "$d_imap" imap --user alice --op store --count "$store_count"
both "$t_imap" "$d_imap" imap --user alice --op expunge
log "store part done after $(($(date +%s) - started)) s"

if [ "$skip_pop3" = no ]; then
  log "POP3: filling $pop3_clients accounts with $pop3_messages messages each"
  both "$t_imap" "$d_imap" append --users "$user_list" --spool "$work/pop3.spool" --clients 1 --batch 20 --key pop3fill
  for mode in plain tls; do
    if [ "$mode" = tls ]; then tp=$t_pop3s dp=$d_pop3s tls=--tls; else tp=$t_pop3 dp=$d_pop3 tls=; fi
    for n in 1 "$pop3_clients"; do
      if [ "$n" = 1 ]; then list=user01 k=1; else list=$user_list k=n; fi
      # New mail: \Seen cleared over IMAP before each round, so every RETR marks a message.
      log "POP3 RETR $mode, $n client(s), new mail"
      for s in tern dovecot; do
        if [ "$s" = tern ]; then p=$tp ip=$t_imap; else p=$dp ip=$d_imap; fi
        "$loadgen" pop3 --port "$p" --reset-seen "$ip" --users "$list" $tls --key "retr_${mode}_${k}_new" \
          --rounds 3 --label "$s" | tee -a "$results"
      done
      log "POP3 RETR $mode, $n client(s), again"
      both "$tp" "$dp" pop3 --users "$list" $tls --key "retr_${mode}_${k}_again" --rounds 3
    done
  done
fi
log "all done after $(($(date +%s) - started)) s"

"$loadgen" report "$results" | tee "$target/bench-vs-dovecot.md"
cp "$results" "$target/bench-vs-dovecot.results"
