#!/bin/sh
# Entrypoint of the yijian image: `yijian-entrypoint worker` runs `yijian worker`.
#
# Secrets as files: for every variable YIJIAN_<NAME>_FILE=/path, the file's content becomes
# YIJIAN_<NAME> (compose mounts secrets as files under /run/secrets; Kubernetes can use either form).
# The value never appears on a command line or in `docker inspect`.
set -eu
for var in $(env | sed -n 's/^\(YIJIAN_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  file=$(printenv "${var}_FILE")
  if [ ! -r "$file" ]; then
    echo "yijian-entrypoint: ${var}_FILE=$file is not readable" >&2
    exit 64
  fi
  value=$(cat "$file")
  export "$var=$value"
  unset "${var}_FILE"
done
exec yijian "$@"
