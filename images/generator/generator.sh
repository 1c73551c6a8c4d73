#!/bin/sh
# generator: append a random number (0..32767) to ./data every INTERVAL seconds.
# Runs the same way as a local process and as a container's main program.
INTERVAL="${INTERVAL:-2}"
tmpf=data
touch "$tmpf"
# As PID 1 in a container, sh ignores SIGTERM unless it sets a handler: exit at once.
trap 'exit 0' TERM INT
while true; do
  # $RANDOM is not POSIX (dash lacks it): fall back to two bytes of /dev/urandom.
  n="${RANDOM:-}"
  [ -n "$n" ] || n=$(( $(od -An -N2 -tu2 /dev/urandom) % 32768 ))
  echo "$n" >> "$tmpf"
  # Sleep in the background so a signal interrupts the wait instead of the whole interval.
  sleep "$INTERVAL" &
  wait $!
done
