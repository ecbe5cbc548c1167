package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/joho/godotenv"

	standins "kdt-standins"
)

// validate runs the checks of kairos-init's validate.go, as listed in the
// table, collecting every failure. `variant` is what upstream's preRun sets.
func validate(c *standins.Contract, trusted bool, variant string) error {
	v := c.KairosInit.Validate
	sys := detectHost(c)
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	info := func(format string, a ...any) { say("validate: "+format, a...) }

	binaries := append([]string{}, v.Binaries...)
	if sys.Family != "hadron" {
		binaries = append(binaries, v.BinariesUnlessHadron...)
	}
	if variant == "standard" {
		binaries = append(binaries, v.BinariesIfStandard...)
	}
	release, releaseErr := godotenv.Read("/etc/kairos-release")
	if releaseErr == nil {
		// Upstream keys this on the software VERSION, not its prefix.
		if bin, ok := v.BinaryIfSoftwareVersion[release["KAIROS_SOFTWARE_VERSION"]]; ok {
			binaries = append(binaries, bin)
		}
	}
	path := os.Getenv("PATH")
	_ = os.Setenv("PATH", strings.Join(append(append([]string{}, v.ExtraPath...), path), ":"))
	for _, bin := range binaries {
		found, err := exec.LookPath(bin)
		if err != nil {
			fail("[BINARIES] could not find binary %s", bin)
			continue
		}
		st, err := os.Stat(found)
		if err != nil {
			fail("[BINARIES] could not stat binary %s: %s", bin, err)
		} else if st.Mode()&0o111 == 0 {
			fail("[BINARIES] binary %s is not executable", bin)
		} else {
			info("[BINARIES] found %s at %s", bin, found)
		}
	}
	_ = os.Setenv("PATH", path)

	files := append([]string{}, v.Files...)
	if !trusted {
		files = append(files, v.FilesUnlessTrusted...)
	}
	for _, f := range files {
		st, err := os.Lstat(f)
		if err != nil {
			fail("[FILES] file missing %s", f)
			continue
		}
		if st.Mode()&os.ModeSymlink != 0 && f == "/boot/vmlinuz" {
			if _, err := filepath.EvalSymlinks(f); err != nil {
				target, _ := os.Readlink(f)
				fail("[FILES] symlink %s points to a non-existent file %s", f, target)
				continue
			}
		}
		info("[FILES] found %s", f)
	}

	if releaseErr != nil {
		fail("[RELEASE] could not open kairos-release file")
	} else {
		for _, key := range v.ReleaseKeys {
			if release[key] == "" {
				fail("[RELEASE] key %s not found or empty in kairos-release", key)
			}
		}
	}
	if variant == "standard" {
		if release["KAIROS_VARIANT"] != "standard" {
			fail("[RELEASE] KAIROS_VARIANT is not standard")
		}
		for _, key := range v.ReleaseKeysIfStandard {
			if release[key] == "" {
				fail("[RELEASE] %s is empty", key)
			}
		}
	}

	for _, dir := range v.Dirs {
		if _, err := os.Lstat(dir); os.IsNotExist(err) {
			fail("[DIRS] directory %s does not exist", dir)
		}
	}

	if !trusted {
		checkInitrd(v.InitrdUnlessTrusted, fail, info)
	}

	for _, pattern := range v.NoFilesMatching {
		if matches, _ := filepath.Glob(pattern); len(matches) > 0 {
			fail("[SSH] found SSH host keys in the system: %v", matches)
		}
	}

	services := v.Services.UnlessAlpine
	if sys.Family == "alpine" {
		services = nil
	}
	if sys.Family == "redhat" {
		services = append(append([]string{}, v.Services.RHELFamily...), services...)
	}
	for _, unit := range services {
		found := ""
		for _, dir := range v.Services.SearchPaths {
			if _, err := os.Stat(filepath.Join(dir, unit)); err == nil {
				found = filepath.Join(dir, unit)
				break
			}
		}
		if found == "" {
			fail("[SERVICES] service %s does not exist", unit)
		} else if target, err := os.Readlink(found); err == nil && target == "/dev/null" {
			fail("[SERVICES] service %s is masked", unit)
		} else {
			info("[SERVICES] %s exists and is not masked", unit)
		}
	}

	// The kernel chooser needs at least one entry under /lib/modules.
	if entries, err := os.ReadDir("/lib/modules"); err != nil {
		fail("[KERNEL] %s", err)
	} else if len(entries) == 0 {
		fail("[KERNEL] no kernel versions found")
	}

	if len(errs) == 0 {
		say("validation passed")
		return nil
	}
	return errors.New(fmt.Sprintf("%d errors occurred:\n\t* %s\n", len(errs), strings.Join(errs, "\n\t* ")))
}

// checkInitrd lists /boot/initrd with lsinitrd; without lsinitrd it only warns.
func checkInitrd(check standins.InitrdCheck, fail, info func(string, ...any)) {
	if _, err := exec.LookPath(check.Command[0]); err != nil {
		say("validate: WARNING [INITRD] %s not found, cannot check initrd contents", check.Command[0])
		return
	}
	out, err := exec.Command(check.Command[0], check.Command[1:]...).CombinedOutput()
	if err != nil {
		fail("[INITRD] failed checking initrd contents: %s", err)
	}
	for _, bin := range check.MustContain {
		if strings.Contains(string(out), bin) {
			info("[INITRD] found %s in the initrd", bin)
		} else {
			fail("[INITRD] did not find %s in the initrd", bin)
		}
	}
	for _, module := range check.WarnIfMissing {
		dashed := strings.ReplaceAll(module, "_", "-")
		if !strings.Contains(string(out), module) && !strings.Contains(string(out), dashed) {
			say("validate: WARNING [INITRD] kernel module %s not found in initrd", module)
		}
	}
}
