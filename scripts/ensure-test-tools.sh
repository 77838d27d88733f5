#!/usr/bin/env bash
# Installs what the integration tests need beyond Python: promtool/prometheus/amtool
# (Debian's prometheus and prometheus-alertmanager packages), the Apache Kafka jars, HAPI HL7v2
# and Keycloak.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
  echo "installing Debian's prometheus and prometheus-alertmanager (promtool, amtool)..." >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager >/dev/null
  # The packages start services on install where an init system runs; the tests start their own.
  as_root systemctl stop prometheus prometheus-alertmanager >/dev/null 2>&1 || true
fi

if [ -x scripts/fetch-kafka-jars.sh ]; then
  bash scripts/fetch-kafka-jars.sh
fi

# HAPI HL7v2 and its compiled client, for the HL7 MLLP end-to-end test.
if [ -x scripts/fetch-hapi-jars.sh ]; then
  bash scripts/fetch-hapi-jars.sh >/dev/null
fi

# Keycloak, the OpenID provider of the access tests (tests/keycloak_tools.py): a zip.
if ! command -v unzip >/dev/null; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends unzip >/dev/null
fi
if [ -x scripts/fetch-keycloak.sh ]; then
  bash scripts/fetch-keycloak.sh >/dev/null
fi

# Headless Chromium and its driver from Debian's packages, for the pages' browser tests
# (tests/browser_tools.py: Selenium drives /usr/bin/chromedriver, never downloads a browser).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing Debian's chromium and chromium-driver (browser tests)..." >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi
