package main

import (
	"fmt"
	"strconv"

	"github.com/ipcframe/ipcframe/internal/report"
)

// WriteHTML writes results as a self-contained HTML report to path (-html):
// QPS and CPU per request of each run, then for each run its throughput,
// latency percentiles and CPU per request over the window, and its latency
// histogram. The page embeds its chart library and opens offline.
func WriteHTML(path string, results []Result) error {
	p := report.NewPage("ipcframe cmd/bench")
	labels := make([]string, len(results))
	qps := make([]float64, len(results))
	cpu := make([]float64, len(results))
	for i, r := range results {
		labels[i] = runLabel(r)
		qps[i], cpu[i] = r.QPS, r.CPUPerReqUs
	}
	p.Bar("Throughput", "requests per second over each measured window", "run", "QPS", labels,
		report.Series{Name: "QPS", Y: qps})
	p.Bar("CPU per request", "process CPU time (getrusage) / requests; embedded server: both sides", "run", "µs", labels,
		report.Series{Name: "CPU µs/request", Y: cpu})
	for _, r := range results {
		label := runLabel(r)
		n := len(r.Timeline)
		t := make([]string, n)
		q, p50, p99, p999, c := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for i, s := range r.Timeline {
			t[i] = strconv.FormatFloat(s.T, 'f', 1, 64)
			q[i], c[i] = s.QPS, s.CPUPerReqUs
			p50[i], p99[i], p999[i] = float64(s.P50Us), float64(s.P99Us), float64(s.P999Us)
		}
		if n > 0 {
			p.Line("Throughput over time: "+label, "per interval of the window", "s", "QPS", t,
				report.Series{Name: "QPS", Y: q})
			p.Line("Latency percentiles over time: "+label, "requests completed in each interval", "s", "µs", t,
				report.Series{Name: "p50", Y: p50}, report.Series{Name: "p99", Y: p99}, report.Series{Name: "p99.9", Y: p999})
			p.Line("CPU per request over time: "+label, "process CPU time / requests, per interval", "s", "µs", t,
				report.Series{Name: "CPU µs/request", Y: c})
		}
		if len(r.Histogram) > 0 {
			bounds := make([]string, len(r.Histogram))
			counts := make([]float64, len(r.Histogram))
			for i, b := range r.Histogram {
				bounds[i] = "≤" + us(b.UpToUs)
				counts[i] = float64(b.Count)
			}
			p.Bar("Latency histogram: "+label, fmt.Sprintf("p50 %s, p99 %s, p99.9 %s, max %s",
				us(r.P50Us), us(r.P99Us), us(r.P999Us), us(r.MaxUs)), "latency", "requests", bounds,
				report.Series{Name: "requests", Y: counts})
		}
	}
	return p.WriteFile(path)
}

// runLabel names a run in the report.
func runLabel(r Result) string {
	return fmt.Sprintf("%s %s c=%d", r.Mode, sizeString(r.Size), r.Concurrency)
}
