# shellcheck shell=bash
# Build-and-cache discipline shared by scripts/k8s-tools.sh and scripts/helm-tools.sh (sourced).
# The caller sets, before calling go_tools_install:
#   tool       name for messages (k8s-tools, helm-tools)
#   mod_dir    the pinned Go module to build from
#   base_dir   cache dir of this version; binaries go to $base_dir/bin, a stamp next to it
#   binaries   array of the binary names the build must produce
#   packages   array of the packages to `go build`
#   ldflags    linker flags (version stamping, -s -w)
#   hash_extra array of extra files whose content decides the binaries (beyond go.mod/go.sum)
#   what       what is being built, for the one progress line
# A stamp file holds a hash of everything that decides the binaries; a change rebuilds.
# (Those variables are the caller's, so shellcheck sees them referenced but never assigned here.)
# shellcheck disable=SC2154

go_tools_hash() {
  {
    cat "$mod_dir/go.mod" "$mod_dir/go.sum" "${hash_extra[@]}"
    echo "ldflags=$ldflags"
  } | sha256sum | cut -d' ' -f1
}

go_tools_is_built() {
  local b
  [[ -f "$base_dir/stamp" && "$(cat "$base_dir/stamp")" == "$(go_tools_hash)" ]] || return 1
  for b in "${binaries[@]}"; do [[ -x "$base_dir/bin/$b" ]] || return 1; done
}

go_tools_build() {
  command -v go >/dev/null || { echo "$tool: Go is required to build $what (https://go.dev/dl)" >&2; exit 1; }
  local tmp start b
  start=$SECONDS
  tmp="$(mktemp -d "$base_dir/build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "$tool: building $what into $base_dir/bin (first time: a few minutes)" >&2
  (
    cd "$mod_dir" || exit 1
    # -mod=readonly: build exactly what go.mod/go.sum (committed, tidy) pin; fail instead of
    # silently resolving something else. GOWORK=off: a go.work higher up must not interfere.
    # CGO_ENABLED=0: static binaries like the release builds, no C toolchain needed.
    export GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off CGO_ENABLED=0
    go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${packages[@]}"
  ) >&2
  for b in "${binaries[@]}"; do [[ -x "$tmp/$b" ]] || { echo "$tool: the build did not produce $b" >&2; exit 1; }; done
  rm -rf "${base_dir:?}/bin"
  mv "$tmp" "$base_dir/bin"
  trap - EXIT
  chmod 755 "$base_dir/bin"
  go_tools_hash > "$base_dir/stamp"
  echo "$tool: built in $((SECONDS - start))s" >&2
}

go_tools_install() {
  if ! go_tools_is_built; then
    mkdir -p "$base_dir"
    # Parallel test workers may call install at once: one builds, the others wait and reuse.
    exec 9>"$base_dir/lock"
    flock 9
    go_tools_is_built || go_tools_build
    flock -u 9
  fi
}
