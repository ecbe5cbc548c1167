// Command kairos-init is the STAND-IN for quay.io/kairos/kairos-init, for
// offline tests and demos only. Its flags come from ../contract.yaml and are
// parsed by cobra/pflag, the libraries (and versions) upstream uses, so a call
// upstream refuses is refused here too. After parsing, the conversion runs
// backend.sh (Debian packages: a bootable kernel + busybox initrd, not Kairos)
// with the parsed values in KDT_* environment variables; `validate` is Go.
package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"

	semver "github.com/hashicorp/go-version"
	"github.com/spf13/cobra"

	standins "kdt-standins"
)

//go:embed backend.sh
var backend string

func say(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "kairos-init STAND-IN: "+format+"\n", a...)
}

// parsed holds every flag value; enum flags keep their own Value.
type parsed struct {
	strings map[string]*string
	bools   map[string]*bool
	slices  map[string]*[]string
	enums   map[string]*standins.Enum
	multi   map[string]*standins.EnumSlice
}

func newParsed() *parsed {
	return &parsed{map[string]*string{}, map[string]*bool{}, map[string]*[]string{},
		map[string]*standins.Enum{}, map[string]*standins.EnumSlice{}}
}

// providersFromArgs finds provider names the way upstream's init() does,
// before parsing: `-p X`, `--provider X`, `--provider=X`, `-p=X` only.
func providersFromArgs(args []string) []string {
	var out []string
	for i, arg := range args {
		if (arg == "--provider" || arg == "-p") && i+1 < len(args) {
			out = append(out, args[i+1])
		}
		for _, prefix := range []string{"--provider=", "-p="} {
			if strings.HasPrefix(arg, prefix) {
				out = append(out, strings.SplitN(arg, "=", 2)[1])
			}
		}
	}
	return out
}

// declare adds the table's flags to cmd, sharing values across commands (-t).
func declare(cmd *cobra.Command, flags []standins.Flag, p *parsed, providers []string) {
	for _, f := range flags {
		usage := "(stand-in) see contract.yaml"
		switch f.Type {
		case "string":
			if f.Dynamic == "provider" {
				names := providers
				if len(names) == 0 {
					names = []string{"$NAME"}
				}
				for _, n := range names {
					name := strings.Replace(f.Name, "NAME", n, 1)
					p.strings[name] = cmd.Flags().String(name, f.DefaultString(), usage)
				}
				continue
			}
			if v, ok := p.strings[f.Name]; ok {
				cmd.Flags().StringVarP(v, f.Name, f.Short, f.DefaultString(), usage)
			} else {
				p.strings[f.Name] = cmd.Flags().StringP(f.Name, f.Short, f.DefaultString(), usage)
			}
		case "bool":
			p.bools[f.Name] = cmd.Flags().BoolP(f.Name, f.Short, f.DefaultBool(), usage)
		case "string-slice":
			p.slices[f.Name] = cmd.Flags().StringSliceP(f.Name, f.Short, []string{}, usage)
		case "enum":
			e := &standins.Enum{Allowed: f.Values, Value: f.DefaultString()}
			p.enums[f.Name] = e
			cmd.Flags().VarP(e, f.Name, f.Short, usage)
		case "enum-slice":
			e := &standins.EnumSlice{Allowed: f.Values, Value: []string{}}
			p.multi[f.Name] = e
			cmd.Flags().VarP(e, f.Name, f.Short, usage)
		default:
			panic("contract.yaml: unknown kairos-init flag type " + f.Type)
		}
		if f.Required {
			_ = cmd.MarkFlagRequired(f.Name)
		}
	}
}

// trustedBoot is upstream's reading of the -t string.
func trustedBoot(v string) bool {
	v = strings.ToLower(v)
	return v == "true" || v == "1"
}

func main() {
	c := standins.Load()
	p := newParsed()
	providers := providersFromArgs(os.Args)
	cmds := c.KairosInit.Commands

	root := &cobra.Command{Use: "kairos-init", Short: "Kairos init tool (STAND-IN)"}
	declare(root, cmds["kairos-init"].Flags, p, providers)
	validateCmd := &cobra.Command{Use: "validate", Short: "Validate the system (STAND-IN)",
		Args: cobra.NoArgs}
	declare(validateCmd, cmds["validate"].Flags, p, nil)

	root.PreRunE = func(cmd *cobra.Command, _ []string) error {
		model := p.enums["model"].Value
		if runtime.GOARCH == "riscv64" && *p.bools["fips"] {
			return fmt.Errorf("FIPS is not supported on riscv64")
		}
		if model != "generic" && runtime.GOARCH != "arm64" {
			return fmt.Errorf("model %q requires architecture %q but kairos-init is running on %q",
				model, "arm64", runtime.GOARCH)
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return convert(c, p) }
	validateCmd.RunE = func(cmd *cobra.Command, _ []string) error {
		trusted := trustedBoot(*p.strings["trusted"])
		if standins.ParseOnly() {
			return dump(map[string]any{"command": "validate", "trusted": trusted})
		}
		say("validating (trusted boot: %t)", trusted)
		// validate has no -p: upstream's preRun always makes the variant core here.
		return validate(c, trusted, "core")
	}
	noop := func(name string) *cobra.Command {
		return &cobra.Command{Use: name, Args: cobra.NoArgs, Run: func(*cobra.Command, []string) {
			say("%s: nothing to show", name)
		}}
	}
	root.AddCommand(validateCmd, noop("steps-info"), noop("version"))
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}

var providerVersion = regexp.MustCompile(`^(k3s:v[0-9][^+]*\+k3s[0-9]+|k0s:v[0-9][^+]*\+k0s\.[0-9]+)$`)

// convert checks what upstream's RunE checks, then hands over to backend.sh.
func convert(c *standins.Contract, p *parsed) error {
	sv, err := semver.NewSemver(*p.strings["version"])
	if err != nil {
		return fmt.Errorf("error parsing version: %w", err)
	}
	release := sv.String()
	if release[0] != 'v' {
		release = "v" + release
	}
	names := *p.slices["provider"]
	r := Release{Variant: "core", Release: release, Arch: runtime.GOARCH,
		Model: p.enums["model"].Value, Fips: *p.bools["fips"],
		Trusted: trustedBoot(*p.strings["trusted"])}
	if len(names) > 0 {
		r.Variant = "standard"
		r.Provider = names[0]
		if v, ok := p.strings["provider-"+names[0]+"-version"]; ok {
			r.ProviderVersion = *v
		}
	}
	stage := p.enums["stage"].Value
	if standins.ParseOnly() {
		return dump(map[string]any{"command": "kairos-init", "stage": stage,
			"level": p.enums["level"].Value, "model": r.Model, "version": release,
			"trusted": r.Trusted, "fips": r.Fips, "providers": names,
			"provider_version": r.ProviderVersion, "variant": r.Variant,
			"skip_step": p.multi["skip-step"].Value})
	}
	// Stand-in limits, not upstream rules: one provider; a version upstream can download.
	if len(names) > 1 {
		return fmt.Errorf("STAND-IN supports one provider, got %v", names)
	}
	if r.Provider != "" && !providerVersion.MatchString(r.Provider+":"+r.ProviderVersion) {
		return fmt.Errorf("provider %s version %q cannot be downloaded", r.Provider, r.ProviderVersion)
	}
	sys := detectHost(c)
	if err := installRefusal(sys, stage, r.Fips, p.multi["skip-step"].Value); err != nil {
		return err
	}
	if sys.Family != "debian" {
		return fmt.Errorf("STAND-IN converts Debian-family bases only (detected %s)", sys.Distro)
	}
	sh := exec.Command("/bin/sh", "-c", backend, "kairos-init-standin")
	sh.Stdout, sh.Stderr = os.Stdout, os.Stderr
	sh.Env = append(os.Environ(),
		"KDT_STAGE="+stage, "KDT_ARCH="+r.Arch, "KDT_MODEL="+r.Model,
		"KDT_TRUSTED="+boolString(r.Trusted), "KDT_PROVIDER="+r.Provider,
		"KDT_PROVIDER_VERSION="+r.ProviderVersion, "KDT_RELEASE="+releaseFile(c, sys, r))
	return sh.Run()
}

func dump(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

// installRefusal is what upstream's install stage refuses before installing
// anything: FIPS on Ubuntu (kairos-init/pkg/stages/steps_install.go:29-43 at
// kairos-io/kairos ca022425, the same at kairos-init v0.17.3). Skipping the
// installPackages step or a Hadron base returns before the check.
func installRefusal(sys System, stage string, fips bool, skip []string) error {
	if stage == "init" || standins.Contains(skip, "installPackages") || sys.Distro == "hadron" {
		return nil
	}
	if sys.Distro == "ubuntu" && fips {
		return fmt.Errorf("FIPS is not supported on Ubuntu without a PRO account and extra packages.\n" +
			"See https://github.com/kairos-io/kairos/blob/master/examples/builds/ubuntu-fips/Dockerfile for an example on how to build it")
	}
	return nil
}
