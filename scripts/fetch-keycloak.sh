#!/usr/bin/env bash
# Fetches Keycloak (org.keycloak:keycloak-quarkus-dist, a zip on Maven Central) once and unpacks it
# into ${SUNES_CACHE_DIR:-~/.cache/sunes-stream}/keycloak-<version>/, for the access tests
# (tests/keycloak_tools.py runs its bin/kc.sh start-dev). Runs on Java 17+.
# Idempotent: a complete unpack (.complete) makes this a fast no-op. Prints the directory on
# stdout; everything else goes to stderr.
set -euo pipefail

version="${SUNES_KEYCLOAK_VERSION:-26.4.7}"
cache_root="${SUNES_CACHE_DIR:-${HOME}/.cache/sunes-stream}"
home="${cache_root}/keycloak-${version}"

for tool in java mvn unzip; do
  if ! command -v "${tool}" >/dev/null; then
    echo "fetch-keycloak: '${tool}' not found; install a JDK 17+, Maven 3.6+ and unzip" \
      "(Debian: apt-get install openjdk-17-jdk-headless maven unzip)" >&2
    exit 1
  fi
done

if [ ! -f "${home}/.complete" ]; then
  echo "fetch-keycloak: collecting Keycloak ${version} from Maven Central..." >&2
  mkdir -p "${cache_root}"
  # A per-process directory renamed at the end: an interrupted run leaves no half-unpacked tree.
  tmp_dir="$(mktemp -d "${cache_root}/keycloak.tmp.XXXXXX")"
  trap 'rm -rf "${tmp_dir}"' EXIT
  if ! mvn_log="$(mvn -q -B dependency:copy \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:${version}:zip" \
    -DoutputDirectory="${tmp_dir}/zip" 2>&1)"; then
    echo "${mvn_log}" >&2
    echo "fetch-keycloak: mvn failed to fetch org.keycloak:keycloak-quarkus-dist:${version}:zip" >&2
    exit 1
  fi
  unzip -q "${tmp_dir}/zip/keycloak-quarkus-dist-${version}.zip" -d "${tmp_dir}/unpacked"
  mv -T "${tmp_dir}/unpacked/keycloak-${version}" "${tmp_dir}/home"
  touch "${tmp_dir}/home/.complete"
  if [ ! -f "${home}/.complete" ]; then # else another run, at the same time, came first
    rm -rf "${home}"
    mv -T "${tmp_dir}/home" "${home}" 2>/dev/null || true
  fi
fi
echo "${home}"
