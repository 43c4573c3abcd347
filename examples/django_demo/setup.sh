#!/bin/sh
# Prepare the demo for serving: create/upgrade the sqlite database, add the
# demo rows (idempotent), and collect static files into staticfiles/.
# Runnable from any directory; safe to run again.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}
"$PYTHON" manage.py migrate --noinput
"$PYTHON" manage.py seed
"$PYTHON" manage.py collectstatic --noinput
