#!/usr/bin/env bash
# mpirun -np 2 --oversubscribe MPIRUN_ARGS...: two ranks on any machine (this one has 2 cores),
# also as root: Open MPI refuses root unless told (CI exports OMPI_ALLOW_RUN_AS_ROOT and its
# confirmation; a root shell without them gets --allow-run-as-root here).
# Usage: mpirun2.sh MPIRUN PROGRAM [ARGS...]
set -euo pipefail
MPIRUN=$1; shift
args=(-np 2 --oversubscribe)
if [ "$(id -u)" = 0 ] && [ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ]; then args+=(--allow-run-as-root); fi
exec "$MPIRUN" "${args[@]}" "$@"
