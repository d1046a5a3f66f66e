# Sourced by the scripts: installs missing Debian packages, with sudo unless running as root.
# apt_need PACKAGE...: installs those of PACKAGE... that dpkg does not know as installed.
apt_need() {
  local missing=() p sudo_=""
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || sudo_=sudo
  printf '[packages] installing %s\n' "${missing[*]}" >&2
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
}
