package main

import (
	"os"
	"sort"
	"strings"

	"github.com/joho/godotenv"

	standins "kdt-standins"
)

// System is what kairos-init's DetectSystem finds (pkg/system/system.go).
type System struct {
	Distro, Family, Version, Name string
}

// detect resolves the distro from os-release values: ID first, then each
// ID_LIKE token (as a distro ID, or the family-only tokens in the table).
func detect(c *standins.Contract, vals map[string]string) System {
	t := c.KairosInit.Detection
	d, ok := t.IDs[vals["ID"]]
	if !ok {
		d = t.Unknown
		for _, token := range strings.Fields(vals["ID_LIKE"]) {
			if found, ok := t.IDs[token]; ok {
				d = found
				break
			}
			if found, ok := t.IDLikeFamilies[token]; ok {
				d = found
				break
			}
		}
	}
	s := System{Distro: d.Distro, Family: d.Family, Version: vals["VERSION_ID"]}
	// Alpine keeps major.minor only (when VERSION_ID has three parts).
	if s.Distro == "alpine" {
		if parts := strings.Split(s.Version, "."); len(parts) == 3 {
			s.Version = parts[0] + "." + parts[1]
		}
	}
	s.Name = vals["PRETTY_NAME"]
	if s.Name == "" {
		s.Name = vals["NAME"]
	}
	return s
}

// detectHost reads /etc/os-release; without one the system is unknown.
func detectHost(c *standins.Contract) System {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return System{Distro: c.KairosInit.Detection.Unknown.Distro, Family: c.KairosInit.Detection.Unknown.Family}
	}
	defer f.Close()
	vals, err := godotenv.Parse(f)
	if err != nil {
		return System{Distro: c.KairosInit.Detection.Unknown.Distro, Family: c.KairosInit.Detection.Unknown.Family}
	}
	return detect(c, vals)
}

// flavor is KAIROS_FLAVOR and KAIROS_FLAVOR_RELEASE: openSUSE's two distros
// share the flavor `opensuse`, their kind moves into the release.
func flavor(s System) (string, string) {
	if strings.Contains(s.Distro, "opensuse") {
		if parts := strings.Split(s.Distro, "-"); len(parts) == 2 {
			return parts[0], parts[1] + "-" + s.Version
		}
	}
	return s.Distro, s.Version
}

// Release is what the kairosRelease step writes, for one conversion.
type Release struct {
	Variant, Release, Arch, Model, Provider, ProviderVersion string
	Fips, Trusted                                            bool
}

// releaseFile renders /etc/kairos-release: KEY="value" lines, sorted.
func releaseFile(c *standins.Contract, s System, r Release) string {
	fl, flRelease := flavor(s)
	subst := strings.NewReplacer(
		"{variant}", r.Variant, "{distro}", s.Distro, "{version}", s.Version,
		"{release}", r.Release, "{arch}", r.Arch, "{flavor}", fl,
		"{flavor_release}", flRelease, "{family}", s.Family, "{model}", r.Model,
		"{fips}", boolString(r.Fips), "{trusted}", boolString(r.Trusted),
		"{init_version}", "stand-in", "{provider}", r.Provider,
		"{provider_version}", r.ProviderVersion,
	)
	env := map[string]string{}
	for k, v := range c.KairosInit.KairosRelease.Keys {
		env[k] = subst.Replace(v)
	}
	if r.Provider != "" && r.ProviderVersion != "" {
		for k, v := range c.KairosInit.KairosRelease.ProviderKeys {
			env[k] = subst.Replace(v)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	for _, k := range keys {
		b.WriteString(k + `="` + quote.Replace(env[k]) + "\"\n")
	}
	return b.String()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
