#!/bin/sh
# generator: append a random number (0..32767) to ./data every INTERVAL seconds.
# Runs the same way as a local process and as a container's main program.
INTERVAL="${INTERVAL:-2}"
tmpf=data
# A write that fails (volume full, read-only, a file size limit) stops the generator with a
# message saying why, on stderr: the runtime's logs and event timeline show it.
fail() {
  echo "generator: cannot write to $(pwd)/$tmpf: ${1:-write failed}; stopping (free space on the volume, then restart)" >&2
  exit 3
}
# A file size limit (ulimit -f) would kill us with SIGXFSZ before we could say why: make it an error.
trap '' XFSZ 2>/dev/null
touch "$tmpf" 2>/dev/null || fail "cannot create it"
# As PID 1 in a container, sh ignores SIGTERM unless it sets a handler: exit at once.
trap 'exit 0' TERM INT
while true; do
  # $RANDOM is not POSIX (dash lacks it): fall back to two bytes of /dev/urandom.
  n="${RANDOM:-}"
  [ -n "$n" ] || n=$(( $(od -An -N2 -tu2 /dev/urandom) % 32768 ))
  if ! err=$( { echo "$n" >> "$tmpf"; } 2>&1 ); then
    fail "$(printf '%s' "$err" | sed 's/^.*: //')"
  fi
  # Sleep in the background so a signal interrupts the wait instead of the whole interval.
  sleep "$INTERVAL" &
  wait $!
done
