#!/usr/bin/env bash
# Starts Debian's Dovecot on loopback as the peer that tern is compared with (conformance
# `run --host`, benchmarks). Usage: scripts/dovecot-peer.sh DIR [IMAP_PORT] [POP3_PORT]
# Writes DIR/dovecot.conf, a passwd-file with user "alice" / password "wonderland", a Maildir
# under DIR/mail, and starts dovecot in the foreground-less mode; stop it with
#   doveadm -c DIR/dovecot.conf stop
# Needs: apt-get install dovecot-imapd dovecot-pop3d (the script says so if they are missing).
set -euo pipefail
dir=$(realpath -m "${1:?usage: $0 DIR [IMAP_PORT] [POP3_PORT]}")
imap_port=${2:-11143}
pop3_port=${3:-11110}
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
echo "alice:{PLAIN}wonderland:$uid:$gid::$dir/mail/alice::" > "$dir/passwd"
cat > "$dir/dovecot.conf" <<CONF
protocols = imap pop3
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/run
log_path = $dir/dovecot.log
ssl = no
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
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3_port
  }
  inet_listener pop3s {
    port = 0
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
CONF
dovecot -c "$dir/dovecot.conf"
echo "dovecot listening: imap 127.0.0.1:$imap_port pop3 127.0.0.1:$pop3_port (alice/wonderland)"
