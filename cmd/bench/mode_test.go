package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestModeFlagNamesEveryMode: -h names every -mode a user can run, and an
// unknown mode fails at once, naming them, before anything starts (it used
// to say "echo or oneway" in both places, after starting the server).
func TestModeFlagNamesEveryMode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := exitCode(run([]string{"-h"}, &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("-h: exit %d, want 0\n%s", code, stderr.String())
	}
	help := stderr.String()
	i := strings.Index(help, "-mode string")
	if i < 0 {
		t.Fatalf("-h output lacks -mode:\n%s", help)
	}
	line, _, _ := strings.Cut(help[i:], "(default")
	for _, m := range []string{ModeEcho, ModeOneway, ModeHOL, ModeBulk, ModeStream, ModeRelay} {
		if !strings.Contains(line, m) {
			t.Errorf("-mode's help %q does not name %q", line, m)
		}
	}
	stderr.Reset()
	err := run([]string{"-mode", "nosuch", "-quiet"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), ModeStream) {
		t.Fatalf("-mode nosuch: error %v, want one naming the modes", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("-mode nosuch ran something:\n%s", stdout.String())
	}
}

// TestTuningDocNamesEveryFlag: docs/tuning.md §4's flag table, which says
// it lists what -h lists, names every flag.
func TestTuningDocNamesEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := exitCode(run([]string{"-h"}, &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("-h: exit %d, want 0\n%s", code, stderr.String())
	}
	doc, err := os.ReadFile("../../docs/tuning.md")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for l := range strings.Lines(string(doc)) {
		if strings.HasPrefix(l, "| `-") {
			table.WriteString(l)
		}
	}
	for l := range strings.Lines(stderr.String()) {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(l, "  -") {
			continue
		}
		if name := f[0]; !strings.Contains(table.String(), "`"+name) {
			t.Errorf("docs/tuning.md's flag table has no row for %s", name)
		}
	}
}
