package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipcframe/ipcframe/internal/report"
	"github.com/ipcframe/ipcframe/internal/report/reporttest"
)

// samplePage is a report with one line chart and one bar chart of two
// series each.
func samplePage() *report.Page {
	p := report.NewPage("sample")
	x := []string{"0.1", "0.2", "0.3", "0.4"}
	p.Line("throughput", "over time", "s", "QPS", x,
		report.Series{Name: "a", Y: []float64{10, 20, 15, 30}},
		report.Series{Name: "b", Y: []float64{5, 8, 12, 9}})
	p.Bar("cost", "per request", "conc", "µs", []string{"1", "64"},
		report.Series{Name: "a", Y: []float64{12, 3}},
		report.Series{Name: "b", Y: []float64{7, 2}})
	return p
}

// TestWriteSelfContained: the page carries the ECharts library inline
// and loads no file.
func TestWriteSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := samplePage().Write(&buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if strings.Contains(html, "<script src=") || strings.Contains(html, "go-echarts.github.io") {
		t.Fatal("the page refers to an external script")
	}
	js, err := os.ReadFile("echarts.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, string(js)) {
		t.Fatal("the ECharts library is not inline")
	}
	for _, want := range []string{"throughput", "cost", "echarts.init"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestScreenshot: the page renders, offline, in a real headless browser.
func TestScreenshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sample.html")
	if err := samplePage().WriteFile(path); err != nil {
		t.Fatal(err)
	}
	png := reporttest.RequireScreenshot(t, path, 1000, 5000, 5000)
	if dir := os.Getenv("REPORT_SCREENSHOT_DIR"); dir != "" {
		b, err := os.ReadFile(png)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "report-sample.png"), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
