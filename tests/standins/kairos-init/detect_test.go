package main

import (
	"strings"
	"testing"

	"github.com/joho/godotenv"

	standins "kdt-standins"
)

// os-release of the matrix bases (the fields detection reads), and what
// upstream's DetectSystem + kairosRelease step make of them.
var cases = []struct {
	base, osRelease, flavor, flavorRelease, family string
}{
	{"debian:12", `ID=debian
VERSION_ID="12"`, "debian", "12", "debian"},
	{"debian:13", `ID=debian
VERSION_ID="13"`, "debian", "13", "debian"},
	{"ubuntu:24.04", `ID=ubuntu
ID_LIKE=debian
VERSION_ID="24.04"`, "ubuntu", "24.04", "debian"},
	{"fedora:42", `ID=fedora
VERSION_ID=42`, "fedora", "42", "redhat"},
	{"alpine:3.21", `ID=alpine
VERSION_ID=3.21.3`, "alpine", "3.21", "alpine"},
	{"alpine:edge-ish", `ID=alpine
VERSION_ID=3.22_alpha20250108`, "alpine", "3.22_alpha20250108", "alpine"},
	{"opensuse/leap:15.6", `ID="opensuse-leap"
ID_LIKE="suse opensuse"
VERSION_ID="15.6"`, "opensuse", "leap-15.6", "suse"},
	{"opensuse/tumbleweed", `ID="opensuse-tumbleweed"
ID_LIKE="opensuse suse"
VERSION_ID="20260801"`, "opensuse", "tumbleweed-20260801", "suse"},
	{"rockylinux/rockylinux:9", `ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.6"`, "rocky", "9.6", "redhat"},
	{"almalinux:10", `ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="10.0"`, "almalinux", "10.0", "redhat"},
	{"oraclelinux:9", `ID="ol"
ID_LIKE="fedora"
VERSION_ID="9.6"`, "ol", "9.6", "redhat"},
	// CentOS Stream is not an ID kairos-init knows: ID_LIKE's first token wins.
	{"quay.io/centos/centos:stream9", `ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"`, "rhel", "9", "redhat"},
	{"registry.suse.com/suse/sle-micro-rancher/5.4", `ID="sle-micro-rancher"
ID_LIKE="suse"
VERSION_ID="5.4"`, "sle-micro-rancher", "5.4", "suse"},
	// A family-only ID_LIKE token: suse maps to opensuse-leap, redhat to fedora.
	{"a SUSE derivative", `ID="foo"
ID_LIKE="suse"
VERSION_ID="1"`, "opensuse", "leap-1", "suse"},
	{"a Red Hat derivative", `ID="bar"
ID_LIKE="redhat"
VERSION_ID="2"`, "fedora", "2", "redhat"},
	{"ghcr.io/kairos-io/hadron:v0.5.1", `ID=hadron
VERSION_ID=v0.5.1`, "hadron", "v0.5.1", "hadron"},
	{"unknown", `ID=gentoo
VERSION_ID=2.17`, "unknown", "2.17", "unknown"},
}

func TestDetectMatrixBases(t *testing.T) {
	c := standins.Load()
	for _, tc := range cases {
		vals, err := godotenv.Parse(strings.NewReader(tc.osRelease))
		if err != nil {
			t.Fatalf("%s: %v", tc.base, err)
		}
		s := detect(c, vals)
		fl, flRelease := flavor(s)
		if fl != tc.flavor || flRelease != tc.flavorRelease || s.Family != tc.family {
			t.Errorf("%s: got flavor %q release %q family %q, want %q %q %q",
				tc.base, fl, flRelease, s.Family, tc.flavor, tc.flavorRelease, tc.family)
		}
	}
}

func TestReleaseFileHasEveryKeyValidateChecks(t *testing.T) {
	c := standins.Load()
	s := System{Distro: "debian", Family: "debian", Version: "12"}
	text := releaseFile(c, s, Release{Variant: "standard", Release: "v1.2.3", Arch: "amd64",
		Model: "generic", Provider: "k3s", ProviderVersion: "v1.35.1+k3s1"})
	vals, err := godotenv.Unmarshal(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range append(c.KairosInit.Validate.ReleaseKeys, c.KairosInit.Validate.ReleaseKeysIfStandard...) {
		if vals[key] == "" {
			t.Errorf("%s is empty", key)
		}
	}
	want := map[string]string{
		"KAIROS_NAME": "kairos-standard-debian-12", "KAIROS_FLAVOR": "debian",
		"KAIROS_BUG_REPORT_URL":          "https://github.com/kairos-io/kairos/issues",
		"KAIROS_SOFTWARE_VERSION_PREFIX": "k3s", "KAIROS_TRUSTED_BOOT": "false",
	}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("%s = %q, want %q", k, vals[k], v)
		}
	}
}

func TestProvidersFromArgsLikeUpstream(t *testing.T) {
	got := providersFromArgs([]string{"kairos-init", "-p", "k3s", "--provider=k0s", "-pfoo", "-p=bar"})
	if strings.Join(got, " ") != "k3s k0s bar" {
		t.Errorf("got %v", got)
	}
}
