#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0-only
# /init of the kernel door's initramfs: mounts tracefs, loads the module, then feeds /prog.txt to
# it line by line. Lines starting with `@` are for this script:
#   @reset TYPE UNTRUSTED   fresh IOVA domain (REAL-KERNEL.md §0): unbind; group type via the
#                           other kind; untrusted set before the final type; bind
#   @trace                  clear the trace buffer and start tracing
#   @dump                   stop tracing and print the trace between DMACONF-TRACE markers
#   @swiotlb                print the SWIOTLB pool's used-slab count
# Every other line goes to trace_marker (so events can be split per step) and to the module.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs nodev /sys/kernel/tracing
mount -t debugfs nodev /sys/kernel/debug
T=/sys/kernel/tracing
echo "DMACONF-INIT start uptime=$(cut -d' ' -f1 /proc/uptime)"
echo 0 > $T/tracing_on
echo 4096 > $T/buffer_size_kb
for e in iommu/map iommu/unmap swiotlb/swiotlb_bounced; do
  echo 1 > $T/events/$e/enable || echo "DMACONF-INIT no-event $e"
done
BDF=
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x11e8 ]; then BDF=$(basename $d); fi
done
G=$(basename "$(readlink /sys/bus/pci/devices/$BDF/iommu_group)")
echo "DMACONF-INIT edu=$BDF group=$G type=$(cat /sys/kernel/iommu_groups/$G/type)"
while read -r a b c; do echo "DMACONF-INIT resv start=$a end=$b type=$c"; done < /sys/kernel/iommu_groups/$G/reserved_regions
if [ -f /dmaconf_iova_checker.ko ]; then # the misuse checker, when built (ffi/kernel/checker)
  insmod /dmaconf_iova_checker.ko ratelimit=0
  echo "DMACONF-INIT checker_rc=$?"
fi
insmod /dmaconf_kdoor.ko
echo "DMACONF-INIT insmod_rc=$?"
P=/sys/module/dmaconf_kdoor/parameters/cmd
DRV=/sys/bus/pci/drivers/dmaconf_kdoor
TYPE=/sys/kernel/iommu_groups/$G/type
TRACING=

reset() { # reset TYPE UNTRUSTED
  echo "untrusted 0" > $P
  [ -e $DRV/$BDF ] && echo $BDF > $DRV/unbind
  if [ "$1" = identity ]; then echo DMA > $TYPE; else echo identity > $TYPE; fi
  echo "untrusted $2" > $P
  if ! echo "$1" > $TYPE 2>/dev/null; then
    echo "DMACONF-INIT type $1 refused"
    echo DMA > $TYPE 2>/dev/null
  fi
  echo $BDF > $DRV/bind
  echo "DMACONF-INIT reset want=$1 untrusted=$2 type=$(cat $TYPE)"
}

while IFS= read -r line; do
  case "$line" in
    "@reset "*) set -- $line; reset "$2" "$3" ;;
    "@trace") echo > $T/trace; echo 1 > $T/tracing_on; TRACING=1 ;;
    "@dump")
      echo 0 > $T/tracing_on; TRACING=
      echo "DMACONF-TRACE-BEGIN"
      grep -v '^#' $T/trace
      echo "DMACONF-TRACE-END"
      echo > $T/trace ;;
    "@swiotlb") echo "DMACONF-INIT swiotlb_used=$(cat /sys/kernel/debug/swiotlb/io_tlb_used 2>/dev/null)" ;;
    *)
      [ -n "$TRACING" ] && echo "$line" > $T/trace_marker
      echo "$line" > $P ;;
  esac
done < /prog.txt
if [ -d /sys/module/dmaconf_iova_checker ]; then
  sed 's/^/DMACONF-INIT checker_count /' /sys/kernel/debug/dmaconf_checker/counts
  rmmod dmaconf_iova_checker # reports what is still live
  echo "DMACONF-INIT checker_unloaded"
fi
echo "DMACONF-INIT done uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
