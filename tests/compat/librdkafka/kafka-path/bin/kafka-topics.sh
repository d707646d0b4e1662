#!/bin/sh
# kafka-topics.sh as librdkafka's test runner calls it (KAFKA_PATH/bin/kafka-topics.sh
# --bootstrap-server B --create --topic T --partitions N --replication-factor R --config k=v…),
# carried out by `quill topic create` ($QUILL_BIN).
#
# One translation: librdkafka 2.0.2's tests ask for segment.bytes below 1 MiB, which Kafka 4.0
# refuses (KIP-1030) and so does Quill; such a value is passed as internal.segment.bytes, the
# internal config Kafka 4.0 keeps for exactly this (tests that need small segments).
set -eu
bootstrap=""
topic=""
create=no
set -- "$@" --end
while [ "$1" != --end ]; do
  case "$1" in
    --bootstrap-server) bootstrap="$2"; shift 2 ;;
    --create) create=yes; shift ;;
    --topic) topic="$2"; shift 2 ;;
    --partitions) set -- "$@" -p "$2"; shift 2 ;;
    --replication-factor) set -- "$@" -r "$2"; shift 2 ;;
    --config)
      case "$2" in
        segment.bytes=*)
          value=${2#segment.bytes=}
          if [ "$value" -lt 1048576 ]; then
            set -- "$@" -c "internal.segment.bytes=$value"
          else
            set -- "$@" -c "$2"
          fi ;;
        *) set -- "$@" -c "$2" ;;
      esac
      shift 2 ;;
    *) echo "kafka-topics.sh (quill shim): unsupported argument $1" >&2; exit 2 ;;
  esac
done
shift
if [ "$create" != yes ]; then
  echo "kafka-topics.sh (quill shim): only --create is supported" >&2
  exit 2
fi
exec "${QUILL_BIN:?QUILL_BIN must name the quill binary}" topic create "$topic" -b "$bootstrap" "$@"
