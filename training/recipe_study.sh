#!/usr/bin/env bash
# The recipe study of training/RESULTS.md: every arm continues the same checkpoint (the mse run at
# step 9,461: generator and Adam's moments) for the same number of steps, one arm at a time so each
# has the CPU to itself. Usage: training/recipe_study.sh START_CHECKPOINT_DIR|scratch [ARM ...]
# ("scratch": a fresh generator, for the s*-scratch-* arms).
set -euo pipefail
start=${1:?usage: $0 START_CHECKPOINT_DIR [ARM ...]}
shift
arms=("$@")
[ ${#arms[@]} -gt 0 ] || arms=(b-crop192 c-l1 d-bnfrozen e-cosine)
for arm in "${arms[@]}"; do
    echo "$(date -u +%FT%TZ) arm $arm"
    init=(--init-weights "$start")
    [ "$start" = scratch ] && init=()
    vsr train --config "training/recipes/study/$arm.yaml" --out "runs/study/$arm" "${init[@]}" --quiet || exit $?
done
echo "$(date -u +%FT%TZ) study done"
