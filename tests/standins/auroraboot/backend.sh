#!/bin/sh
# STAND-IN back-end of quay.io/kairos/auroraboot, for offline tests and demos
# only. The Go front-end (main.go) parses the command line as upstream does
# (contract.yaml) and passes the values as KDT_COMMAND, KDT_GLOBAL_* and
# KDT_FLAG_* variables; the positional argument (source or NAME) is $1.
# It is not AuroraBoot; it honours the contract the pipeline relies on (flags,
# the `docker:<image>` source read from the local engine through the mounted
# socket, files written, output names), built from Debian packages:
#
# - `build-iso`: kairos-<FLAVOR>-...-<VERSION>[-<prefix><k8s>].iso plus
#   <iso>.sha256. The ISO boots the image's kernel and initrd with GRUB:
#   BIOS (i386-pc) for amd64 images, UEFI only (arm64-efi) for arm64 ones.
# - legacy mode (no subcommand) with `--set disk.efi=true` (or its old name
#   `disk.raw=true`), `--set container_image=docker:<image>`,
#   `--set state_dir=DIR`: DIR/kairos-...-<VERSION>[...].raw, a GPT disk image
#   with partitions efi (FAT, COS_GRUB: kernel, initrd, EFI/BOOT/grub.cfg),
#   oem (ext4, COS_OEM: 90_custom.yaml from --cloud-config) and recovery
#   (ext4, COS_RECOVERY: a placeholder, not the rootfs). No .sha256. Works for
#   images of any arch: files are read out of a container that never starts.
# - `build-uki`: a UKI (systemd-boot's stub + .osrel/.cmdline/.pcrpkey/
#   .initrd/.linux) signed with --sb-key/--sb-cert, a signed systemd-boot as
#   EFI/BOOT/BOOTX64.EFI, the .auth files of --public-keys for systemd-boot's
#   auto-enrolment, in an ESP inside kairos-<name>-uki.iso (or the ESP tree
#   with --output-type uki). amd64 only. No .pcrsig: the TPM PCR policy is not
#   signed, only its public key is embedded.
# - `genkey`: PK, KEK, db (.key .pem .der .esl .auth) and tpm2-pcr-private.pem.
#   Microsoft's KEK/db certificates are never included (the stand-in does not
#   ship them), so the flag that skips them changes nothing here.
set -eu
LC_ALL=C MTOOLS_SKIP_CHECK=1
export LC_ALL MTOOLS_SKIP_CHECK

say() { echo "auroraboot STAND-IN: $*"; }
die() { echo "auroraboot STAND-IN: error: $*" >&2; exit 1; }
SOCK=/var/run/docker.sock

api() { curl -fsS --unix-socket "$SOCK" "$@"; }

# Run a noisy tool; show its output only when it fails (never key material:
# none of the tools used prints keys).
quiet() {
  if ! "$@" > "$work/tool.log" 2>&1; then
    cat "$work/tool.log" >&2
    die "$1 failed"
  fi
}

# `--set standin.fault=X` is a stand-in-only test hook: it adds
# standin.fault=X to the kernel cmdline.
FAULT="" GLOBAL_CLOUD="${KDT_GLOBAL_CLOUD_CONFIG:-}" SETS="${KDT_GLOBAL_SET:-}"
CONTAINER_IMAGE="" STATE_DIR="" DISK_EFI=false NO_HTTP=false NO_NETBOOT=false

# The settings, one a line. build-iso only looks at standin.fault (as
# before); legacy mode validates every key.
LEGACY_BAD=""
while IFS= read -r setting; do
  case "$setting" in
    '') ;;
    standin.fault=*) FAULT="${setting#standin.fault=}" ;;
    container_image=*) CONTAINER_IMAGE="${setting#*=}" ;;
    state_dir=*) STATE_DIR="${setting#*=}" ;;
    disk.efi=true|disk.raw=true) DISK_EFI=true ;;
    disk.efi=false|disk.raw=false) DISK_EFI=false ;;
    disable_http_server=true) NO_HTTP=true ;;
    disable_netboot=true) NO_NETBOOT=true ;;
    *) [ -n "$LEGACY_BAD" ] || LEGACY_BAD="$setting" ;;
  esac
done <<SETS
$SETS
SETS
case "$FAULT" in *[!a-z]*) die "invalid standin.fault" ;; esac

valid_image() {
  case "$1" in
    ''|*[!A-Za-z0-9._:/@+-]*) die "invalid image reference" ;;
  esac
}

# Artifact names end up as file names: one path component, plain characters.
valid_name() {
  case "$1" in
    ''|.*|-*|*[!A-Za-z0-9._+-]*) die "invalid artifact name '$1'" ;;
  esac
}

# `open_image IMAGE`: a container of IMAGE that is created, never started, so
# any architecture works; removed (with $work) on exit.
open_image() {
  valid_image "$1"
  [ -S "$SOCK" ] || die "mount the Docker socket at $SOCK"
  say "reading $1 from the local engine"
  id=$(api -X POST -H 'Content-Type: application/json' \
    -d "{\"Image\":\"$1\",\"Cmd\":[\"/bin/true\"]}" http://localhost/containers/create |
    sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
  [ -n "$id" ] || die "image $1 not found in the local engine"
  trap 'api -X DELETE "http://localhost/containers/$id?force=1" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  api "http://localhost/containers/$id/archive?path=/boot" 2>/dev/null |
    tar -x -C "$work" 2>/dev/null || die "$1 has no /boot"
  api "http://localhost/containers/$id/archive?path=/etc/kairos-release" 2>/dev/null |
    tar -x -C "$work" 2>/dev/null || die "$1 has no /etc/kairos-release"
  [ -f "$work/kairos-release" ] || die "$1 has no /etc/kairos-release"
}

# `image_file PATH DEST`: a regular file of the image (one level of symlink
# followed, e.g. /etc/os-release -> ../usr/lib/os-release); false if none.
image_file() {
  rm -rf "$work/one" && mkdir "$work/one"
  api "http://localhost/containers/$id/archive?path=$1" 2>/dev/null | tar -x -C "$work/one" 2>/dev/null || return 1
  f="$work/one/${1##*/}"
  if [ -L "$f" ]; then
    target=$(readlink "$f")
    case "$target" in /*) ;; *) target="${1%/*}/$target" ;; esac
    case "$target" in *[!A-Za-z0-9._/-]*) return 1 ;; esac
    rm -rf "$work/one" && mkdir "$work/one"
    api "http://localhost/containers/$id/archive?path=$target" 2>/dev/null | tar -x -C "$work/one" 2>/dev/null || return 1
    f="$work/one/${target##*/}"
  fi
  [ -f "$f" ] && [ ! -L "$f" ] || return 1
  mv "$f" "$2"
}

# `boot_file NAME`: /boot/NAME of the image, following a symlink to a
# file in /boot (as kernels usually are: vmlinuz -> vmlinuz-6.1.0-...).
boot_file() {
  f="$work/boot/$1"
  if [ -L "$f" ]; then
    f="$work/boot/$(basename "$(readlink "$f")")"
  fi
  [ -f "$f" ] && [ ! -L "$f" ] || return 1
  echo "$f"
}

get() { sed -n "s/^KAIROS_$1=\"\(.*\)\"$/\1/p" "$work/kairos-release"; }
image_arch() {
  a=$(get ARCH)
  [ -n "$a" ] || a=$(get TARGETARCH)
  echo "$a"
}
# The artifact base name from the image's kairos-release, like upstream's
# NameFromRootfs with the kairos- prefix.
base_name() {
  n="kairos-$(get FLAVOR)-$(get FLAVOR_RELEASE)-$(get VARIANT)-$(image_arch)-$(get MODEL)-$(get VERSION)"
  if [ "$(get VARIANT)" = standard ]; then n="$n-$(get SOFTWARE_VERSION_PREFIX)$(get SOFTWARE_VERSION)"; fi
  echo "$n"
}

mib() { echo $(( ($1 + 1048575) / 1048576 )); }

# ---------------------------------------------------------------- build-iso
build_iso() {
  OUTPUT="$KDT_FLAG_OUTPUT" NAME="$KDT_FLAG_OVERRIDE_NAME" CLOUD="$KDT_FLAG_CLOUD_CONFIG"
  ARCH="${KDT_FLAG_ARCH:-amd64}"  # upstream: the host's arch when unset
  [ -n "$OUTPUT" ] || die "--output is required"
  case "$ARCH" in amd64|arm64) ;; *) die "stand-in builds amd64 and arm64 ISOs only, not $ARCH" ;; esac
  case "$1" in
    docker:*) IMAGE="${1#docker:}" ;;
    *) die "stand-in reads docker:<image> sources only" ;;
  esac
  open_image "$IMAGE"
  # Like upstream (copyGrub: GetArchFromRootfs), the image's arch picks the
  # boot loader; --arch only says which platform to pull.
  case "$(image_arch)" in
    amd64) grub_target=i386-pc console=ttyS0 ;;  # BIOS GRUB, as before
    # EFI only, like upstream's arm64 ISOs (an El Torito EFI image with
    # EFI/BOOT/BOOTAA64.EFI); the PL011 UART of QEMU's virt machine is ttyAMA0.
    arm64) grub_target=arm64-efi console=ttyAMA0 ;;
    *) die "stand-in builds amd64 and arm64 ISOs only (image says '$(image_arch)')" ;;
  esac
  [ -n "$NAME" ] || NAME=$(base_name)
  valid_name "$NAME"

  iso="$work/iso"
  mkdir -p "$iso/boot/grub"
  cp "$work/boot/vmlinuz" "$iso/boot/kernel"
  cp "$work/boot/initrd" "$iso/boot/initrd"
  [ -z "$CLOUD" ] || cp "$CLOUD" "$iso/cloud-config.yaml"
  # On EFI the firmware's console already is the serial port.
  [ "$grub_target" = arm64-efi ] || cat > "$iso/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
CFG
  cat >> "$iso/boot/grub/grub.cfg" <<CFG
set timeout=0
menuentry "Kairos (stand-in live)" {
  linux /boot/kernel console=$console quiet rd.live.image ${FAULT:+standin.fault=$FAULT}
  initrd /boot/initrd
}
CFG
  say "writing $NAME.iso"
  mkdir -p "$OUTPUT"
  quiet grub-mkrescue -d "/usr/lib/grub/$grub_target" -o "$OUTPUT/$NAME.iso" "$iso"
  (cd "$OUTPUT" && sha256sum "$NAME.iso" > "$NAME.iso.sha256")
  say "done"
}

# ---------------------------------------------------------------- raw disk
# Upstream (ops/rawDiskGeneration.go) lays out efi, oem, recovery partitions
# from 1 MiB on and leaves the state/persistent ones to the first boot. The
# stand-in keeps the layout but puts the kernel and initrd in the ESP and no
# rootfs in recovery, so the file stays small.
raw_disk() {
  [ -z "$LEGACY_BAD" ] || die "stand-in legacy mode does not support --set $LEGACY_BAD"
  [ "$DISK_EFI" = true ] || die "stand-in legacy mode makes raw disks only: set disk.efi=true"
  [ "$NO_NETBOOT" = true ] && [ "$NO_HTTP" = true ] ||
    die "stand-in serves nothing: set disable_netboot=true and disable_http_server=true"
  case "$CONTAINER_IMAGE" in
    docker:*) IMAGE="${CONTAINER_IMAGE#docker:}" ;;
    '') die "set container_image=docker:<image>" ;;
    *) die "stand-in reads docker:<image> sources only" ;;
  esac
  case "$STATE_DIR" in
    /*) ;;
    *) die "state_dir must be an absolute directory" ;;
  esac
  if [ -n "$GLOBAL_CLOUD" ]; then
    case "$GLOBAL_CLOUD" in
      *://*) die "stand-in reads --cloud-config from a file only" ;;
    esac
    [ -f "$GLOBAL_CLOUD" ] && [ -r "$GLOBAL_CLOUD" ] || die "$GLOBAL_CLOUD not found"
  fi
  open_image "$IMAGE"
  NAME=$(base_name)
  valid_name "$NAME"
  kernel=$(boot_file vmlinuz) || die "$IMAGE has no /boot/vmlinuz"
  initrd=$(boot_file initrd) || die "$IMAGE has no /boot/initrd"
  arch=$(image_arch)
  case "$arch" in
    amd64) efi_arch=x64 ;; arm64) efi_arch=aa64 ;; riscv64) efi_arch=riscv64 ;;
    *) die "unknown KAIROS_ARCH '$arch'" ;;
  esac

  # EFI system partition: FAT, label COS_GRUB.
  esp="$work/esp"
  mkdir -p "$esp/EFI/BOOT" "$esp/boot"
  cp "$kernel" "$esp/boot/vmlinuz"
  cp "$initrd" "$esp/boot/initrd"
  cat > "$esp/EFI/BOOT/grub.cfg" <<CFG
# Kairos STAND-IN raw disk ($efi_arch): no boot loader binary is installed.
set timeout=0
menuentry "Kairos (stand-in)" {
  search --no-floppy --label --set=root COS_GRUB
  linux /boot/vmlinuz console=ttyS0 rd.immucore.oemlabel=COS_OEM
  initrd /boot/initrd
}
CFG
  esp_size=$(( $(mib $(( $(stat -c %s "$kernel") + $(stat -c %s "$initrd") ))) + 4 ))
  [ "$esp_size" -ge 8 ] || esp_size=8
  truncate -s "${esp_size}M" "$work/esp.img"
  quiet mkfs.vfat -n COS_GRUB "$work/esp.img"
  quiet mcopy -s -i "$work/esp.img" "$esp/EFI" "$esp/boot" ::/

  # OEM: ext4, label COS_OEM, the cloud-config as 90_custom.yaml.
  oem="$work/oem"
  mkdir -p "$oem"
  if [ -n "$GLOBAL_CLOUD" ]; then
    cp "$GLOBAL_CLOUD" "$oem/90_custom.yaml"
    chmod 0600 "$oem/90_custom.yaml"
  fi
  oem_size=$(( $(mib $(du -sb "$oem" | cut -f1)) + 8 ))
  truncate -s "${oem_size}M" "$work/oem.img"
  quiet mkfs.ext4 -q -F -L COS_OEM -E root_owner=0:0 -d "$oem" "$work/oem.img"

  # Recovery: ext4, label COS_RECOVERY; upstream holds the rootfs here.
  rec="$work/recovery"
  mkdir -p "$rec/cOS"
  echo "Kairos STAND-IN: no recovery system on this disk" > "$rec/cOS/README"
  truncate -s 8M "$work/recovery.img"
  quiet mkfs.ext4 -q -F -L COS_RECOVERY -E root_owner=0:0 -d "$rec" "$work/recovery.img"

  # The disk: 1 MiB for the GPT, the partitions, 1 MiB for the backup GPT.
  oem_start=$(( 1 + esp_size ))
  rec_start=$(( oem_start + oem_size ))
  total=$(( rec_start + 8 + 1 ))
  raw="$work/disk.raw"
  truncate -s "${total}M" "$raw"
  quiet sfdisk --no-reread --no-tell-kernel "$raw" <<TABLE
label: gpt
start=1MiB, size=${esp_size}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="efi", attrs="RequiredPartition"
start=${oem_start}MiB, size=${oem_size}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="oem"
start=${rec_start}MiB, size=8MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="recovery"
TABLE
  dd if="$work/esp.img" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$work/oem.img" of="$raw" bs=1M seek="$oem_start" conv=notrunc,sparse status=none
  dd if="$work/recovery.img" of="$raw" bs=1M seek="$rec_start" conv=notrunc,sparse status=none

  say "writing $NAME.raw"
  mkdir -p "$STATE_DIR"
  cp --sparse=always "$raw" "$STATE_DIR/$NAME.raw"
  say "done"
}

# ---------------------------------------------------------------- build-uki
# Upstream's default cmdline for the install entry, with the serial console
# last so the live system's /dev/console is the serial port (tests read it).
UKI_CMDLINE="console=tty1 console=ttyS0 net.ifnames=1 rd.immucore.oemlabel=COS_OEM rd.immucore.oemtimeout=2 rd.immucore.uki selinux=0 panic=5 rd.shell=0 systemd.crash_reboot=yes install-mode"
# Upstream bundles its own systemd-boot (pkg/constants: /amd/systemd-boot/),
# not the image's; the stand-in bundles Debian's bookworm-backports build (254),
# new enough for `secure-boot-enroll if-safe` (253 and later).
SD_EFI=/amd/systemd-boot

# `need_file PATH`: an existing regular file, or one line naming it.
need_file() {
  case "$1" in
    *pkcs11:*) die "stand-in signs with PEM files only, not $1" ;;
  esac
  [ -f "$1" ] || die "$1 not found"
  [ -r "$1" ] || die "$1 is not readable"
}

# `uki_initrd OUT`: as upstream (pkg/uki/uki.go at kairos-io/AuroraBoot
# fa85123: /boot removed, setupDirectoriesAndFiles, createInitramfs), the whole
# image filesystem is the initrd, without sys, run, dev, tmp and proc, with
# /init a link to /usr/bin/immucore and /oem, /efi, /usr/local/cloud-config
# made; a zstd-compressed newc cpio. Never the image's own /boot/initrd.
uki_initrd() {
  say "packing the image's filesystem as the initrd"
  mkdir "$work/rootfs"
  api "http://localhost/containers/$id/export" |
    tar -x -C "$work/rootfs" --anchored --exclude=boot --exclude=sys --exclude=run \
      --exclude=dev --exclude=tmp --exclude=proc 2>/dev/null || die "exporting the image failed"
  (cd "$work/rootfs" && rm -f init && ln -s /usr/bin/immucore init &&
    mkdir -p oem efi usr/local/cloud-config)
  (cd "$work/rootfs" && find . -mindepth 1 | cpio -o -H newc --quiet | zstd -q -3 -T0) > "$1" ||
    die "packing the initrd failed"
  rm -rf "$work/rootfs"
}

# `add_sections OUT STUB NAME=FILE...`: the stub with sections appended at
# VMAs after its last one, aligned to 4 KiB (the systemd-stub recipe).
add_sections() {
  out="$1" stub="$2"
  shift 2
  next=0
  for pair in $(objdump -h "$stub" | awk '$1 ~ /^[0-9]+$/ && NF == 7 { print $3 ":" $4 }'); do
    end=$(( 0x${pair#*:} + 0x${pair%:*} ))
    [ "$end" -le "$next" ] || next=$end
  done
  [ "$next" -gt 0 ] || die "cannot read the sections of $stub"
  count=$#
  for section in "$@"; do
    sname="${section%%=*}" sfile="${section#*=}"
    next=$(( (next + 4095) / 4096 * 4096 ))
    set -- "$@" --add-section "$sname=$sfile" --change-section-vma "$sname=$(printf '0x%x' "$next")"
    next=$(( next + $(stat -c %s "$sfile") ))
  done
  shift "$count"
  quiet objcopy "$@" "$stub" "$out"
}

build_uki() {
  OUTPUT="$KDT_FLAG_OUTPUT_DIR" TYPE="$KDT_FLAG_OUTPUT_TYPE" KEYS="$KDT_FLAG_PUBLIC_KEYS"
  PCR_KEY="$KDT_FLAG_TPM_PCR_PRIVATE_KEY" SB_KEY="$KDT_FLAG_SB_KEY" SB_CERT="$KDT_FLAG_SB_CERT"
  NAME="$KDT_FLAG_NAME" EXTEND="$KDT_FLAG_EXTEND_CMDLINE"
  ENROLL="$KDT_FLAG_SECURE_BOOT_ENROLL" BRANDING="$KDT_FLAG_BOOT_BRANDING"
  case "$TYPE" in
    iso|uki) ;;
    container) die "stand-in does not make --output-type container" ;;
    *) die "invalid output type: $TYPE" ;;
  esac
  case "$ENROLL" in off|manual|if-safe|force) ;; *) die "invalid --secure-boot-enroll $ENROLL" ;; esac
  case "$EXTEND$BRANDING" in *[!\ -~]*) die "cmdline and branding must be printable ASCII" ;; esac
  [ -n "$PCR_KEY" ] || die "--tpm-pcr-private-key is required"
  [ -n "$SB_KEY" ] || die "--sb-key is required"
  [ -n "$SB_CERT" ] || die "--sb-cert is required"
  need_file "$PCR_KEY"
  need_file "$SB_KEY"
  need_file "$SB_CERT"
  if [ -n "$KEYS" ]; then
    [ -d "$KEYS" ] || die "$KEYS not found"
    for f in PK.auth KEK.auth db.auth; do need_file "$KEYS/$f"; done
  else
    say "warning: no --public-keys: Secure Boot auto-enrolment will not work"
  fi
  case "$1" in
    docker:*) IMAGE="${1#docker:}" ;;
    *) die "stand-in reads docker:<image> sources only" ;;
  esac
  [ -z "$NAME" ] || valid_name "$NAME"

  open_image "$IMAGE"
  [ "$(image_arch)" = amd64 ] || die "stand-in builds amd64 UKIs only (image says '$(image_arch)')"
  base=$(base_name)
  valid_name "$base"
  kernel=$(boot_file vmlinuz) || die "$IMAGE has no /boot/vmlinuz"

  u="$work/uki"
  mkdir -p "$u"
  cp "$kernel" "$u/linux"
  uki_initrd "$u/initrd"
  if ! image_file /etc/os-release "$u/osrel"; then
    printf 'NAME="%s"\nID=kairos\nVERSION_ID=%s\n' "$BRANDING" "$(get VERSION)" > "$u/osrel"
  fi
  printf '%s' "$UKI_CMDLINE${EXTEND:+ $EXTEND}" > "$u/cmdline"
  openssl pkey -in "$PCR_KEY" -pubout -out "$u/pcrpkey" 2>/dev/null ||
    die "$PCR_KEY is not a private key"
  openssl x509 -in "$SB_CERT" -noout 2>/dev/null || die "$SB_CERT is not a PEM certificate"
  openssl pkey -in "$SB_KEY" -noout 2>/dev/null || die "$SB_KEY is not a private key"

  say "building the UKI for $base"
  add_sections "$u/unsigned.efi" "$SD_EFI/linuxx64.efi.stub" \
    .osrel="$u/osrel" .cmdline="$u/cmdline" .pcrpkey="$u/pcrpkey" \
    .initrd="$u/initrd" .linux="$u/linux"

  esp="$work/esp"
  mkdir -p "$esp/EFI/BOOT" "$esp/EFI/Linux" "$esp/loader/keys/auto"
  say "signing with $SB_CERT"
  quiet sbsign --key "$SB_KEY" --cert "$SB_CERT" --output "$esp/EFI/Linux/$base.efi" "$u/unsigned.efi"
  quiet sbsign --key "$SB_KEY" --cert "$SB_CERT" --output "$esp/EFI/BOOT/BOOTX64.EFI" "$SD_EFI/systemd-bootx64.efi"
  # if-safe (upstream's default) enrolls the auto keys in a VM only.
  printf 'timeout 5\nconsole-mode max\neditor no\nsecure-boot-enroll %s\n' "$ENROLL" > "$esp/loader/loader.conf"
  if [ -n "$KEYS" ]; then
    for f in PK.auth KEK.auth db.auth; do cp "$KEYS/$f" "$esp/loader/keys/auto/$f"; done
  fi
  mkdir -p "$OUTPUT"

  if [ "$TYPE" = uki ]; then
    say "writing the ESP files to $OUTPUT"
    cp -r "$esp/EFI" "$esp/loader" "$OUTPUT/"
    say "done"
    return
  fi

  isodir="$work/isodir"
  mkdir -p "$isodir"
  img="$isodir/efiboot.img"
  img_size=$(( $(mib $(du -sb "$esp" | cut -f1)) + 2 ))
  truncate -s "${img_size}M" "$img"
  quiet mkfs.vfat -n UKI_ESP "$img"
  quiet mcopy -s -i "$img" "$esp/EFI" "$esp/loader" ::/
  # Like upstream: kairos-<NameFromRootfs>-uki.iso, or <name>.iso with --name.
  iso_name="$base-uki.iso"
  [ -z "$NAME" ] || iso_name="$NAME.iso"
  say "writing $iso_name"
  quiet xorriso -as mkisofs -V UKI_ISO_INSTALL -isohybrid-gpt-basdat \
    -e efiboot.img -no-emul-boot -o "$OUTPUT/$iso_name" "$isodir"
  say "done"
}

# ---------------------------------------------------------------- genkey
genkey() {
  OUTPUT="$KDT_FLAG_OUTPUT" DAYS="$KDT_FLAG_EXPIRATION_IN_DAYS"
  name="$1"
  case "$name" in
    ''|-*|*[!A-Za-z0-9._-]*) die "invalid key name '$name'" ;;
  esac
  case "$DAYS" in
    ''|*[!0-9]*|0*) die "invalid --expiration-in-days '$DAYS'" ;;
  esac
  [ "${#DAYS}" -le 5 ] || die "invalid --expiration-in-days '$DAYS'"
  [ -n "$OUTPUT" ] || die "output not set"
  umask 077
  mkdir -p "$OUTPUT"
  say "Microsoft certificates are not included (a stand-in does not ship them)"
  guid=$(cat /proc/sys/kernel/random/uuid)
  for t in PK KEK db; do
    say "generating $t"
    quiet openssl req -new -x509 -newkey rsa:2048 -sha256 -nodes -subj "/CN=$name-$t/" \
      -days "$DAYS" -keyout "$OUTPUT/$t.key" -out "$OUTPUT/$t.pem"
    quiet openssl x509 -outform DER -in "$OUTPUT/$t.pem" -out "$OUTPUT/$t.der"
    quiet cert-to-efi-sig-list -g "$guid" "$OUTPUT/$t.pem" "$OUTPUT/$t.esl"
    # PK signs itself and KEK; KEK signs db.
    signer=PK
    [ "$t" != db ] || signer=KEK
    quiet sign-efi-sig-list -g "$guid" -k "$OUTPUT/$signer.key" -c "$OUTPUT/$signer.pem" \
      "$t" "$OUTPUT/$t.esl" "$OUTPUT/$t.auth"
    chmod 0600 "$OUTPUT/$t.key"
    chmod 0644 "$OUTPUT/$t.pem" "$OUTPUT/$t.der" "$OUTPUT/$t.esl" "$OUTPUT/$t.auth"
  done
  say "generating the TPM PCR policy key"
  quiet openssl genrsa -out "$OUTPUT/tpm2-pcr-private.pem" 2048
  chmod 0600 "$OUTPUT/tpm2-pcr-private.pem"
  say "done"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$KDT_COMMAND" in
  build-iso) build_iso "$@" ;;
  build-uki) build_uki "$@" ;;
  genkey) genkey "$@" ;;
  '') raw_disk ;;
  *) die "unknown command '$KDT_COMMAND'" ;;
esac
