#!/usr/bin/env bash
# Starts Debian's Dovecot on loopback as the peer that tern is compared with (conformance
# `run --host`, benchmarks).
# Usage: scripts/dovecot-peer.sh [--tls] [--users N] DIR [IMAP_PORT] [POP3_PORT] [IMAPS_PORT] [POP3S_PORT]
# Writes DIR/dovecot.conf, a passwd-file with user "alice" / password "wonderland", a Maildir
# under DIR/mail, and starts dovecot in the foreground-less mode; stop it with
#   doveadm -c DIR/dovecot.conf stop
# --tls       also enables TLS: a self-signed ECDSA P-256 certificate for localhost/127.0.0.1
#             is generated once in DIR/tls/{cert,key}.pem (clients must be told to trust it),
#             STARTTLS/STLS are offered and implicit-TLS listeners open on IMAPS_PORT (default
#             11993) and POP3S_PORT (default 11995). Without it: no TLS, as before.
# --users N   also creates user01 … userNN, password "wonderland", each with its own Maildir
#             (benchmarks that need one POP3 maildrop per client).
# --secret S  the passwd-file secret of every account instead of {PLAIN}wonderland, scheme
#             prefix included (e.g. {ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$…).
# --lmtp PORT also serves LMTP (RFC 2033) on 127.0.0.1:PORT, recipients found by the local part
#             of their address (alice@example.org is alice); IMAP and POP3 are unchanged.
# --set LINE  appends a setting line to dovecot.conf (repeatable), e.g.
#             --set 'auth_cache_size = 10M' --set 'mail_max_userip_connections = 200'.
# Needs: apt-get install dovecot-imapd dovecot-pop3d (the script says so if they are missing).
set -euo pipefail
usage="usage: $0 [--tls] [--users N] [--secret S] [--lmtp PORT] [--set LINE]... DIR [IMAP_PORT] [POP3_PORT] [IMAPS_PORT] [POP3S_PORT]"
tls=no
users=0
secret='{PLAIN}wonderland'
extra=()
lmtp_port=
while [ $# -gt 0 ]; do
  case "$1" in
    --tls) tls=yes; shift ;;
    --users)
      users=${2:?$usage}
      [[ $users =~ ^[0-9]+$ ]] && [ "$users" -le 99 ] || { echo "--users: 0 to 99" >&2; exit 2; }
      shift 2 ;;
    --secret) secret=${2:?$usage}; shift 2 ;;
    --set) extra+=("${2:?$usage}"); shift 2 ;;
    --lmtp)
      lmtp_port=${2:?$usage}
      [[ $lmtp_port =~ ^[0-9]+$ ]] || { echo "--lmtp: a port number" >&2; exit 2; }
      shift 2 ;;
    --) shift; break ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
dir=$(realpath -m "${1:?$usage}")
imap_port=${2:-11143}
pop3_port=${3:-11110}
imaps_port=${4:-11993}
pop3s_port=${5:-11995}
if ! command -v dovecot >/dev/null; then
  echo "dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d" >&2
  exit 2
fi
mkdir -p "$dir/mail" "$dir/run"
# Dovecot refuses to run login and mail processes as root: mail belongs to a system user.
vmail=tern-vmail
if ! id "$vmail" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$vmail"
fi
uid=$(id -u "$vmail")
gid=$(id -g "$vmail")
chown -R "$vmail:$vmail" "$dir/mail"
echo "alice:$secret:$uid:$gid::$dir/mail/alice::" > "$dir/passwd"
for ((i = 1; i <= users; i++)); do
  name=$(printf 'user%02d' "$i")
  echo "$name:$secret:$uid:$gid::$dir/mail/$name::" >> "$dir/passwd"
done
ssl_settings="ssl = no"
if [ "$tls" = yes ]; then
  mkdir -p "$dir/tls"
  if [ ! -s "$dir/tls/cert.pem" ] || [ ! -s "$dir/tls/key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" 2>/dev/null
    chmod 600 "$dir/tls/key.pem"
  fi
  ssl_settings="ssl = yes
ssl_cert = <$dir/tls/cert.pem
ssl_key = <$dir/tls/key.pem"
else
  # Port 0 disables a listener.
  imaps_port=0
  pop3s_port=0
fi
protocols="imap pop3"
lmtp_settings=
if [ -n "$lmtp_port" ]; then
  protocols="imap pop3 lmtp"
  # The passwd-file names users without a domain: look recipients up by their local part.
  lmtp_settings="service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
protocol lmtp {
  auth_username_format = %Ln
}"
fi
cat > "$dir/dovecot.conf" <<CONF
protocols = $protocols
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/run
log_path = $dir/dovecot.log
$ssl_settings
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = passwd-file
  args = $dir/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $pop3s_port
  }
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}
$lmtp_settings
CONF
for line in "${extra[@]}"; do
  echo "$line" >> "$dir/dovecot.conf"
done
dovecot -c "$dir/dovecot.conf"
if [ "$tls" = yes ]; then
  echo "dovecot listening: imap 127.0.0.1:$imap_port pop3 127.0.0.1:$pop3_port imaps 127.0.0.1:$imaps_port pop3s 127.0.0.1:$pop3s_port (alice/wonderland; certificate $dir/tls/cert.pem)"
else
  echo "dovecot listening: imap 127.0.0.1:$imap_port pop3 127.0.0.1:$pop3_port (alice/wonderland)"
fi
if [ -n "$lmtp_port" ]; then
  echo "dovecot listening: lmtp 127.0.0.1:$lmtp_port"
fi
