#!/bin/sh
# A second "hypervisor" on this machine for the remote-host tests: run in a private mount namespace
# (unshare -m --propagation private), it mounts a writable tmpfs over FOLDER (which outside the namespace is an
# empty read-only mount, so a file operation the lab does locally on a path there fails), gives libvirt its own
# state, sockets and definitions (tmpfs over its folders), starts virtlogd and libvirtd (PIDDIR/start-libvirtd.sh:
# its TLS listener too; when it cannot start, PIDDIR/libvirtd.failed says so and the test starts it again through
# sshd), and then runs the command it was given (sshd -D ...), through which the tests reach this host as
# qemu+ssh:// and over SFTP.
# Usage: second-host.sh FOLDER PIDDIR COMMAND...
set -eu
folder=$1 piddir=$2
shift 2
mount -t tmpfs -o size=16g,mode=0755 lab-second-host "$folder"
for d in /run/libvirt /var/lib/libvirt /etc/libvirt/qemu /var/cache/libvirt /var/log/libvirt; do
  mkdir -p "$d"
  mount -t tmpfs -o mode=0755 lab-second-host-state "$d"
done
virtlogd -d -p "$piddir/virtlogd.pid"
sh "$piddir/start-libvirtd.sh" || echo "libvirtd exited $?" > "$piddir/libvirtd.failed"
exec "$@"
