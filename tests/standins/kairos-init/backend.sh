#!/bin/sh
# STAND-IN for quay.io/kairos/kairos-init, for offline tests and demos only.
# It honours the real contract the pipeline relies on (flags, stages,
# /etc/kairos-release keys, `validate`, a bootable /boot/vmlinuz + /boot/initrd)
# on Debian-family bases, installing Debian packages. It is not Kairos.
set -eu

say() { echo "kairos-init STAND-IN: $*"; }
die() { echo "kairos-init STAND-IN: error: $*" >&2; exit 1; }

VERSION="" STAGE=all MODEL=generic TRUSTED=false FIPS=false PROVIDER="" PROVIDER_VERSION=""
CMD=convert VALIDATE_TRUSTED=false

case "${1:-}" in
  validate) CMD=validate; shift ;;
esac

while [ $# -gt 0 ]; do
  case "$1" in
    -v|--version) VERSION="$2"; shift 2 ;;
    --version=*) VERSION="${1#*=}"; shift ;;
    -s|--stage) STAGE="$2"; shift 2 ;;
    -l|--level) shift 2 ;;
    -m|--model) MODEL="$2"; shift 2 ;;
    -p|--provider) [ -z "$PROVIDER" ] || die "stand-in supports one provider"; PROVIDER="$2"; shift 2 ;;
    --provider-*-version=*) PROVIDER_VERSION="${1#*=}"; shift ;;
    --provider-*-version) PROVIDER_VERSION="$2"; shift 2 ;;
    -t|--trusted)
      if [ "$CMD" = validate ]; then VALIDATE_TRUSTED=true; shift
      else case "$2" in true|1) TRUSTED=true ;; *) TRUSTED=false ;; esac; shift 2; fi ;;
    --trusted=*) case "${1#*=}" in true|1) TRUSTED=true ;; esac; shift ;;
    --fips) FIPS=true; shift ;;
    -x|--stage-extensions) shift ;;
    --skip-step) shift 2 ;;
    -k|--kubernetes-provider|--k8sversion) die "unknown flag $1 (removed in v0.6.0; use -p/--provider)" ;;
    *) die "unknown argument $1" ;;
  esac
done

case "$(uname -m)" in
  x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; riscv64) ARCH=riscv64 ;;
  *) die "unsupported machine $(uname -m)" ;;
esac

validate() {
  say "validating"
  [ -s /boot/vmlinuz ] || die "validate: /boot/vmlinuz missing"
  [ "$VALIDATE_TRUSTED" = true ] || [ -s /boot/initrd ] || die "validate: /boot/initrd missing"
  [ -s /etc/kairos-release ] || die "validate: /etc/kairos-release missing"
  for key in ID NAME VERSION ARCH TARGETARCH FLAVOR FLAVOR_RELEASE FAMILY MODEL VARIANT; do
    grep -q "^KAIROS_${key}=\"..*\"" /etc/kairos-release || die "validate: key KAIROS_${key} not found or empty in kairos-release"
  done
  if grep -q '^KAIROS_VARIANT="standard"' /etc/kairos-release; then
    grep -q '^KAIROS_SOFTWARE_VERSION=".' /etc/kairos-release || die "validate: KAIROS_SOFTWARE_VERSION is empty"
  fi
  say "validation passed"
}

if [ "$CMD" = validate ]; then validate; exit 0; fi

[ -n "$VERSION" ] || die "--version is required"
case "$VERSION" in v*) ;; *) VERSION="v$VERSION" ;; esac
[ "$MODEL" = generic ] || [ "$ARCH" = arm64 ] || die "model $MODEL needs arm64"
[ "$FIPS" = false ] || [ "$ARCH" != riscv64 ] || die "fips is not supported on riscv64"
case "$PROVIDER:$PROVIDER_VERSION" in
  :) ;;
  k3s:v*+k3s*|k0s:v*+k0s.*) ;;
  *) die "provider $PROVIDER version '$PROVIDER_VERSION' cannot be downloaded" ;;
esac
command -v apt-get >/dev/null || die "the stand-in converts Debian-family bases only"

install_stage() {
  say "install stage (Debian packages: busybox-static, dropbear-bin, kernel $ARCH)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends busybox-static dropbear-bin >/dev/null
  pkg=$(apt-cache depends "linux-image-$ARCH" | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
  [ -n "$pkg" ] || die "no kernel package for $ARCH"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq "$pkg")
  dpkg-deb -x "$work"/*.deb "$work/x"
  cp "$work"/x/boot/vmlinuz-* /boot/vmlinuz
  mkdir -p /usr/lib/kairos-standin/modules
  find "$work/x/lib/modules" \( -name 'e1000.ko*' -o -name 'failover.ko*' -o -name 'net_failover.ko*' -o -name 'virtio_net.ko*' \) \
    -exec cp {} /usr/lib/kairos-standin/modules/ \;
  rm -rf "$work" /var/lib/apt/lists/*
  apt-get clean
}

os_release() { sed -n "s/^$1=\"\\{0,1\\}\([^\"]*\)\"\\{0,1\\}$/\1/p" /etc/os-release; }

kairos_release() {
  os_id=$(os_release ID) os_version=$(os_release VERSION_ID)
  flavor="$os_id" flavor_release="${os_version:-unknown}" family=debian
  case "$os_id" in opensuse-*) flavor=opensuse flavor_release="${os_id#opensuse-}-$os_version" ;; esac
  variant=core; [ -z "$PROVIDER" ] || variant=standard
  {
    echo "KAIROS_ID=\"kairos\""
    echo "KAIROS_ID_LIKE=\"kairos-$variant-$flavor-$flavor_release\""
    echo "KAIROS_NAME=\"kairos-$variant-$flavor-$flavor_release\""
    echo "KAIROS_VERSION=\"$VERSION\""
    echo "KAIROS_RELEASE=\"$VERSION\""
    echo "KAIROS_ARCH=\"$ARCH\""
    echo "KAIROS_TARGETARCH=\"$ARCH\""
    echo "KAIROS_FLAVOR=\"$flavor\""
    echo "KAIROS_FLAVOR_RELEASE=\"$flavor_release\""
    echo "KAIROS_FAMILY=\"$family\""
    echo "KAIROS_MODEL=\"$MODEL\""
    echo "KAIROS_VARIANT=\"$variant\""
    echo "KAIROS_FIPS=\"$FIPS\""
    echo "KAIROS_TRUSTED_BOOT=\"$TRUSTED\""
    echo "KAIROS_INIT_VERSION=\"stand-in\""
    if [ -n "$PROVIDER" ]; then
      echo "KAIROS_SOFTWARE_VERSION=\"$PROVIDER_VERSION\""
      echo "KAIROS_SOFTWARE_VERSION_PREFIX=\"$PROVIDER\""
    fi
  } > /etc/kairos-release
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
  cp /usr/bin/kairos-agent "$root/usr/bin/"
  [ -z "$PROVIDER" ] || cp "/usr/bin/$PROVIDER" "$root/usr/bin/"
  cp /etc/kairos-release "$root/etc/kairos-release"
  cp /usr/lib/kairos-standin/modules/* "$root/lib/modules/" 2>/dev/null || true
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
# Stand-in live system: serial console, e1000 network, dropbear SSH.
export PATH=/bin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run /var/run /tmp /home/kairos /etc/dropbear
mount -t devpts devpts /dev/pts
. /etc/kairos-release
fault=""
for word in $(cat /proc/cmdline); do
  case "$word" in standin.fault=*) fault="${word#standin.fault=}" ;; esac
done
echo "Welcome to $KAIROS_NAME $KAIROS_VERSION (kairos-init STAND-IN live system)"
for module in failover net_failover virtio_net e1000; do
  [ -e "/lib/modules/$module.ko" ] && insmod "/lib/modules/$module.ko" 2>/dev/null
done
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
  cat > /usr/bin/kairos-agent <<'AGENT'
#!/bin/sh
# STAND-IN kairos-agent: answers `state get boot` like the real one.
case "$*" in
  "state get boot")
    if grep -q wrongstate /run/standin-fault 2>/dev/null; then echo active_boot
    elif grep -q rd.live.image /proc/cmdline; then echo livecd_boot
    else echo active_boot; fi ;;
  *) echo "kairos-agent STAND-IN: unsupported: $*" >&2; exit 1 ;;
esac
AGENT
  chmod 0755 /usr/bin/kairos-agent
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
