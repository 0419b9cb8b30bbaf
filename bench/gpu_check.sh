#!/usr/bin/env bash
# The GPU checks of the loader, training and several-GPU issues, as one script for the device machine
# (GPU.md): build here, carry the stripped binary (the debug-info one is 160 MB; carry allows
# 64 MiB in all) and the Tiny val tar, ingest there at 224² (upscaled: the throughput is what
# counts), run.
#
#   here:  make build && mkdir -p .gpu && strip -o .gpu/sipl target/release/sipl \
#          && cp -r bench configs .gpu/ && cp ../shared/data/tiny-imagenet-200-val.tar .gpu/
#          (.gpu must be listed in .git/info/exclude; carry [".gpu"]: about 50 MB)
#   there: bash .gpu/bench/gpu_check.sh .gpu   (results under $OUT)
set -uo pipefail
G=${1:-.gpu}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
TL=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH=$TL
S="$G/sipl"
if [ ! -f "$G/sample/dataset.json" ]; then
  mkdir -p /tmp/tiny && tar -xf "$G/tiny-imagenet-200-val.tar" -C /tmp/tiny
  "$S" ingest tiny-imagenet /tmp/tiny/tiny-imagenet-200 --split val --resize 224 --crop 224 \
    --out "$G/sample" -q
fi
{
  nvidia-smi --query-gpu=name,memory.total --format=csv
  nproc
  "$S" info
  echo "== (a) ResNet-18 train step, batch 192, 224², PyTorch vs sipl =="
  python3 "$G/bench/pytorch_step.py" --device cuda --batch 192 --bf16 --channels-last
  python3 "$G/bench/pytorch_step.py" --device cuda --batch 192 --channels-last
  "$S" bench step --device cuda --batch 192 --channels-last true --amp
  "$S" bench step --device cuda --batch 192 --channels-last true
  "$S" bench step --device cuda --batch 192 --channels-last false
  echo "== loader alone, SIPLv1, 224², 16 and 14 workers =="
  "$S" bench loader "$G/sample" --scheme siplv1 --workers 16 --seconds 20
  "$S" bench loader "$G/sample" --scheme siplv1 --workers 14 --seconds 20
  "$S" bench loader "$G/sample" --scheme opl --workers 16 --seconds 10
  echo "== (b) SIPLv1 training end to end: default (pinned batches, side-stream uploads) =="
  T=("$S" bench train --config "$G/configs/siplv1.toml" --set data.path="$G/sample"
     --set data.train_images=9000 --set data.workers=14 --set run.device=cuda --steps 200)
  "${T[@]}"
  echo "== (b') uploads on the compute stream, pageable batches =="
  "${T[@]}" --set run.overlap_uploads=false
  echo "== (b'') all views in one encoder pass (changes BatchNorm statistics) =="
  "${T[@]}" --set model.joint_views=true
  echo "== (c) world size 1 through the distributed path (NCCL, c10d Reducer): within 5% of (b) =="
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 "${T[@]}"
  echo "== (c') the same with one gradient bucket (reduction after backward, no overlap) =="
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29518 "${T[@]}" --set run.bucket_mb=1000
  echo "== PyTorch SIPLv1 step on device-resident data, for the ceiling =="
  python3 "$G/bench/pytorch_step.py" --device cuda --batch 64 --bf16 --channels-last --siplv1 || true
} 2>&1 | tee "$OUT/gpu-check.txt"
