#!/bin/sh
# Registers the search attributes the booking workflow upserts
# (src/seatflow/domain/search_attributes.py). Runs in temporalio/admin-tools once the
# server is healthy; safe to run again (existing attributes are kept).
#
# SEATFLOW_SEARCH_ATTRIBUTES is a comma list of NAME=TYPE pairs.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is not set}"
: "${SEATFLOW_SEARCH_ATTRIBUTES:?SEATFLOW_SEARCH_ATTRIBUTES is not set}"
namespace="${TEMPORAL_NAMESPACE:-default}"

# auto-setup creates the namespace shortly after the server turns healthy.
tries=0
until temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "namespace $namespace not found on $TEMPORAL_ADDRESS after 120 s" >&2
    exit 1
  fi
  sleep 2
done

existing="$(temporal operator search-attribute list --namespace "$namespace")"
for pair in $(echo "$SEATFLOW_SEARCH_ATTRIBUTES" | tr ',' ' '); do
  name="${pair%%=*}"
  type="${pair#*=}"
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
    continue
  fi
  temporal operator search-attribute create --namespace "$namespace" \
    --name "$name" --type "$type"
  echo "search attribute $name ($type) registered"
done
