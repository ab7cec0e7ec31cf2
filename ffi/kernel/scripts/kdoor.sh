#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The kernel door's machinery (REAL-KERNEL.md §0): a cached debootstrap trixie chroot holding
# gcc-14, kbuild, QEMU, busybox and cpio; the pinned 7.3.4 kernel from ../shared/kernel-7.3.4;
# our module built in the chroot; an initramfs; QEMU (TCG) run inside the chroot under `timeout`.
# Nothing but bookworm's debootstrap is ever installed on the host.
#
#   kdoor.sh setup  CACHE PKGDIR          chroot + headers + vmlinuz (cached; idempotent)
#   kdoor.sh build  CACHE MODSRC          build the module (-Wall -Wextra -Werror)
#   kdoor.sh build-checker CACHE SRC      build the misuse checker module (ffi/kernel/checker);
#                                         `boot` then loads it before the door's module
#   kdoor.sh boot   CACHE PROG OUT SECS   pack the initramfs with PROG, boot; console -> OUT,
#                                         QEMU's log (traces, errors) -> OUT.qemu
#
# Environment: DEBIAN_MIRROR (default: the URIs: line of the host's apt sources).
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true

KVER=7.3.4+deb13-amd64
SUITE=trixie
INCLUDE=make,gcc-14,libc6-dev,pahole,kmod,libelf1t64,libssl3t64,zlib1g,ca-certificates,qemu-system-x86,busybox-static,cpio,zstd,gzip

die() { echo "kdoor: error: $*" >&2; exit 1; }
say() { echo "kdoor: $*" >&2; }

mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local f=/etc/apt/sources.list.d/debian.sources u=
  [[ -r $f ]] && u=$(awk '/^URIs:/{print $2; exit}' "$f")
  [[ -z $u && -r /etc/apt/sources.list ]] && u=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  [[ -n $u ]] || die "no Debian mirror: set DEBIAN_MIRROR or configure /etc/apt/sources.list.d/debian.sources"
  echo "$u"
}

# retry N CMD...: run CMD up to N times, 5 s apart.
retry() {
  local n=$1 i; shift
  for ((i = 1; i <= n; i++)); do
    if "$@"; then return 0; fi
    say "attempt $i/$n failed: $*"
    ((i < n)) && sleep 5
  done
  return 1
}

with_proc() { # with_proc ROOTFS CMD...: /proc mounted in the chroot for the command (objtool needs it)
  local r=$1; shift
  mount -t proc proc "$r/proc"
  local rc=0
  "$@" || rc=$?
  umount "$r/proc" || umount -l "$r/proc" || true
  return $rc
}

setup() {
  local cache=$1 pkgs=$2
  local r=$cache/rootfs
  mkdir -p "$cache"
  [[ -d $pkgs ]] || die "kernel packages not found in $pkgs (expected ../shared/kernel-7.3.4 beside the repository)"
  (cd "$pkgs" && sha256sum --quiet -c SHA256SUMS) >&2 || die "SHA256SUMS check failed in $pkgs"
  command -v debootstrap >/dev/null || die "debootstrap is not installed on the host (apt-get install debootstrap)"
  [[ $(id -u) == 0 ]] || die "the chroot needs root (debootstrap, chroot, mount)"

  if [[ ! -f $r/.dmaconf-base ]]; then
    local m; m=$(mirror)
    say "debootstrap $SUITE from $m into $r (about 40 s and 650 MB)"
    local attempt ok=0
    for attempt in 1 2 3; do
      rm -rf "$r"
      if debootstrap --variant=minbase --include=$INCLUDE $SUITE "$r" "$m" >"$cache/debootstrap.log" 2>&1; then
        ok=1; break
      fi
      say "debootstrap attempt $attempt/3 failed (tail of $cache/debootstrap.log):"
      tail -5 "$cache/debootstrap.log" >&2 || true
      sleep 5
    done
    ((ok)) || die "debootstrap of $SUITE from $m failed 3 times: the chroot's package downloads did not succeed (see $cache/debootstrap.log)"
    touch "$r/.dmaconf-base"
  fi

  if [[ ! -f $r/.dmaconf-headers ]]; then
    local m; m=$(mirror)
    say "installing the pinned 7.3.4 headers and kbuild into the chroot"
    mkdir -p "$r/tmp/kdebs"
    cp "$pkgs"/linux-headers-*.deb "$pkgs"/linux-kbuild-*.deb "$pkgs"/linux-base-*.deb "$r/tmp/kdebs/"
    echo "deb $m $SUITE-backports main" >"$r/etc/apt/sources.list.d/bpo.list"
    retry 3 chroot "$r" sh -c 'apt-get update -qq' >&2 \
      || die "apt-get update in the chroot failed 3 times (mirror unreachable?)"
    retry 3 chroot "$r" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/kdebs/*.deb' >&2 \
      || die "installing the kernel headers in the chroot failed 3 times (package downloads?)"
    chroot "$r" sh -c 'apt-get clean' || true
    touch "$r/.dmaconf-headers"
  fi

  if [[ ! -f $cache/vmlinuz ]]; then
    local x=$cache/kimage
    rm -rf "$x"; mkdir -p "$x"
    dpkg-deb -x "$pkgs"/linux-binary-unsigned-*.deb "$x"
    cp "$x/usr/lib/modules/$KVER/vmlinuz.unsigned" "$cache/vmlinuz.tmp"
    mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
    rm -rf "$x"
  fi
  chroot "$r" qemu-system-x86_64 --version | head -1 >&2
}

build() {
  local cache=$1 src=$2
  local r=$cache/rootfs
  [[ -f $r/.dmaconf-headers ]] || die "run setup first"
  rm -rf "$r/build"; mkdir -p "$r/build"
  cp "$src"/*.c "$src"/Kbuild "$r/build/"
  with_proc "$r" chroot "$r" make -s -C /usr/src/linux-headers-$KVER M=/build modules >"$cache/build.log" 2>&1 \
    || { cat "$cache/build.log" >&2; die "module build failed"; }
  cp "$r/build/dmaconf_kdoor.ko" "$cache/dmaconf_kdoor.ko"
}

build_checker() {
  local cache=$1 src=$2
  local r=$cache/rootfs
  [[ -f $r/.dmaconf-headers ]] || die "run setup first"
  rm -rf "$r/build-checker"; mkdir -p "$r/build-checker"
  cp "$src"/*.c "$src"/Kbuild "$r/build-checker/"
  with_proc "$r" chroot "$r" make -s -C /usr/src/linux-headers-$KVER M=/build-checker modules >"$cache/build-checker.log" 2>&1 \
    || { cat "$cache/build-checker.log" >&2; die "checker module build failed"; }
  cp "$r/build-checker/dmaconf_iova_checker.ko" "$cache/dmaconf_iova_checker.ko"
}

boot() {
  local cache=$1 prog=$2 out=$3 secs=$4
  local r=$cache/rootfs here
  here=$(cd "$(dirname "$0")" && pwd)
  [[ -f $cache/dmaconf_kdoor.ko ]] || die "run build first"
  local ird=$r/boot-initrd
  rm -rf "$ird"; mkdir -p "$ird"/{bin,proc,sys,dev}
  cp "$r/usr/bin/busybox" "$ird/bin/"
  cp "$cache/dmaconf_kdoor.ko" "$ird/"
  if [[ -f $cache/dmaconf_iova_checker.ko ]]; then cp "$cache/dmaconf_iova_checker.ko" "$ird/"; fi
  cp "$here/init.sh" "$ird/init"; chmod +x "$ird/init"
  cp "$prog" "$ird/prog.txt"
  chroot "$r" sh -c 'cd /boot-initrd && find . | cpio -o -H newc --quiet | gzip -1 > /initrd.gz'
  cp "$cache/vmlinuz" "$r/vmlinuz"
  local rc=0
  timeout --kill-after=5 "$secs" chroot "$r" qemu-system-x86_64 \
    -machine q35,kernel-irqchip=split -accel tcg -cpu max -smp 1 -m 5G \
    -device intel-iommu,intremap=on -device edu -nic none \
    -nographic -no-reboot -serial mon:stdio -display none \
    -trace vtd_dmar_fault -trace pci_cfg_write \
    -kernel /vmlinuz -initrd /initrd.gz \
    -append "console=ttyS0 intel_iommu=on panic=-1 oops=panic loglevel=7 printk.devkmsg=on" \
    >"$out" 2>"$out.qemu" </dev/null || rc=$?
  return $rc
}

cmd=${1:-}; shift || true
case $cmd in
  setup) setup "$@" ;;
  build) build "$@" ;;
  build-checker) build_checker "$@" ;;
  boot) boot "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
