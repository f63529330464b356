#!/usr/bin/env bash
# Builds the Dev8 images in dependency order: dev8-base first, then every template's image (each
# docker/<name>/Dockerfile but base's and tls's, FROM the base just built) and dev8-tls (the TLS
# sidecar). A new template's image is found by its directory: nothing to add here.
#
#   docker/build.sh local [TAG]             docker build on this machine: dev8-*:TAG (default dev)
#   docker/build.sh acr REGISTRY TAG        ACR Tasks (az acr build) in registry REGISTRY (its name,
#                                           not its login server): every image tagged TAG only (never
#                                           latest: the app pins DEV8_IMAGE_TAG to a commit)
#
# The ACR mode needs az signed in with a role that may run ACR Tasks on the registry (for example
# Contributor on it); no Docker engine is needed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHILDREN=()
for dockerfile in "$here"/*/Dockerfile; do
  image="$(basename "$(dirname "$dockerfile")")"
  [[ "$image" == base || "$image" == tls ]] || CHILDREN+=("$image")
done
readonly CHILDREN

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

build_local() {
  local tag="$1" image
  docker build --file "$here/base/Dockerfile" --tag "dev8-base:$tag" "$here"
  for image in "${CHILDREN[@]}"; do
    docker build --file "$here/$image/Dockerfile" \
      --build-arg BASE_IMAGE=dev8-base --build-arg "BASE_TAG=$tag" \
      --tag "dev8-$image:$tag" "$here"
  done
  docker build --file "$here/tls/Dockerfile" --tag "dev8-tls:$tag" "$here"
}

# acr_build IMAGE DOCKERFILE [--build-arg ...]: one ACR Tasks run, tagged with the tag.
acr_build() {
  local image="$1" dockerfile="$2"
  shift 2
  az acr build --registry "$registry" --platform linux/amd64 \
    --file "$here/$dockerfile" --image "$image:$tag" \
    "$@" "$here"
}

build_acr() {
  local login_server image pid failed=0 logs
  login_server="$(az acr show --name "$registry" --query loginServer --output tsv)"
  acr_build dev8-base base/Dockerfile
  logs="$(mktemp -d)"
  declare -A pids=()
  # The language images and the sidecar are independent of each other: build them in parallel.
  for image in "${CHILDREN[@]}"; do
    acr_build "dev8-$image" "$image/Dockerfile" \
      --build-arg "BASE_IMAGE=$login_server/dev8-base" --build-arg "BASE_TAG=$tag" \
      >"$logs/$image.log" 2>&1 &
    pids[$image]=$!
  done
  acr_build dev8-tls tls/Dockerfile >"$logs/tls.log" 2>&1 &
  pids[tls]=$!
  for image in "${!pids[@]}"; do
    pid="${pids[$image]}"
    if wait "$pid"; then
      echo "== dev8-$image: built"
    else
      echo "== dev8-$image: FAILED" >&2
      failed=1
    fi
    sed "s/^/[dev8-$image] /" "$logs/$image.log"
  done
  rm -rf "$logs"
  return "$failed"
}

case "${1:-}" in
  local)
    tag="${2:-dev}"
    build_local "$tag"
    ;;
  acr)
    [[ $# -eq 3 ]] || usage
    registry="$2"
    tag="$3"
    build_acr
    ;;
  *)
    usage
    ;;
esac
