package report

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNoBrowser reports that no headless browser was found on PATH.
var ErrNoBrowser = errors.New("report: no chromium on PATH")

// browsers are the names a Chromium may go by.
var browsers = []string{"chromium", "chromium-browser", "google-chrome"}

// Browser returns the path of a Chromium, or ErrNoBrowser.
func Browser() (string, error) {
	for _, b := range browsers {
		if p, err := exec.LookPath(b); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// Screenshot opens the HTML file htmlPath in a headless Chromium, offline
// (a file URL; no network is needed for a page Write produced), lets its
// scripts run, and saves a width x height PNG to pngPath.
func Screenshot(ctx context.Context, htmlPath, pngPath string, width, height int) error {
	bin, err := Browser()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "report-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--hide-scrollbars", "--user-data-dir="+profile,
		"--virtual-time-budget=5000",
		fmt.Sprintf("--window-size=%d,%d", width, height),
		"--screenshot="+pngPath,
		"file://"+abs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("report: %s: %w\n%s", bin, err, out)
	}
	if _, err := os.Stat(pngPath); err != nil {
		return fmt.Errorf("report: no screenshot written: %w\n%s", err, out)
	}
	return nil
}

// PaletteCounts decodes the PNG at path and counts its pixels that have
// the first two colors ECharts gives series (#5470c6 blue, #91cc75 green):
// a page whose charts were drawn has thousands, a page whose script did
// not run has none.
func PaletteCounts(path string) (first, second int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return 0, 0, err
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			switch rgb(img, x, y) {
			case [3]uint8{0x54, 0x70, 0xc6}:
				first++
			case [3]uint8{0x91, 0xcc, 0x75}:
				second++
			}
		}
	}
	return first, second, nil
}

func rgb(img image.Image, x, y int) [3]uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}
