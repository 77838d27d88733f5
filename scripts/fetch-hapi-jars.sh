#!/usr/bin/env bash
# Fetches HAPI HL7v2 (ca.uhn.hapi:hapi-base, hapi-structures-v25, hapi-structures-v26) from Maven
# Central once, and compiles scripts/hapi/SendHl7.java against it, into
#   ${SUNES_CACHE_DIR:-~/.cache/sunes-stream}/hapi-<version>/{jars,classes}/
# tests/streams/hl7/test_hapi_mllp.py runs `java -cp 'jars/*:classes' SendHl7 ...` from there.
# Idempotent: complete jars (jars/.complete) and classes built from the current source make this
# a fast no-op. Prints the hapi-<version> directory on stdout; everything else goes to stderr.
set -euo pipefail

# Keep in step with hapi.version in scripts/hapi/pom.xml.
version="${SUNES_HAPI_VERSION:-2.6.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache_dir="${SUNES_CACHE_DIR:-${HOME}/.cache/sunes-stream}/hapi-${version}"
jars_dir="${cache_dir}/jars"
classes_dir="${cache_dir}/classes"
source="${root}/scripts/hapi/SendHl7.java"

for tool in java javac mvn; do
  if ! command -v "${tool}" >/dev/null; then
    echo "fetch-hapi-jars: '${tool}' not found; install a JDK 17+ and Maven 3.6+" \
      "(Debian: apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
done

mkdir -p "${cache_dir}"
if [ ! -f "${jars_dir}/.complete" ]; then
  echo "fetch-hapi-jars: collecting HAPI ${version} from Maven Central..." >&2
  # A per-process directory renamed at the end: an interrupted run leaves no half-filled jars/.
  tmp_dir="$(mktemp -d "${cache_dir}/jars.tmp.XXXXXX")"
  trap 'rm -rf "${tmp_dir}"' EXIT
  if ! mvn_log="$(mvn -q -B -f "${root}/scripts/hapi/pom.xml" dependency:copy-dependencies \
    -Dhapi.version="${version}" -Djars.dir="${tmp_dir}" 2>&1)"; then
    echo "${mvn_log}" >&2
    echo "fetch-hapi-jars: mvn failed to collect ca.uhn.hapi:hapi-base:${version}" >&2
    exit 1
  fi
  touch "${tmp_dir}/.complete"
  if [ ! -f "${jars_dir}/.complete" ]; then # else another run, at the same time, came first
    rm -rf "${jars_dir}"
    mv -T "${tmp_dir}" "${jars_dir}" 2>/dev/null || true
  fi
fi

# Recompiled when the source changes (its checksum is kept beside the classes).
checksum="$(sha256sum "${source}" | cut -d' ' -f1)"
if [ "$(cat "${classes_dir}/.source-sha256" 2>/dev/null || true)" != "${checksum}" ]; then
  tmp_classes="$(mktemp -d "${cache_dir}/classes.tmp.XXXXXX")"
  javac -Xlint:all -Werror -d "${tmp_classes}" -cp "${jars_dir}/*" "${source}" >&2
  echo "${checksum}" >"${tmp_classes}/.source-sha256"
  rm -rf "${classes_dir}"
  mv -T "${tmp_classes}" "${classes_dir}"
  echo "fetch-hapi-jars: compiled SendHl7 into ${classes_dir}" >&2
fi
echo "${cache_dir}"
