package test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readRepo returns a file of the repository (the test runs in test/).
func readRepo(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testCommand is the line of text that starts with "go test -race": the
// test command of the README and of .ci/run.
func testCommand(t *testing.T, name string) string {
	t.Helper()
	var found []string
	for line := range strings.Lines(readRepo(t, name)) {
		if strings.HasPrefix(line, "go test -race ") {
			found = append(found, strings.TrimSpace(line))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d lines start with \"go test -race\", want 1: %q", name, len(found), found)
	}
	return found[0]
}

// TestReadmeTestCommandIsCI: the README's test command is the one CI runs
// (.ci/run), character for character, and names test/ first: its package
// runs longest, so it starts first while the others share the second core.
func TestReadmeTestCommandIsCI(t *testing.T) {
	readme, ci := testCommand(t, "README.md"), testCommand(t, ".ci/run")
	if readme != ci {
		t.Fatalf("the README's test command\n\t%s\ndiffers from .ci/run's\n\t%s", readme, ci)
	}
	if !strings.HasPrefix(readme, "go test -race -count=1 -timeout 18m ./test/ ./... ") {
		t.Fatalf("the test command does not start the test/ package first: %s", readme)
	}
}

// TestReadmeLayoutComplete: the README's layout table names every
// directory that holds Go files, and its list of documents links every
// page of docs/.
func TestReadmeLayoutComplete(t *testing.T) {
	readme := readRepo(t, "README.md")
	_, layout, ok := strings.Cut(readme, "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([^`]+/)`").FindAllStringSubmatch(layout, -1) {
		named[m[1]] = true
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if base := d.Name(); path != ".." && (strings.HasPrefix(base, ".") || base == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Ext(path) != ".go" {
			return nil
		}
		dir, _ := filepath.Rel("..", filepath.Dir(path))
		if dir := filepath.ToSlash(dir) + "/"; !named[dir] {
			named[dir] = true // once per directory
			t.Errorf("README.md's layout does not name %s", dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		link := "(docs/" + filepath.Base(d) + ")"
		if !strings.Contains(readme, link) {
			t.Errorf("README.md does not link docs/%s", filepath.Base(d))
		}
	}
}
