#!/usr/bin/env bash
# Build the Kubernetes v1.20.2 binaries the k8s test tier needs, from Debian's `kubernetes` source
# package (no registry, no module proxy here: this is the only Kubernetes that can be had).
# Everything goes to a cache directory OUTSIDE the repository; each step is skipped when its output
# exists, so a second run takes seconds. Usage: scripts/k8s-build.sh [CACHE_DIR]
set -euo pipefail

CACHE="${1:-${WEAVENET_K8S_CACHE:-/var/cache/weavenet-k8s}}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
GOPATH_DIR="$CACHE/gopath"
KVER="v1.20.2"
APT_PKGS="etcd-server containernetworking-plugins rsync golang-go containerd runc busybox-static gcc make dpkg-dev openssl"
COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet"

log() { printf '[k8s-build %(%H:%M:%S)T] %s\n' -1 "$*"; }
mkdir -p "$BIN" "$SRC" "$GOPATH_DIR"

install_packages() {
    local missing="" p
    for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ ! -f /etc/apt/sources.list.d/weavenet-k8s-src.sources ]; then
        cat >/etc/apt/sources.list.d/weavenet-k8s-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        missing="$missing (deb-src)"
    fi
    [ -z "$missing" ] && return 0
    log "apt: installing$missing"
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    missing="${missing/ (deb-src)/}"
    [ -z "${missing// /}" ] && return 0
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing
}

fetch_source() {
    local tree
    tree=$(find "$SRC" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
    if [ -z "$tree" ] || [ ! -f "$tree/.unpacked" ]; then
        log "apt-get source --download-only kubernetes"
        rm -rf "$SRC"/kubernetes-*
        (cd "$SRC" && apt-get source -qq --download-only kubernetes && dpkg-source -x ./*.dsc >/dev/null)
        tree=$(find "$SRC" -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
        patch_reflect2 "$tree"
        touch "$tree/.unpacked"
    fi
    mkdir -p "$GOPATH_DIR/src/k8s.io"
    ln -sfn "$tree" "$GOPATH_DIR/src/k8s.io/kubernetes"
}

# reflect2 v1.0.1 links reflect.mapiterinit with its pre-Go-1.18 signature; v1.0.2's form (the
# iterator passed in) is what Go 1.19's runtime has. Patch it so map iteration cannot corrupt memory.
patch_reflect2() {
    local d="$1/vendor/github.com/modern-go/reflect2"
    [ -f "$d/unsafe_link.go" ] || return 0
    grep -q 'func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) \*hiter' "$d/unsafe_link.go" || return 0
    log "patching vendored reflect2 mapiterinit (v1.0.2 form)"
    sed -i 's/^func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) \*hiter$/func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)/' \
        "$d/unsafe_link.go"
    printf '\nfunc mapiterinitNew(rtype unsafe.Pointer, m unsafe.Pointer) *hiter {\n\tit := &hiter{}\n\tmapiterinit(rtype, m, it)\n\treturn it\n}\n' \
        >>"$d/unsafe_link.go"
    sed -i 's/hiter:      mapiterinit(/hiter:      mapiterinitNew(/' "$d/unsafe_map.go"
}

go_env() {
    export GOPATH="$GOPATH_DIR" GO111MODULE=off GOFLAGS="" CGO_ENABLED=0
    export GOCACHE="$CACHE/gocache"
    export PATH="/usr/lib/go-1.19/bin:$PATH"
}

generated_files() {
    local tree="$GOPATH_DIR/src/k8s.io/kubernetes"
    [ -f "$tree/.generated" ] && return 0
    log "make generated_files"
    (cd "$tree" && go_env && make generated_files >"$CACHE/generated_files.log" 2>&1) ||
        { tail -n 30 "$CACHE/generated_files.log"; exit 1; }
    touch "$tree/.generated"
}

ldflags() {
    local v="" p
    # GOPATH mode: the staging packages are linked under their vendor/ path
    for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version \
        k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
        v="$v -X $p.gitVersion=$KVER -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=archive"
        v="$v -X $p.buildDate=2021-01-13T00:00:00Z"
    done
    printf '%s' "-s -w $v"
}

build_component() {
    local name="$1" t0
    [ -x "$BIN/$name" ] && return 0
    t0=$(date +%s)
    log "go build $name"
    (cd "$GOPATH_DIR/src/k8s.io/kubernetes" && go_env &&
        go build -o "$BIN/$name.tmp" -ldflags "$(ldflags)" "k8s.io/kubernetes/cmd/$name")
    mv "$BIN/$name.tmp" "$BIN/$name"
    log "built $name in $(($(date +%s) - t0)) s"
}

build_pause() {
    [ -x "$BIN/pause" ] && return 0
    log "gcc -static pause"
    gcc -Os -static -DVERSION="$KVER" -o "$BIN/pause" \
        "$GOPATH_DIR/src/k8s.io/kubernetes/build/pause/linux/pause.c"
    strip "$BIN/pause"
}

main() {
    local t0
    t0=$(date +%s)
    install_packages
    fetch_source
    generated_files
    for c in $COMPONENTS; do build_component "$c"; done
    build_pause
    log "done in $(($(date +%s) - t0)) s: $BIN"
}
main "$@"
