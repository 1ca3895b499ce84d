#!/bin/bash
# Entrypoint of the compose "tfserving" service: tensorflow_model_server sized by ONE setting,
# TFSERVING_CPUS (the container's CPU limit in docker-compose.yml), from which it derives
#   --tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism    (TensorFlow's thread pools)
#   num_batch_threads of batching_parameters.txt                            (batches run in parallel)
# Those take whole numbers, so a fraction such as 1.5 is refused here with a clear message instead
# of a server that fails to parse its flags. The other flags come from the service's command.
#
#   bash start.sh --port=8500 --rest_api_port=8501 --model_config_file=... [more flags]
# Environment: TFSERVING_CPUS (default 2), TFSERVING_CONFIG_DIR (default: this script's folder).
set -euo pipefail
cpus=${TFSERVING_CPUS:-2}
if ! [[ $cpus =~ ^[1-9][0-9]*$ ]]; then
  echo "tfserving: TFSERVING_CPUS must be a whole number of CPUs (1, 2, 4, ...), got '$cpus'" >&2
  exit 64
fi
config=${TFSERVING_CONFIG_DIR:-$(dirname "$0")}
batching=$(mktemp "${TMPDIR:-/tmp}/batching_parameters.XXXXXX")
sed -E "s/^num_batch_threads \{ value: [0-9]+ \}/num_batch_threads { value: $cpus }/" \
  "$config/batching_parameters.txt" >"$batching"
exec tensorflow_model_server "$@" \
  --batching_parameters_file="$batching" \
  --tensorflow_intra_op_parallelism="$cpus" \
  --tensorflow_inter_op_parallelism="$cpus"
