#!/usr/bin/env bash
# One short check of the CUDA path on a machine with an NVIDIA GPU: the tutorial, the core cases
# (compiled ones included), the tensor ops, the optimizers, and the half-precision and complex
# cases, every check on cuda against the exact reference. Writes reports to ${1:-reports/cuda}.
set -uo pipefail
out="${1:-reports/cuda}"
python3 -c "import torch; print('torch', torch.__version__, '| device', torch.cuda.get_device_name(0))"
python3 -m harness run cases/tutorial cases/core cases/ops/tensor.yaml cases/ops/optimizers.yaml cases/dtypes \
    --device cuda --jobs 1 --reports "$out" > "$out.log" 2>&1
code=$?
grep -E "^(FAIL|ERROR)" "$out.log" | cut -c1-300 | head -30
tail -2 "$out.log"
echo "exit $code"
