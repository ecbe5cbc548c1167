// Package standins reads contract.yaml, the one table of kairos-init's and
// AuroraBoot's flags, and declares those flags on the CLI libraries upstream
// uses (cobra/pflag, urfave/cli v2), so the stand-ins parse as upstream does.
package standins

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed contract.yaml
var contractYAML []byte

// Flag is one row of the table.
type Flag struct {
	Name     string   `yaml:"name"`
	Short    string   `yaml:"short"`
	Aliases  []string `yaml:"aliases"`
	Type     string   `yaml:"type"`
	Default  any      `yaml:"default"`
	Values   []string `yaml:"values"`
	Checked  string   `yaml:"checked"`
	Required bool     `yaml:"required"`
	Dynamic  string   `yaml:"dynamic"`
}

// DefaultString is the default of a string-valued flag.
func (f Flag) DefaultString() string {
	if f.Default == nil {
		return ""
	}
	return fmt.Sprint(f.Default)
}

// DefaultBool is the default of a bool flag.
func (f Flag) DefaultBool() bool { b, _ := f.Default.(bool); return b }

// DefaultInt is the default of an int64 flag.
func (f Flag) DefaultInt() int64 { i, _ := f.Default.(int); return int64(i) }

// Positional says how many positional arguments a command takes.
type Positional struct {
	Count int    `yaml:"count"`
	Name  string `yaml:"name"`
}

// Command is a subcommand (or a root command) and its flags.
type Command struct {
	Aliases      []string   `yaml:"aliases"`
	Flags        []Flag     `yaml:"flags"`
	RequiresRoot bool       `yaml:"requires_root"`
	Refuses      []string   `yaml:"stand_in_refuses"`
	Positional   Positional `yaml:"-"`
	RawPos       yaml.Node  `yaml:"positional"`
}

// Validate is the table of `kairos-init validate` checks.
type Validate struct {
	Binaries                []string          `yaml:"binaries"`
	BinariesUnlessHadron    []string          `yaml:"binaries_unless_family_hadron"`
	BinariesIfStandard      []string          `yaml:"binaries_if_variant_standard"`
	BinaryIfSoftwareVersion map[string]string `yaml:"binary_if_software_version_is"`
	ExtraPath               []string          `yaml:"extra_path"`
	Files                   []string          `yaml:"files"`
	FilesUnlessTrusted      []string          `yaml:"files_unless_trusted"`
	ReleaseKeys             []string          `yaml:"release_keys"`
	ReleaseKeysIfStandard   []string          `yaml:"release_keys_if_variant_standard"`
	Dirs                    []string          `yaml:"dirs"`
	NoFilesMatching         []string          `yaml:"no_files_matching"`
	InitrdUnlessTrusted     InitrdCheck       `yaml:"initrd_unless_trusted"`
	Services                Services          `yaml:"services"`
}

// InitrdCheck is the lsinitrd check.
type InitrdCheck struct {
	Command       []string `yaml:"command"`
	MustContain   []string `yaml:"must_contain"`
	WarnIfMissing []string `yaml:"warn_if_missing"`
}

// Services are the systemd unit checks.
type Services struct {
	SearchPaths  []string `yaml:"search_paths"`
	RHELFamily   []string `yaml:"rhel_family"`
	UnlessAlpine []string `yaml:"unless_family_alpine"`
}

// Detected is a distro and family pair.
type Detected struct {
	Distro string `yaml:"distro"`
	Family string `yaml:"family"`
}

// KairosInit is the kairos-init half of the table.
type KairosInit struct {
	Commands      map[string]Command `yaml:"commands"`
	KairosRelease struct {
		Keys         map[string]string `yaml:"keys"`
		ProviderKeys map[string]string `yaml:"provider_keys"`
	} `yaml:"kairos_release"`
	Detection struct {
		IDs            map[string]Detected `yaml:"ids"`
		IDLikeFamilies map[string]Detected `yaml:"id_like_families"`
		Unknown        Detected            `yaml:"unknown"`
	} `yaml:"system_detection"`
	Validate Validate `yaml:"validate"`
}

// AuroraBoot is the AuroraBoot half of the table.
type AuroraBoot struct {
	Global    Command `yaml:"global"`
	LegacySet struct {
		Keys        map[string]struct{ Type string } `yaml:"keys"`
		StandInOnly map[string]struct{ Type string } `yaml:"stand_in_only"`
	} `yaml:"legacy_set"`
	Commands       map[string]Command `yaml:"commands"`
	NotImplemented []string           `yaml:"not_implemented"`
}

// Contract is the whole table.
type Contract struct {
	KairosInit KairosInit `yaml:"kairos-init"`
	AuroraBoot AuroraBoot `yaml:"auroraboot"`
}

// Load parses the embedded table; a broken table is a build-time bug, so it panics.
func Load() *Contract {
	var c Contract
	if err := yaml.Unmarshal(contractYAML, &c); err != nil {
		panic(fmt.Sprintf("contract.yaml: %v", err))
	}
	for _, cmds := range []map[string]Command{c.KairosInit.Commands, c.AuroraBoot.Commands} {
		for name, cmd := range cmds {
			if cmd.RawPos.Kind == yaml.MappingNode {
				if err := cmd.RawPos.Decode(&cmd.Positional); err != nil {
					panic(fmt.Sprintf("contract.yaml: %s positional: %v", name, err))
				}
			}
			cmds[name] = cmd
		}
	}
	return &c
}

// ParseOnly is the test hook: print what was parsed instead of running.
func ParseOnly() bool { return os.Getenv("KDT_STANDIN_PARSE_ONLY") == "1" }

// Contains says whether list holds s.
func Contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Enum is a string flag restricted to Allowed (kairos-init's enum flags).
type Enum struct {
	Allowed []string
	Value   string
}

func (e *Enum) String() string { return e.Value }
func (e *Enum) Type() string   { return "string" }

// Set refuses values outside the list with upstream's wording.
func (e *Enum) Set(v string) error {
	if !Contains(e.Allowed, v) {
		return fmt.Errorf("%s is not included in %s", v, strings.Join(e.Allowed, ","))
	}
	e.Value = v
	return nil
}

// EnumSlice is a comma-separated enum; a second use replaces the first.
type EnumSlice struct {
	Allowed []string
	Value   []string
}

func (e *EnumSlice) String() string { return strings.Join(e.Value, ",") }
func (e *EnumSlice) Type() string   { return "string,string,..." }

// Set checks every comma-separated value.
func (e *EnumSlice) Set(v string) error {
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if !Contains(e.Allowed, item) {
			return fmt.Errorf("%s is not included in %s", item, strings.Join(e.Allowed, ","))
		}
		out = append(out, item)
	}
	e.Value = out
	return nil
}
