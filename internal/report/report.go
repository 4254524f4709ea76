// Package report renders benchmark results as one self-contained HTML page
// of charts, for cmd/bench and bench/peers.
//
// Charts are built with go-echarts (github.com/go-echarts/go-echarts/v2),
// which writes a page that loads the ECharts library from a CDN. Write
// replaces that script tag with the library itself, embedded here
// (echarts.min.js, Apache ECharts 5.4.3, the version go-echarts v2.6.7
// targets, from the npm package echarts@5.4.3; license in
// echarts.LICENSE): the page renders offline, from a file.
package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/components"
	"github.com/go-echarts/go-echarts/v2/opts"
)

//go:embed echarts.min.js
var echartsJS []byte

// assetsHost is the host charts are rendered with; Write inlines the
// script that names it.
const assetsHost = "ipcframe-inline/"

// scriptTag matches the script tag that loads ECharts.
var scriptTag = regexp.MustCompile(`<script src="[^"]*echarts\.min\.js"></script>`)

// externalRef matches any reference to a file the page would fetch.
var externalRef = regexp.MustCompile(`<script src=|<link href=`)

// Series is one named line or set of bars.
type Series struct {
	Name string
	Y    []float64
}

// Page is a report under construction: a title and charts, top to bottom.
type Page struct {
	title  string
	charts []components.Charter
}

// NewPage returns an empty report titled title.
func NewPage(title string) *Page { return &Page{title: title} }

// Len returns how many charts p holds.
func (p *Page) Len() int { return len(p.charts) }

// globals returns the options every chart of p takes.
func (p *Page) globals(title, subtitle, xName, yName string) []charts.GlobalOpts {
	return []charts.GlobalOpts{
		charts.WithInitializationOpts(opts.Initialization{
			Width:      "1000px",
			Height:     "420px",
			PageTitle:  p.title,
			AssetsHost: assetsHost,
			ChartID:    fmt.Sprintf("chart%d", len(p.charts)+1),
		}),
		charts.WithTitleOpts(opts.Title{Title: title, Subtitle: subtitle}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithXAxisOpts(opts.XAxis{Name: xName}),
		charts.WithYAxisOpts(opts.YAxis{Name: yName}),
		charts.WithAnimation(false),
	}
}

// Line adds a line chart: one line per series over x (as labels).
func (p *Page) Line(title, subtitle, xName, yName string, x []string, series ...Series) {
	c := charts.NewLine()
	c.SetGlobalOptions(p.globals(title, subtitle, xName, yName)...)
	c.SetXAxis(x)
	for _, s := range series {
		data := make([]opts.LineData, len(s.Y))
		for i, v := range s.Y {
			data[i] = opts.LineData{Value: v}
		}
		c.AddSeries(s.Name, data)
	}
	p.charts = append(p.charts, c)
}

// Bar adds a bar chart: one bar per category and series.
func (p *Page) Bar(title, subtitle, xName, yName string, categories []string, series ...Series) {
	p.bar(title, subtitle, xName, yName, "value", categories, series)
}

// BarLog is Bar with a logarithmic value axis, for values that span
// orders of magnitude (latencies at several concurrencies).
func (p *Page) BarLog(title, subtitle, xName, yName string, categories []string, series ...Series) {
	p.bar(title, subtitle, xName, yName, "log", categories, series)
}

func (p *Page) bar(title, subtitle, xName, yName, yType string, categories []string, series []Series) {
	c := charts.NewBar()
	c.SetGlobalOptions(p.globals(title, subtitle, xName, yName)...)
	c.SetGlobalOptions(charts.WithYAxisOpts(opts.YAxis{Name: yName, Type: yType}))
	c.SetXAxis(categories)
	for _, s := range series {
		data := make([]opts.BarData, len(s.Y))
		for i, v := range s.Y {
			data[i] = opts.BarData{Value: v}
		}
		c.AddSeries(s.Name, data)
	}
	p.charts = append(p.charts, c)
}

// Write renders p as one HTML document, the ECharts library inline.
func (p *Page) Write(w io.Writer) error {
	page := components.NewPage()
	page.SetPageTitle(p.title)
	page.SetAssetsHost(assetsHost)
	page.AddCharts(p.charts...)
	var buf bytes.Buffer
	if err := page.Render(&buf); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	html := buf.Bytes()
	if !scriptTag.Match(html) {
		return fmt.Errorf("report: no ECharts script tag in go-echarts' page")
	}
	inline := append(append([]byte("<script>"), echartsJS...), "</script>"...)
	html = scriptTag.ReplaceAllLiteral(html, inline)
	if loc := externalRef.FindIndex(html); loc != nil {
		return fmt.Errorf("report: the page still loads an external file: %q", html[loc[0]:min(loc[1]+80, len(html))])
	}
	_, err := w.Write(html)
	return err
}

// WriteFile writes p to the file path.
func (p *Page) WriteFile(path string) error {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
