#!/bin/sh
# The naive supervisor: the generator in the background, echo in the foreground.
# It works until something goes wrong: as PID 1 it ignores SIGTERM (so `docker stop`
# waits out the grace period), it forwards no signal, and when echo dies it keeps
# running, so the container still looks healthy while /data no longer answers.
here=$(dirname "$0")
sh "${GENERATOR:-$here/generator.sh}" &
"${PYTHON:-python3}" "${ECHO:-$here/echo.py}"
# echo died: the naive supervisor just waits on the generator, forever.
wait
