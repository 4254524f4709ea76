package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipcframe/ipcframe/internal/report/reporttest"
)

// TestHTML renders a recorded comparison (results/) as the HTML report:
// every chart is there, the page loads nothing from outside, and it draws
// its charts in a real headless browser.
func TestHTML(t *testing.T) {
	b, err := os.ReadFile("results/2026-11-25-inprocess.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "peers.html")
	if err := rep.writeHTML(path); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 KiB echo: QPS", "echo: p99 latency", "echo: CPU per call", "64 MiB one way: throughput", "arpc", "ipcframe"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("<script src=")) {
		t.Error("report loads an external script")
	}
	png := reporttest.RequireScreenshot(t, path, 3200, 20000, 5000)
	if d := os.Getenv("REPORT_SCREENSHOT_DIR"); d != "" {
		if b, err := os.ReadFile(png); err == nil {
			_ = os.WriteFile(filepath.Join(d, "peers-report.png"), b, 0o644)
		}
	}
}
