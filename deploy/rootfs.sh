#!/bin/sh
# The tollgate image's whole file system, for deploy/Dockerfile and deploy/image.sh alike:
#   deploy/rootfs.sh STATIC-BINARY CA-BUNDLE OUT-DIR
# /usr/local/bin/tollgate, Debian's CA bundle at the path rustls-native-certs looks first,
# /etc/passwd and /etc/group naming uid/gid 65532 (nonroot, as distroless), and
# /etc/nsswitch.conf so the static binary resolves names from /etc/hosts, then DNS.
# Everything is owned by root and read-only to uid 65532: nothing in the image is writable.
set -eu
bin=$1
bundle=$2
out=$3
rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs" "$out/etc/tollgate"
# -s: no symbol table (13 MB instead of 16 MB); panics still print their message.
install -m 0755 -s "$bin" "$out/usr/local/bin/tollgate"
install -m 0644 "$bundle" "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
chmod 0755 "$out" "$out/usr" "$out/usr/local" "$out/usr/local/bin" "$out/etc" "$out/etc/ssl" \
  "$out/etc/ssl/certs" "$out/etc/tollgate"
