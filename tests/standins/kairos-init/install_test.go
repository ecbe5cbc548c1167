package main

import (
	"strings"
	"testing"
)

// Upstream's install stage refuses FIPS on Ubuntu, and only there.
func TestInstallRefusesFipsOnUbuntuOnly(t *testing.T) {
	ubuntu := System{Distro: "ubuntu", Family: "debian"}
	cases := []struct {
		name   string
		sys    System
		stage  string
		fips   bool
		skip   []string
		refuse bool
	}{
		{"ubuntu fips install", ubuntu, "install", true, nil, true},
		{"ubuntu fips all", ubuntu, "all", true, nil, true},
		{"ubuntu fips init", ubuntu, "init", true, nil, false},
		{"ubuntu no fips", ubuntu, "install", false, nil, false},
		{"ubuntu fips skip installPackages", ubuntu, "install", true, []string{"installPackages"}, false},
		{"debian fips", System{Distro: "debian", Family: "debian"}, "install", true, nil, false},
		{"fedora fips", System{Distro: "fedora", Family: "redhat"}, "install", true, nil, false},
		{"hadron fips", System{Distro: "hadron", Family: "hadron"}, "install", true, nil, false},
	}
	for _, tc := range cases {
		err := installRefusal(tc.sys, tc.stage, tc.fips, tc.skip)
		if (err != nil) != tc.refuse {
			t.Errorf("%s: got %v, want refused=%t", tc.name, err, tc.refuse)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "FIPS is not supported on Ubuntu") {
			t.Errorf("%s: message %q", tc.name, err)
		}
	}
}
