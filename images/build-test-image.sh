#!/usr/bin/env bash
# Builds the Stratus test guest image from Debian's packages alone.
#
#   images/build-test-image.sh OUT_FILE
#
# OUT_FILE (qcow2) is a small disk that SeaBIOS boots: a FAT file system with
# syslinux, Debian's cloud kernel and an initramfs (busybox, dropbear, the
# kernel modules a QEMU guest needs, and the scripts of images/guest/) that
# stays the root file system. The guest reads its config drive or the
# metadata service, sets its host name, installs root's SSH key, runs DHCP and
# dropbear, and prints "stratus-guest: ..." markers on its serial console.
#
# Beside OUT_FILE it writes probe-vmlinuz and probe-initrd: the same kernel
# and a tiny initramfs whose init prints "stratus-probe: ok" on ttyS0 and
# powers off (the QEMU driver's accelerator probe), and OUT_FILE.stamp, which
# lets a second run with the same inputs return at once (set
# STRATUS_IMAGE_REBUILD=1 to build anyway). Concurrent runs for one OUT_FILE
# wait for each other (flock on OUT_FILE.lock).
#
# Needs root (apt-get) on Debian 12; installs the build tools it lacks.
set -euo pipefail

if [[ $# -ne 1 || $1 == -* ]]; then
  echo "usage: $0 OUT_FILE" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest=$here/guest
out=$(realpath -m "$1")
out_dir=$(dirname "$out")
probe_kernel=$out_dir/probe-vmlinuz
probe_initrd=$out_dir/probe-initrd

# What the guest needs from the kernel package (module names; dependencies are
# added), in load order: the storage drivers before the bus drivers, so that
# disks and CD-ROMs bind while the buses are scanned. (Loading the ATA driver
# in the background gains nothing: every module load waits for the kernel's
# asynchronous probes to finish, the IDE ports' included.)
modules=(
  scsi_mod sd_mod cdrom sr_mod isofs libata ata_piix ata_generic
  virtio virtio_ring virtio_pci virtio_blk virtio_net virtio_scsi virtio-rng
  button evdev
)
kernel_cmdline='console=ttyS0,115200 quiet loglevel=3'

log() { echo "build-test-image: $*" >&2; }

# --- Tools --------------------------------------------------------------------
declare -A tool_package=(
  [mkfs.vfat]=dosfstools [mcopy]=mtools [syslinux]=syslinux [cpio]=cpio
  [qemu-img]=qemu-utils [zstd]=zstd
)
missing=()
for tool in "${!tool_package[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$tool" >/dev/null 2>&1 || missing+=("${tool_package[$tool]}")
done
if ((${#missing[@]})); then
  log "installing build tools: ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
export PATH=$PATH:/sbin:/usr/sbin

# --- Cache --------------------------------------------------------------------
stamp_of_inputs() {
  {
    cat "${BASH_SOURCE[0]}"
    (cd "$guest" && find . -type f | LC_ALL=C sort | xargs cat)
    apt-cache policy linux-image-cloud-amd64 busybox-static dropbear-bin 2>/dev/null | grep -i candidate
  } | sha256sum | cut -d' ' -f1
}
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
  log 'updating the package lists'
  apt-get update -qq >&2
fi
# One build at a time per OUT_FILE (tests and `stratus up` may start at once).
mkdir -p "$out_dir"
exec 9>"$out.lock"
flock 9
stamp=$(stamp_of_inputs)
if [[ -z ${STRATUS_IMAGE_REBUILD:-} && -f $out && -f $probe_kernel && -f $probe_initrd &&
      "$(cat "$out.stamp" 2>/dev/null)" == "$stamp" ]]; then
  log "up to date: $out"
  echo "$out"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stratus-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/x" "$work/root" "$out_dir"

# --- Packages -----------------------------------------------------------------
kernel_package=$(apt-cache depends linux-image-cloud-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
if [[ -z $kernel_package ]]; then
  log 'cannot find the kernel package that linux-image-cloud-amd64 depends on'
  exit 1
fi
kernel_version=${kernel_package#linux-image-}
packages=("$kernel_package" busybox-static dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g)
log "downloading ${packages[*]}"
download() { (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root "${packages[@]}" >&2); }
if ! download; then
  # Stale package lists name versions the mirror no longer has.
  log 'updating the package lists and retrying'
  apt-get update -qq >&2
  kernel_package=$(apt-cache depends linux-image-cloud-amd64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
  kernel_version=${kernel_package#linux-image-}
  packages[0]=$kernel_package
  download
fi
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
x=$work/x
kernel=$x/boot/vmlinuz-$kernel_version
moddir=$x/lib/modules/$kernel_version

# --- Initramfs ----------------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/stratus,etc/acpi/PWRF,etc/dropbear,dev,proc,sys,run,tmp,mnt,root,var/log,lib/modules,lib/x86_64-linux-gnu,lib64}
chmod 700 "$root/root"
chmod 1777 "$root/tmp"
ln -s /run "$root/var/run"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

install -m 755 "$x/bin/busybox" "$root/bin/busybox"
"$root/bin/busybox" --list-full | while read -r applet; do
  [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done

# dropbear and the shared libraries it needs, resolved by the packages' own loader.
install -m 755 "$x/usr/sbin/dropbear" "$root/usr/sbin/dropbear"
install -m 755 "$x/usr/bin/dropbearkey" "$root/usr/bin/dropbearkey"
loader=$x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[[ -f $loader ]] || loader=$x/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
libpath=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
for bin in "$root/usr/sbin/dropbear" "$root/usr/bin/dropbearkey"; do
  "$loader" --library-path "$libpath" --list "$bin"
done | awk '$2 == "=>" && $1 !~ /^\// { print $1, $3 }' | sort -u | while read -r soname path; do
  if [[ $path != "$x"/* ]]; then
    log "$soname is not in the downloaded packages ($path)"
    exit 1
  fi
  cp -L "$path" "$root/lib/x86_64-linux-gnu/$soname"
done
cp -L "$loader" "$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"

# Kernel modules with their dependencies, in load order (dependencies first),
# uncompressed (newer Debian kernels ship .ko.xz or .ko.zst).
declare -A module_file=() loaded=()
while read -r file; do
  name=$(basename "$file")
  name=${name%%.ko*}
  module_file[${name//-/_}]=$file
done < <(cd "$moddir" && find kernel -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
add_module() { # NAME LIST: appends NAME's dependencies, then NAME, to LIST
  local name=${1//-/_} file ko dep
  [[ -n ${loaded[$name]:-} ]] && return 0
  loaded[$name]=1
  file=${module_file[$name]:-}
  if [[ -z $file ]]; then
    # Built into the kernel, or not in it at all.
    grep -q "/${1}.ko\|/${name}.ko" "$moddir/modules.builtin" || log "no module $1 in $kernel_package (skipped)"
    return 0
  fi
  ko=$(basename "$file")
  ko=${ko%%.ko*}.ko
  case $file in
    *.xz) xz -dc "$moddir/$file" ;;
    *.zst) zstd -qdc "$moddir/$file" ;;
    *.gz) gzip -dc "$moddir/$file" ;;
    *) cat "$moddir/$file" ;;
  esac >"$root/lib/modules/$ko"
  for dep in $(tr '\0' '\n' <"$root/lib/modules/$ko" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '); do
    add_module "$dep" "$2"
  done
  case $name in
    scsi_mod) echo "$ko scan=sync" ;;
    *) echo "$ko" ;;
  esac >>"$2"
}
: >"$root/lib/modules/load.list"
for module in "${modules[@]}"; do add_module "$module" "$root/lib/modules/load.list"; done

# The guest's own files.
install -m 755 "$guest/init" "$root/init"
install -m 644 "$guest/lib.sh" "$guest/json.awk" "$root/etc/stratus/"
install -m 755 "$guest/udhcpc.sh" "$guest/watch.sh" "$guest/power-button.sh" "$root/etc/stratus/"
install -m 644 "$guest/inittab" "$root/etc/inittab"
# sudo, curl and blkid -L as test tools (Tempest's remote client) use them on CirrOS.
rm -f "$root/usr/bin/sudo" "$root/usr/bin/curl" "$root/sbin/blkid"
install -m 755 "$guest/tools/sudo" "$guest/tools/curl" "$root/usr/bin/"
install -m 755 "$guest/tools/blkid" "$root/sbin/blkid"
ln -s /etc/stratus/power-button.sh "$root/etc/acpi/PWRF/00000080"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534:sshd:/run:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
chmod 600 "$root/etc/shadow"
echo /bin/sh >"$root/etc/shells"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
echo localhost >"$root/etc/hostname"
: >"$root/etc/resolv.conf"

# A fixed time and order make the archive the same from the same inputs.
# zstd: smaller than gzip and faster for the kernel to unpack (under TCG too).
make_cpio() { # DIR OUT
  find "$1" -exec touch -h -d @946684800 {} +
  (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | zstd -q -19 -T0 >"$2"
}
make_cpio "$root" "$work/initrd.zst"

# --- Probe initramfs ----------------------------------------------------------
probe=$work/probe
mkdir -p "$probe"/{bin,dev,proc,sys}
install -m 755 "$x/bin/busybox" "$probe/bin/busybox"
ln -s busybox "$probe/bin/sh"
mknod -m 600 "$probe/dev/console" c 5 1
install -m 755 "$guest/probe-init" "$probe/init"
make_cpio "$probe" "$work/probe-initrd"

# --- Boot disk ----------------------------------------------------------------
# FAT on the whole disk (no partition table), syslinux in its boot sector.
cat >"$work/syslinux.cfg" <<EOF
DEFAULT stratus
PROMPT 0
TIMEOUT 0
LABEL stratus
  LINUX /vmlinuz
  INITRD /initrd.zst
  APPEND $kernel_cmdline
EOF
bytes=$(( $(stat -c %s "$kernel") + $(stat -c %s "$work/initrd.zst") ))
size_kib=$(( (bytes / 1024 * 105 / 100 / 1024 + 2) * 1024 ))
img=$work/disk.raw
mkfs.vfat --invariant -C -n STRATUS -i 5354524e "$img" "$size_kib" >/dev/null
touch -d @946684800 "$kernel" "$work/initrd.zst" "$work/syslinux.cfg"
mcopy -m -i "$img" "$kernel" ::/vmlinuz
mcopy -m -i "$img" "$work/initrd.zst" ::/initrd.zst
mcopy -m -i "$img" "$work/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$img"

qemu-img convert -q -f raw -O qcow2 "$img" "$out.tmp"
mv -f "$out.tmp" "$out"
cp "$kernel" "$probe_kernel.tmp" && mv -f "$probe_kernel.tmp" "$probe_kernel"
cp "$work/probe-initrd" "$probe_initrd.tmp" && mv -f "$probe_initrd.tmp" "$probe_initrd"
echo "$stamp" >"$out.stamp"

log "kernel $kernel_version, initramfs $(( $(stat -c %s "$work/initrd.zst") / 1024 )) KiB, disk $(( $(stat -c %s "$out") / 1024 )) KiB"
log "wrote $out, $probe_kernel, $probe_initrd"
echo "$out"
