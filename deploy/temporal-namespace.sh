#!/bin/sh
# Registers $NAMESPACE on the Temporal server at $TEMPORAL_ADDRESS unless it exists.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}"
tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -ge 60 ] && { echo "Temporal at $TEMPORAL_ADDRESS is not healthy"; exit 1; }
  sleep 2
done
if temporal operator namespace describe -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create -n "$NAMESPACE" --address "$TEMPORAL_ADDRESS"
fi
