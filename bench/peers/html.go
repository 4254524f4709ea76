package main

import (
	"fmt"
	"slices"

	"github.com/ipcframe/ipcframe/internal/report"
)

// writeHTML writes the report as a self-contained HTML page of charts
// (-html), side by side per peer: echo QPS, p50 and p99 latency, CPU and
// allocations per call at each concurrency (medians across runs), and bulk
// MB/s. It is the same renderer as cmd/bench's (internal/report); the page
// embeds its chart library and opens offline.
func (r *Report) writeHTML(path string) error {
	m := r.Meta
	p := report.NewPage("ipcframe peer benchmark " + m.Date)
	sub := fmt.Sprintf("%s, %d CPUs, %s; medians of %d run(s), %s each", m.GoVersion, m.NumCPU, m.Mode, m.Runs, m.Duration)
	if len(r.Echo) > 0 {
		var concs []int
		var peers []string
		for _, e := range r.Echo {
			if !slices.Contains(concs, e.Conc) {
				concs = append(concs, e.Conc)
			}
			if !slices.Contains(peers, e.Peer) {
				peers = append(peers, e.Peer)
			}
		}
		slices.Sort(concs)
		cats := make([]string, len(concs))
		for i, c := range concs {
			cats[i] = fmt.Sprintf("c=%d", c)
		}
		// perPeer returns one series per peer of f's median at each
		// concurrency (0 where the peer has no successful run).
		perPeer := func(f func(EchoResult) float64) []report.Series {
			out := make([]report.Series, 0, len(peers))
			for _, peer := range peers {
				s := report.Series{Name: peer, Y: make([]float64, len(concs))}
				for i, c := range concs {
					var rs []EchoResult
					for _, e := range r.Echo {
						if e.Peer == peer && e.Conc == c && e.Ops > 0 {
							rs = append(rs, e)
						}
					}
					if len(rs) > 0 {
						s.Y[i] = collect(rs, f).med
					}
				}
				out = append(out, s)
			}
			return out
		}
		size := fmtBytes(r.Echo[0].Size)
		p.Bar(size+" echo: QPS", sub, "concurrency", "QPS", cats, perPeer(func(x EchoResult) float64 { return x.QPS })...)
		p.BarLog(size+" echo: p50 latency", "log scale; "+sub, "concurrency", "µs", cats, perPeer(func(x EchoResult) float64 { return x.P50US })...)
		p.BarLog(size+" echo: p99 latency", "log scale; "+sub, "concurrency", "µs", cats, perPeer(func(x EchoResult) float64 { return x.P99US })...)
		p.Bar(size+" echo: CPU per call", "process CPU time (getrusage) / calls; "+sub, "concurrency", "µs", cats, perPeer(func(x EchoResult) float64 { return x.CPUPerOpUS })...)
		p.Bar(size+" echo: allocations per call", "process-wide; "+sub, "concurrency", "allocs", cats, perPeer(func(x EchoResult) float64 { return x.AllocsPerOp })...)
	}
	if len(r.Bulk) > 0 {
		var peers []string
		for _, b := range r.Bulk {
			if !slices.Contains(peers, b.Peer) {
				peers = append(peers, b.Peer)
			}
		}
		mbps := report.Series{Name: "MB/s", Y: make([]float64, len(peers))}
		cpu := report.Series{Name: "CPU µs/MB", Y: make([]float64, len(peers))}
		for i, peer := range peers {
			var rs []BulkResult
			for _, b := range r.Bulk {
				if b.Peer == peer && b.Messages > 0 {
					rs = append(rs, b)
				}
			}
			if len(rs) > 0 {
				mbps.Y[i] = collect(rs, func(x BulkResult) float64 { return x.MBps }).med
				cpu.Y[i] = collect(rs, func(x BulkResult) float64 { return x.CPUPerOpUS / (float64(x.Size) / 1e6) }).med
			}
		}
		size := fmtBytes(r.Bulk[0].Size)
		p.Bar(size+" one way: throughput", sub, "peer", "MB/s", peers, mbps)
		p.Bar(size+" one way: CPU per MB", sub, "peer", "µs", peers, cpu)
	}
	if p.Len() == 0 {
		return fmt.Errorf("-html: no echo or bulk results to chart")
	}
	return p.WriteFile(path)
}
