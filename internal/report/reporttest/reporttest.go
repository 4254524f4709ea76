// Package reporttest checks HTML reports in a real headless browser, for
// the tests of the packages that write them.
package reporttest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcframe/ipcframe/internal/report"
)

// RequireScreenshot renders the HTML file at htmlPath in headless
// Chromium and fails unless the charts were drawn: ECharts' first and
// second series colors cover at least minFirst and minSecond pixels
// (exact colors: solid bars count fully, anti-aliased lines only in part,
// so bounds on lines must be low). It skips only when no Chromium is
// installed and CI is not set; in CI it must run.
func RequireScreenshot(t testing.TB, htmlPath string, height, minFirst, minSecond int) string {
	t.Helper()
	if _, err := report.Browser(); errors.Is(err, report.ErrNoBrowser) && os.Getenv("CI") == "" {
		t.Skip("no chromium installed (apt-get install chromium); CI installs it")
	}
	png := strings.TrimSuffix(htmlPath, filepath.Ext(htmlPath)) + ".png"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := report.Screenshot(ctx, htmlPath, png, 1100, height); err != nil {
		t.Fatal(err)
	}
	first, second, err := report.PaletteCounts(png)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %d and %d pixels of the series colors", png, first, second)
	if first < minFirst || second < minSecond {
		t.Fatalf("charts not drawn: %d and %d pixels of the series colors, want >= %d and %d", first, second, minFirst, minSecond)
	}
	return png
}
