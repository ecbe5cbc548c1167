#!/bin/sh
# STAND-IN back-end of quay.io/kairos/kairos-init, for offline tests and demos
# only; run by the Go front-end (main.go) after it parsed the flags as upstream
# does. It makes a Debian-family base bootable (kernel + busybox initrd with
# dropbear) and installs what `kairos-init validate` checks for (validate.go):
# sudo, less, mount.nfs, systemd (getty.target), dracut-core (lsinitrd), a
# kernel under /lib/modules, and stand-in scripts for the Kairos binaries. It
# is not Kairos. Input: KDT_STAGE, KDT_ARCH, KDT_MODEL, KDT_TRUSTED,
# KDT_PROVIDER, KDT_PROVIDER_VERSION, KDT_RELEASE (the /etc/kairos-release text).
set -eu

say() { echo "kairos-init STAND-IN: $*"; }
die() { echo "kairos-init STAND-IN: error: $*" >&2; exit 1; }

STAGE="$KDT_STAGE" ARCH="$KDT_ARCH" MODEL="$KDT_MODEL" TRUSTED="$KDT_TRUSTED"
PROVIDER="$KDT_PROVIDER" PROVIDER_VERSION="$KDT_PROVIDER_VERSION"
command -v apt-get >/dev/null || die "the stand-in converts Debian-family bases only"

# Debian packages from upstream's package map (values/packagemaps.go):
# systemd, sudo, less, nfs-common; dracut-core brings lsinitrd (upstream
# installs dracut). busybox-static and dropbear-bin make the live system.
PACKAGES="busybox-static dropbear-bin systemd sudo less nfs-common dracut-core"

install_stage() {
  say "install stage (Debian packages: $PACKAGES, kernel $ARCH)"
  export DEBIAN_FRONTEND=noninteractive
  # As upstream's "Install base packages" step: yip's Packages with Refresh and
  # Upgrade, run in that order before Install (kairos-init
  # pkg/stages/steps_install.go at kairos-io/kairos ca022425; mudler/yip
  # pkg/plugins/packages.go at 9673f46: apt-get -y update, apt-get -y upgrade,
  # apt-get -y --no-install-recommends install). So every installed package
  # is at its mirror's candidate, which the freshness probe relies on.
  apt-get -y -qq update
  apt-get -y -qq upgrade >/dev/null
  apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  pkg=$(apt-cache depends "linux-image-$ARCH" | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
  [ -n "$pkg" ] || die "no kernel package for $ARCH"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq "$pkg")
  dpkg-deb -x "$work"/*.deb "$work/x"
  cp "$work"/x/boot/vmlinuz-* /boot/vmlinuz
  # Only the NIC modules the live system loads, under /lib/modules/<kernel>
  # (validate's kernel check reads that directory).
  kver=$(ls "$work/x/lib/modules")
  mkdir -p "/lib/modules/$kver/standin"
  # virtio_net needs virtio_pci, which Debian's arm64 kernel builds as modules
  # (CONFIG_VIRTIO_PCI=m, with virtio_pci_{legacy,modern}_dev); only virtio
  # and virtio_ring are built in there. QEMU's virt machine has no e1000.
  # efivarfs is a module in Debian's kernels: the Secure Boot state and the
  # boot loader's variables are read from it.
  find "$work/x/lib/modules" \( -name 'e1000.ko*' -o -name 'failover.ko*' -o -name 'net_failover.ko*' -o -name 'virtio_net.ko*' -o -name 'virtio_pci*.ko*' -o -name 'efivarfs.ko*' \) \
    -exec cp {} "/lib/modules/$kver/standin/" \;
  rm -rf "$work" /var/lib/apt/lists/*
  # No SSH host keys may ship in the image (validate); none are made here.
  rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
  apt-get clean
}

kairos_release() {
  printf '%s' "$KDT_RELEASE" > /etc/kairos-release
}

initrd() {
  say "building /boot/initrd (busybox)"
  root=$(mktemp -d)
  chmod 0755 "$root"  # the live system's / must be world-readable
  mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/etc" "$root/run" "$root/lib/modules"
  cp /bin/busybox "$root/bin/busybox"
  for applet in sh mount umount cat echo sleep seq insmod ip mkdir ln grep mkpasswd; do
    ln -s busybox "$root/bin/$applet"
  done
  # dropbear with the shared libraries it links, so SSH works in the live system
  mkdir -p "$root/usr/sbin" "$root/usr/bin"
  cp /usr/sbin/dropbear /usr/bin/dropbearkey "$root/usr/sbin/"
  for lib in $(ldd /usr/sbin/dropbear /usr/bin/dropbearkey | grep -o '/[^ :]*\.so[.0-9]*' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp /usr/bin/kairos-agent /usr/bin/immucore "$root/usr/bin/"
  [ -z "$PROVIDER" ] || cp "/usr/bin/$PROVIDER" "$root/usr/bin/"
  cp /etc/kairos-release "$root/etc/kairos-release"
  cp /lib/modules/*/standin/* "$root/lib/modules/" 2>/dev/null || true
  cp /usr/lib/kairos-standin/init "$root/init"
  chmod 0755 "$root/init"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > /boot/initrd
  rm -rf "$root"
}

init_stage() {
  say "init stage"
  kairos_release
  mkdir -p /usr/lib/kairos-standin
  cat > /usr/lib/kairos-standin/init <<'INIT'
#!/bin/sh
# Stand-in live system: serial console, e1000 or virtio-net network, dropbear SSH.
# PID 1 of the busybox initrd, or (trusted boot) of the UKI, whose initrd is
# the whole image: busybox applets are found first there too.
export PATH=/usr/lib/kairos-standin/bin:/bin:/usr/bin:/usr/sbin
mkdir -p /proc /sys /dev  # a UKI's initrd has none of them (AuroraBoot leaves them out)
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /run /var/run /tmp /home/kairos /etc/dropbear
mount -t devpts devpts /dev/pts
. /etc/kairos-release
fault=""
for word in $(cat /proc/cmdline); do
  case "$word" in standin.fault=*) fault="${word#standin.fault=}" ;; esac
done
echo "Welcome to $KAIROS_NAME $KAIROS_VERSION (kairos-init STAND-IN live system)"
# PID 1 ending makes the kernel panic, as a broken init does.
[ "$fault" != panic ] || { echo "standin.fault=panic: init exits"; exit 1; }
for module in failover net_failover virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net e1000 efivarfs; do
  for ko in /lib/modules/$module.ko /lib/modules/*/standin/$module.ko; do
    [ -e "$ko" ] && insmod "$ko" 2>/dev/null
  done
done
[ ! -d /sys/firmware/efi/efivars ] || mount -t efivarfs efivarfs /sys/firmware/efi/efivars
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# Live media set the kairos password, in live mode only.
printf 'root:x:0:0:root:/root:/bin/sh\nkairos:x:1000:1000:kairos:/home/kairos:/bin/sh\n' > /etc/passwd
printf 'root:x:0:\nkairos:x:1000:\n' > /etc/group
printf 'root:*:19000:0:99999:7:::\nkairos:%s:19000:0:99999:7:::\n' "$(mkpasswd -m sha512 kairos)" > /etc/shadow
echo /bin/sh > /etc/shells
# An ed25519 host key is quick to make even under emulation; sshd is up
# before the login prompt, as on a real system.
dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
[ "$fault" = nossh ] || dropbear -r /etc/dropbear/dropbear_ed25519_host_key -E -p 22
echo "$fault" > /run/standin-fault
# Like a real boot, the login prompt comes once the network is up.
for _ in $(seq 100); do
  [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
echo "kairos login:"
while :; do sleep 3600; done
INIT
  chmod 0755 /usr/lib/kairos-standin/init
  cat > /usr/bin/kairos-agent <<'AGENT'
#!/bin/sh
# STAND-IN kairos-agent: answers `state get boot` like the real one
# (sdk/state/state.go detectBoot at kairos-io/kairos ca022425): a UKI boot
# (rd.immucore.uki) is live unless the boot loader set LoaderDevicePartUUID,
# which systemd-boot does not from a CD; otherwise rd.live.image is live.
uuid=/sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
case "$*" in
  "state get boot")
    if grep -q wrongstate /run/standin-fault 2>/dev/null; then echo active_boot
    elif grep -q rd.immucore.uki /proc/cmdline; then
      if [ -s "$uuid" ]; then echo active_boot; else echo livecd_boot; fi
    elif grep -q rd.live.image /proc/cmdline; then echo livecd_boot
    else echo active_boot; fi ;;
  *) echo "kairos-agent STAND-IN: unsupported: $*" >&2; exit 1 ;;
esac
AGENT
  chmod 0755 /usr/bin/kairos-agent
  # validate.go looks for these binaries (and immucore in the initrd).
  for bin in kcrypt-discovery-challenger; do
    printf '#!/bin/sh\necho "%s STAND-IN: not implemented: $*" >&2\nexit 1\n' "$bin" > "/usr/bin/$bin"
    chmod 0755 "/usr/bin/$bin"
  done
  # A UKI's /init is immucore (AuroraBoot links it): as PID 1 the stand-in
  # boots the live system instead of mounting anything.
  cat > /usr/bin/immucore <<'IMMUCORE'
#!/bin/sh
[ "$$" != 1 ] || exec /usr/lib/kairos-standin/init
echo "immucore STAND-IN: not implemented: $*" >&2
exit 1
IMMUCORE
  chmod 0755 /usr/bin/immucore
  if [ "$TRUSTED" = true ]; then
    mkdir -p /usr/lib/kairos-standin/bin
    /bin/busybox --install -s /usr/lib/kairos-standin/bin
  fi
  if [ -n "$PROVIDER" ]; then
    printf '#!/bin/sh\necho "%s version %s (stand-in)"\n' "$PROVIDER" "$PROVIDER_VERSION" > "/usr/bin/$PROVIDER"
    chmod 0755 "/usr/bin/$PROVIDER"
  fi
  [ "$TRUSTED" = true ] || initrd
}

say "converting (model $MODEL, arch $ARCH, stage $STAGE)"
case "$STAGE" in
  install) install_stage ;;
  init) init_stage ;;
  all) install_stage; init_stage ;;
  *) die "unknown stage $STAGE" ;;
esac
say "stage $STAGE done"
