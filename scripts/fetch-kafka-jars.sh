#!/usr/bin/env bash
# Fetches the jars of a single-node Apache Kafka broker (KRaft) from Maven Central, once, into
#   ${SUNES_CACHE_DIR:-~/.cache/sunes-stream}/kafka-<version>/jars/
# streams/brokers/apache_kafka.py starts the broker from there (java -cp 'jars/*' kafka.Kafka).
# Idempotent: a cache that is complete (marked by jars/.complete) makes this a fast no-op.
# Prints the jars directory on stdout; everything else goes to stderr.
# SUNES_KAFKA_VERSION picks another Kafka version (4.0.0 and later), e.g.
#
#   SUNES_KAFKA_VERSION=4.1.2 scripts/fetch-kafka-jars.sh
set -euo pipefail

# Keep in step with DEFAULT_KAFKA_VERSION in streams/brokers/apache_kafka.py.
version="${SUNES_KAFKA_VERSION:-4.1.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache_dir="${SUNES_CACHE_DIR:-${HOME}/.cache/sunes-stream}/kafka-${version}"
jars_dir="${cache_dir}/jars"

if [ -f "${jars_dir}/.complete" ]; then
  echo "${jars_dir}"
  exit 0
fi

for tool in java mvn; do
  if ! command -v "${tool}" >/dev/null; then
    echo "fetch-kafka-jars: '${tool}' not found; install a JDK 17+ and Maven 3.6+" \
      "(Debian: apt-get install openjdk-17-jre-headless maven)" >&2
    exit 1
  fi
done

echo "fetch-kafka-jars: collecting Apache Kafka ${version} jars from Maven Central..." >&2
mkdir -p "${cache_dir}"
# Copy into a per-process directory, then rename: a run that is interrupted, or two runs at
# once, never leave a half-filled jars/ that looks complete.
tmp_dir="$(mktemp -d "${cache_dir}/jars.tmp.XXXXXX")"
trap 'rm -rf "${tmp_dir}"' EXIT
chmod 755 "${tmp_dir}" # mktemp makes it private; the cache is meant to be shared read-only
# Maven's output is kept aside and shown only when it fails (with -q it is mostly noise).
if ! mvn_log="$(mvn -q -B -f "${root}/scripts/kafka/pom.xml" dependency:copy-dependencies \
  -Dkafka.version="${version}" -Djars.dir="${tmp_dir}" 2>&1)"; then
  echo "${mvn_log}" >&2
  echo "fetch-kafka-jars: mvn failed to collect org.apache.kafka:kafka_2.13:${version}" >&2
  exit 1
fi
# Without the core jar and its tools the broker cannot start: fail here, not at first use.
core_jar="${tmp_dir}/kafka_2.13-${version}.jar"
if ! python3 -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
  "${core_jar}" kafka/tools/StorageTool.class 2>/dev/null; then
  echo "fetch-kafka-jars: ${core_jar} lacks kafka.tools.StorageTool" >&2
  exit 1
fi
touch "${tmp_dir}/.complete"
if [ ! -f "${jars_dir}/.complete" ]; then # else another run, at the same time, came first
  rm -rf "${jars_dir}"                    # a directory filled by hand, or half-way
  mv -T "${tmp_dir}" "${jars_dir}" 2>/dev/null || true
fi
if [ ! -f "${jars_dir}/.complete" ]; then
  echo "fetch-kafka-jars: could not fill ${jars_dir}" >&2
  exit 1
fi
echo "fetch-kafka-jars: $(find "${jars_dir}" -name '*.jar' | wc -l) jars," \
  "$(du -sh "${jars_dir}" | cut -f1) in ${jars_dir}" >&2
echo "${jars_dir}"
