// Command vulndb builds a small, real grype vulnerability database (schema v6)
// offline, for the tests: the records in a spec file become a vunnel provider
// workspace, which grype's own builder (the code grype-db runs) turns into a
// vulnerability.db, packaged with grype's CreateArchive as
// vulnerability-db_*.tar.zst plus latest.json.
//
//	vulndb --spec SPEC.json --out DIR
//
// SPEC.json: {"built": RFC3339, "providers": {"debian": [ITEM, ...], ...}}, where
// ITEM is what vunnel puts under "item" in an OS-schema result:
// {"Vulnerability": {"Name": ..., "NamespaceName": "debian:12", "FixedIn": [...], ...}}.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/anchore/grype/grype/db"
	"github.com/anchore/grype/grype/db/provider"
	v6 "github.com/anchore/grype/grype/db/v6"
	v6build "github.com/anchore/grype/grype/db/v6/build"
)

const (
	// the OS result schema vunnel writes (grype's OS processor takes any 1.x)
	osSchemaURL = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/os/schema-1.1.0.json"
	// the provider workspace state schema (metadata.json)
	stateSchemaVersion = "1.0.3"
	stateSchemaURL     = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/provider-workspace-state/schema-1.0.3.json"
)

// vunnel makes result paths filesystem-safe this way ("debian:12" -> "debian-12")
var unsafePath = regexp.MustCompile(`[^-._a-zA-Z0-9+]`)

type spec struct {
	Built     string                       `json:"built"`
	Providers map[string][]json.RawMessage `json:"providers"`
}

// record is the part of a vunnel OS item this command needs to name its result file
type record struct {
	Vulnerability struct {
		Name          string `json:"Name"`
		NamespaceName string `json:"NamespaceName"`
	} `json:"Vulnerability"`
}

func main() {
	specPath := flag.String("spec", "", "JSON spec: built time and vunnel OS records per provider")
	out := flag.String("out", "", "directory for vulnerability-db_*.tar.zst and latest.json")
	flag.Parse()
	if err := run(*specPath, *out); err != nil {
		fmt.Fprintf(os.Stderr, "vulndb: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

func run(specPath, out string) error {
	if specPath == "" || out == "" || flag.NArg() > 0 {
		return errors.New("usage: vulndb --spec SPEC.json --out DIR")
	}
	s, built, err := readSpec(specPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// the build dir sits inside out so the results move there with a rename
	buildDir, err := os.MkdirTemp(out, ".vulndb-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	workspace, err := os.MkdirTemp("", "vulndb-workspace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(workspace)

	states, err := writeWorkspace(workspace, s.Providers, built)
	if err != nil {
		return err
	}
	if err := buildDB(buildDir, states, built); err != nil {
		return err
	}
	return publish(buildDir, out)
}

func readSpec(path string) (*spec, time.Time, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var s spec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a misspelt key is a mistake, not an empty DB
	if err := dec.Decode(&s); err != nil {
		return nil, time.Time{}, fmt.Errorf("spec %s: %w", path, err)
	}
	built, err := time.Parse(time.RFC3339, s.Built)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("spec %s: built: %w", path, err)
	}
	// grype keeps build times to the second (v6 SetDBMetadata rounds): a fraction would not survive
	if built.Nanosecond() != 0 {
		return nil, time.Time{}, fmt.Errorf("spec %s: built %q has a fraction of a second", path, s.Built)
	}
	if s.Providers == nil {
		return nil, time.Time{}, fmt.Errorf("spec %s: no \"providers\" object", path)
	}
	return &s, built.UTC(), nil
}

// writeWorkspace lays out one vunnel provider workspace per provider, with the
// API grype ships for it (provider.WorkspaceWriter), and reads the states back
// as grype-db does: ReadState, then Verify (grype-db's default validation).
func writeWorkspace(root string, providers map[string][]json.RawMessage, built time.Time) (provider.States, error) {
	names := make([]string, 0, len(providers))
	for name := range providers {
		names = append(names, name)
	}
	sort.Strings(names) // the build processes providers in this order
	var states provider.States
	for _, name := range names {
		state, err := writeProvider(root, name, providers[name], built)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", name, err)
		}
		states = append(states, *state)
	}
	return states, nil
}

func writeProvider(root, name string, items []json.RawMessage, built time.Time) (*provider.State, error) {
	if name == "" || unsafePath.MatchString(name) {
		return nil, errors.New("provider names are plain words (debian, alpine, ...)")
	}
	w := provider.NewWorkspaceWriter(root, name)
	files := make([]provider.File, 0, len(items))
	seen := map[string]bool{}
	for i, item := range items {
		id, err := identifier(item)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("record %d: %s appears twice", i, id)
		}
		seen[id] = true
		envelope, err := json.Marshal(map[string]any{"schema": osSchemaURL, "identifier": id, "item": item})
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		file, err := w.WriteResult(resultPath(id), envelope)
		if err != nil {
			return nil, err
		}
		files = append(files, *file)
	}
	if err := w.WriteListing(files); err != nil {
		return nil, err
	}
	listing, err := provider.NewFile(w.ListingPath())
	if err != nil {
		return nil, err
	}
	listing.Path = "results/listing.xxh64" // relative to the provider dir, as vunnel writes it
	state := provider.State{
		Provider:            name,
		Version:             1,
		DistributionVersion: 1,
		Processor:           "vunnel@kdt-vulndb",
		Schema:              provider.Schema{Version: stateSchemaVersion, URL: stateSchemaURL},
		URLs:                []string{"https://kdt.local/" + name},
		Timestamp:           built,
		Listing:             listing,
		Store:               "flat-file",
	}
	if err := w.WriteState(state); err != nil {
		return nil, err
	}
	// ReadState fills the result list from the listing (an unexported field)
	read, err := provider.ReadState(filepath.Join(w.Path(), "metadata.json"))
	if err != nil {
		return nil, err
	}
	if err := read.Verify(); err != nil {
		return nil, err
	}
	return read, nil
}

// identifier is vunnel's: "debian:12/cve-2026-0001"
func identifier(item json.RawMessage) (string, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(item))
	if err := dec.Decode(&r); err != nil {
		return "", fmt.Errorf("not a vunnel OS item: %w", err)
	}
	v := r.Vulnerability
	if v.Name == "" || v.NamespaceName == "" {
		return "", errors.New(`not a vunnel OS item: needs {"Vulnerability": {"Name": ..., "NamespaceName": ...}}`)
	}
	return strings.ToLower(v.NamespaceName + "/" + v.Name), nil
}

func resultPath(id string) string {
	parts := strings.Split(id, "/")
	for i, part := range parts {
		parts[i] = unsafePath.ReplaceAllString(part, "-")
	}
	return filepath.Join(parts...) + ".json"
}

// buildDB runs grype's builder with grype-db's defaults (schema 6, CPE parts
// a/h/o, inferred NVD fixes, no hydration: grype hydrates on import), then
// stamps the build time.
func buildDB(dir string, states provider.States, built time.Time) error {
	err := db.Build(db.BuildConfig{
		SchemaVersion:       v6.ModelVersion,
		Directory:           dir,
		States:              states,
		Timestamp:           built,
		IncludeCPEParts:     []string{"a", "h", "o"},
		InferNVDFixVersions: true,
	})
	if err != nil {
		return fmt.Errorf("grype db build: %w", err)
	}
	return stampBuilt(dir, built)
}

// stampBuilt sets the DB's build time. The v6 writer records the wall clock
// (db_metadata_store.go SetDBMetadata) and ignores BuildConfig.Timestamp, but
// the tests need old and fresh DBs; the one metadata row is updated through
// grype's own model with gorm, before the archive (its name and latest.json
// carry the time) is made.
func stampBuilt(dir string, built time.Time) error {
	path := filepath.Join(dir, v6.VulnerabilityDBFileName)
	conn, err := gorm.Open(sqlite.Open(path), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	sqlDB, err := conn.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	update := conn.Session(&gorm.Session{AllowGlobalUpdate: true}).
		Model(&v6.DBMetadata{}).Update("build_timestamp", built)
	if update.Error != nil {
		return fmt.Errorf("stamping the build time: %w", update.Error)
	}
	if update.RowsAffected != 1 {
		return fmt.Errorf("stamping the build time: %d metadata rows", update.RowsAffected)
	}
	return nil
}

// publish packages the DB the way grype-db does and moves the archive and
// latest.json into out.
func publish(buildDir, out string) error {
	if err := v6build.CreateArchive(buildDir, "tar.zst", nil); err != nil {
		return fmt.Errorf("grype db package: %w", err)
	}
	archives, err := filepath.Glob(filepath.Join(buildDir, "vulnerability-db_*.tar.zst"))
	if err != nil || len(archives) != 1 {
		return fmt.Errorf("expected one archive in %s, found %v", buildDir, archives)
	}
	for _, src := range []string{archives[0], filepath.Join(buildDir, "latest.json")} {
		if err := os.Rename(src, filepath.Join(out, filepath.Base(src))); err != nil {
			return err
		}
	}
	return nil
}
