package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipcframe/ipcframe/internal/report/reporttest"
)

// TestHelpExitsZero: -h prints the flags, -html among them, and the
// command exits 0; a bad flag still exits 1.
func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := exitCode(run([]string{"-h"}, &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("-h: exit %d, want 0\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "-html") {
		t.Errorf("-h output lacks -html:\n%s", stderr.String())
	}
	stderr.Reset()
	if code := exitCode(run([]string{"-no-such-flag"}, &stdout, &stderr), &stderr); code != 1 {
		t.Fatalf("bad flag: exit %d, want 1", code)
	}
}

// TestHTMLReport runs two short loads with -html and -json: the JSON
// carries CPU per request, a timeline and a histogram that adds up to the
// requests; the HTML page is self-contained and draws its charts in a
// real headless browser.
func TestHTMLReport(t *testing.T) {
	holdWindow(t, 5, nil)
	dir := t.TempDir()
	htmlPath, jsonPath := filepath.Join(dir, "report.html"), filepath.Join(dir, "out.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-duration", "1s", "-warmup", "200ms", "-concurrency", "1,8", "-quiet",
		"-json", jsonPath, "-html", htmlPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("\n%s", stdout.String())
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var results []Result
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, r := range results {
		if r.CPUPerReqUs <= 0 {
			t.Errorf("c=%d: CPU per request %v", r.Concurrency, r.CPUPerReqUs)
		}
		if len(r.Timeline) < 5 {
			t.Errorf("c=%d: %d timeline samples over 1 s, want >= 5", r.Concurrency, len(r.Timeline))
		}
		var n int64
		for _, bk := range r.Histogram {
			n += bk.Count
		}
		if n != r.Requests {
			t.Errorf("c=%d: histogram holds %d requests, want %d", r.Concurrency, n, r.Requests)
		}
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Throughput over time: echo 1KiB c=8", "Latency percentiles over time", "Latency histogram", "CPU per request"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("<script src=")) {
		t.Error("report loads an external script")
	}
	// The first two charts are solid blue bars (QPS and CPU per run):
	// thousands of pixels whatever the data; the lines vary with it.
	png := reporttest.RequireScreenshot(t, htmlPath, 3000, 20000, 0)
	if d := os.Getenv("REPORT_SCREENSHOT_DIR"); d != "" {
		if b, err := os.ReadFile(png); err == nil {
			_ = os.WriteFile(filepath.Join(d, "bench-report.png"), b, 0o644)
		}
	}
}
