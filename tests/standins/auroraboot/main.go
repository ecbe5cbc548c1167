// Command auroraboot is the STAND-IN for quay.io/kairos/auroraboot, for
// offline tests and demos only. Its global flags, commands and flags come from
// ../contract.yaml and are parsed by urfave/cli v2.27.7 as upstream's are.
// Upstream silently drops flags that follow the first positional argument;
// the stand-in refuses them (and wrong argument counts) in one line. After
// parsing, backend.sh does the work (Debian tools, not AuroraBoot) with the
// parsed values in KDT_* environment variables.
package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	standins "kdt-standins"
)

//go:embed backend.sh
var backend string

// cliFlags turns table rows into urfave flags.
func cliFlags(rows []standins.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range rows {
		switch f.Type {
		case "string":
			out = append(out, &cli.StringFlag{Name: f.Name, Aliases: f.Aliases, Value: f.DefaultString(), Required: f.Required})
		case "bool":
			out = append(out, &cli.BoolFlag{Name: f.Name, Aliases: f.Aliases, Value: f.DefaultBool()})
		case "string-slice":
			out = append(out, &cli.StringSliceFlag{Name: f.Name, Aliases: f.Aliases, Required: f.Required})
		case "int64":
			out = append(out, &cli.Int64Flag{Name: f.Name, Aliases: f.Aliases, Value: f.DefaultInt()})
		default:
			panic("contract.yaml: unknown AuroraBoot flag type " + f.Type)
		}
	}
	return out
}

// envName is the variable a flag's value reaches backend.sh in.
func envName(flag string) string {
	return "KDT_FLAG_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// values reads every flag of rows from ctx, as strings (slices one per line).
func values(ctx *cli.Context, rows []standins.Flag) map[string]string {
	out := map[string]string{}
	for _, f := range rows {
		switch f.Type {
		case "string-slice":
			out[f.Name] = strings.Join(ctx.StringSlice(f.Name), "\n")
		case "bool":
			out[f.Name] = fmt.Sprint(ctx.Bool(f.Name))
		case "int64":
			out[f.Name] = fmt.Sprint(ctx.Int64(f.Name))
		default:
			out[f.Name] = ctx.String(f.Name)
		}
	}
	return out
}

// positional checks the argument count; anything after the expected
// arguments that looks like a flag is one upstream would silently drop.
func positional(ctx *cli.Context, name string, count int, what string) error {
	args := ctx.Args().Slice()
	for _, extra := range args[min(count, len(args)):] {
		if strings.HasPrefix(extra, "-") {
			return fmt.Errorf("%s: %s comes after %s, where AuroraBoot (urfave/cli) stops "+
				"parsing flags and silently drops it: put every flag before %s", name, extra, what, what)
		}
	}
	if len(args) != count && count == 0 {
		return fmt.Errorf("%s: the STAND-IN takes no positional argument, got %q", name, args)
	}
	if len(args) != count {
		return fmt.Errorf("%s takes exactly %d %s argument, got %d: %q", name, count, what, len(args), args)
	}
	return nil
}

// checkValues applies the table's value lists and the stand-in's refusals.
func checkValues(name string, cmd standins.Command, vals map[string]string, ctx *cli.Context) error {
	for _, f := range cmd.Flags {
		if len(f.Values) > 0 && vals[f.Name] != "" && !standins.Contains(f.Values, vals[f.Name]) {
			if f.Name == "arch" { // upstream's wording (build-iso.go)
				return fmt.Errorf("invalid architecture '%s': must be 'amd64', 'arm64', or 'riscv64'", vals[f.Name])
			}
			return fmt.Errorf("%s: invalid --%s %q (one of %s)", name, f.Name, vals[f.Name], strings.Join(f.Values, ", "))
		}
	}
	for _, refused := range cmd.Refuses {
		if ctx.IsSet(refused) {
			return fmt.Errorf("%s: the STAND-IN does not implement --%s", name, refused)
		}
	}
	return nil
}

// run hands the parsed call to backend.sh, or prints it (KDT_STANDIN_PARSE_ONLY=1).
func run(command string, global map[string]string, flags map[string]string, args []string) error {
	if standins.ParseOnly() {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"command": command, "global": global, "flags": flags, "args": args})
	}
	env := append(os.Environ(), "KDT_COMMAND="+command)
	for k, v := range global {
		env = append(env, "KDT_GLOBAL_"+strings.TrimPrefix(envName(k), "KDT_FLAG_")+"="+v)
	}
	for k, v := range flags {
		env = append(env, envName(k)+"="+v)
	}
	sh := exec.Command("/bin/sh", append([]string{"-c", backend, "auroraboot-standin"}, args...)...)
	sh.Stdout, sh.Stderr, sh.Env = os.Stdout, os.Stderr, env
	if err := sh.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) { // backend.sh already said why, in one line
			os.Exit(exit.ExitCode())
		}
		return err
	}
	return nil
}

func command(c *standins.Contract, name string) *cli.Command {
	spec := c.AuroraBoot.Commands[name]
	what := "<" + spec.Positional.Name + ">"
	return &cli.Command{
		Name: name, Aliases: spec.Aliases, ArgsUsage: what, Flags: cliFlags(spec.Flags),
		Usage: "STAND-IN: see tests/standins/contract.yaml",
		Action: func(ctx *cli.Context) error {
			if err := positional(ctx, name, spec.Positional.Count, what); err != nil {
				return err
			}
			vals := values(ctx, spec.Flags)
			if err := checkValues(name, spec, vals, ctx); err != nil {
				return err
			}
			if name == "build-uki" { // build-uki.go Before
				if len(ctx.StringSlice("extra-cmdline")) > 0 && ctx.String("extend-cmdline") != "" {
					return errors.New("extra-cmdline and extend-cmdline flags are mutually exclusive")
				}
				if spec.RequiresRoot && os.Geteuid() != 0 {
					return errors.New("this command requires root privileges")
				}
			}
			return run(name, values(ctx, c.AuroraBoot.Global.Flags), vals, ctx.Args().Slice())
		},
	}
}

func main() {
	c := standins.Load()
	app := &cli.App{
		Name: "AuroraBoot", Usage: "auroraboot (STAND-IN)", Flags: cliFlags(c.AuroraBoot.Global.Flags),
		// Legacy mode: settings from --set; the stand-in reads no config file argument.
		Action: func(ctx *cli.Context) error {
			if err := positional(ctx, "legacy mode", 0, "the first argument"); err != nil {
				return err
			}
			return run("", values(ctx, c.AuroraBoot.Global.Flags), nil, nil)
		},
	}
	for _, name := range []string{"build-iso", "build-uki", "genkey"} {
		app.Commands = append(app.Commands, command(c, name))
	}
	for _, name := range c.AuroraBoot.NotImplemented {
		name := name
		app.Commands = append(app.Commands, &cli.Command{Name: name, SkipFlagParsing: true,
			Action: func(*cli.Context) error {
				return fmt.Errorf("the STAND-IN implements build-iso, build-uki, genkey and raw disks only (got %q)", name)
			}})
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Println(err) // upstream's main prints the error on stdout
		fmt.Fprintf(os.Stderr, "auroraboot STAND-IN: error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}
